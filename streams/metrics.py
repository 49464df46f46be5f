"""Prometheus metrics of a worker (its own registry, served at ``GET /metrics``)."""

from __future__ import annotations

from collections.abc import Collection

from prometheus_client import (GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, CollectorRegistry, Counter, Gauge,
                               Histogram, Info, generate_latest)

REGISTRY = CollectorRegistry(auto_describe=True)
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):  # process_*, python_info, python_gc_*
    REGISTRY.register(_collector)

RECORDS_IN = Counter(
    "fleet_records_in_total",
    "Telemetry records consumed, by outcome (applied, duplicate, too_late, invalid, failed).",
    ["outcome"],
    registry=REGISTRY,
)
DLQ_OUT = Counter(
    "fleet_dlq_records_total", "Records written to a dead-letter topic, by source topic and reason code.",
    ["topic", "reason"], registry=REGISTRY,
)
SIGNED_RECORDS = Counter(
    "fleet_signed_records_total",
    "Accepted records of signed topics (FLEET_SIGNING_MODE verify/require), by topic and outcome: valid "
    "signature, or unsigned_accepted (verify mode). Rejected ones are dead letters (unsigned, bad_signature).",
    ["topic", "outcome"], registry=REGISTRY,
)
BATCH_SECONDS = Histogram(
    "fleet_ingest_batch_seconds",
    "Wall time to decode, validate and merge one fetched batch into twins.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
BATCH_RECORDS = Histogram(
    "fleet_ingest_batch_records", "Records per fetched batch.",
    buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 25000), registry=REGISTRY,
)
EVENT_LAG_SECONDS = Histogram(
    "fleet_event_to_twin_seconds",
    "Age of each batch's oldest event when the batch's twin updates are done: an upper bound on "
    "the event-to-twin latency of every event in the batch.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 0.75, 1, 2.5, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)
FLUSH_SECONDS = Histogram(
    "fleet_twin_flush_seconds", "Wall time to write dirty twins to the changelog-backed table.",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5), registry=REGISTRY,
)
WEATHER_IN = Counter("fleet_weather_records_total", "Weather records applied to the weather table.",
                     registry=REGISTRY)
MAINTENANCE_IN = Counter("fleet_maintenance_records_total", "Repair-log records applied to twins.",
                         registry=REGISTRY)
RISK_SCORED = Counter("fleet_risk_scored_total", "Twins risk-scored.", registry=REGISTRY)
RISK_BATCH_SECONDS = Histogram("fleet_risk_batch_seconds", "Wall time of one scoring batch (features + models).",
                               buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5), registry=REGISTRY)
RISK_MAX = Gauge("fleet_risk_max_probability", "Highest failure probability in the last batch, by component.",
                 ["component"], registry=REGISTRY)
RISK_MODEL_INFO = Info("fleet_risk_model", "The risk model version in force.", registry=REGISTRY)
RISK_MODEL_ERRORS = Counter("fleet_risk_model_load_errors_total", "Model versions that failed to load.",
                            registry=REGISTRY)
RISK_MODEL_REJECTED = Counter(
    "fleet_risk_model_integrity_failures_total",
    "Model artifacts refused because a file does not match its SHA-256 manifest (tampered with or corrupted); "
    "the running model stays in force.", registry=REGISTRY)
CHARGING_PLANS = Counter("fleet_charging_plans_total", "Charging re-plans published, by trigger.", ["trigger"],
                         registry=REGISTRY)
CHARGING_MESSAGES = Counter("fleet_charging_messages_total",
                            "Charging requests, meter readings and grid signals the planners took (a batch of them "
                            "makes one re-plan per site; refused ones are dead-lettered).", registry=REGISTRY)
TWINS_WRITTEN = Counter("fleet_twin_writes_total", "Twin table writes (coalesced).", registry=REGISTRY)
DIRTY_TWINS = Gauge("fleet_twins_dirty", "Twins changed since the last flush.", registry=REGISTRY)
TWINS_LOCAL = Gauge("fleet_twins_local", "Twins held by this worker's active partitions.", registry=REGISTRY)
READY = Gauge("fleet_worker_ready", "1 while GET /readyz answers 200 (broker reachable, partitions settled).",
              registry=REGISTRY)
ROUTE_UNAVAILABLE = Counter("fleet_route_unavailable_total",
                            "Single-vehicle requests answered 503 because the VIN's partition was moving or its "
                            "owner did not answer, by cause.", ["cause"], registry=REGISTRY)


def render(names: Collection[str] = ()) -> bytes:
    """The exposition text for ``/metrics``: every metric, or only the samples named in ``names``
    (``/metrics?name=fleet_records_in_total``, as prometheus_client's ``name[]``: a poller that needs
    one counter does not pay for rendering every histogram)."""
    return generate_latest(REGISTRY.restricted_registry(names) if names else REGISTRY)
ALERT_RECORDS = Counter("fleet_alert_records_total", "Alert state changes published to the alerts topic.",
                        ["event", "severity", "rule_kind"], registry=REGISTRY)
ALERT_RULES_ERRORS = Counter("fleet_alert_rules_errors_total",
                             "Rules files rejected on reload (the running rules stay in force).", registry=REGISTRY)
ALERT_RULES_INFO = Info("fleet_alert_rules", "The alert rules version in force.", registry=REGISTRY)
ALERT_LATENCY_SECONDS = Histogram(
    "fleet_alert_event_latency_seconds", "Event time of the triggering reading to publication of the alert (signal and "
    "DTC rules).", buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=REGISTRY)
VEHICLES = Gauge("fleet_vehicles", "Vehicles of this worker's partitions at the last staleness sweep, by state "
                 "(stale = silent longer than FLEET_STALE_AFTER_S).", ["state"], registry=REGISTRY)
for _state in ("live", "stale"):
    VEHICLES.labels(_state)
SSE_CLIENTS = Gauge("fleet_alert_stream_clients", "Clients connected to GET /alerts/stream.", registry=REGISTRY)
AUDIT_RECORDS = Counter("fleet_audit_records_total", "Audit records written, by action and outcome.",
                        ["action", "outcome"], registry=REGISTRY)
AUTH_DENIED = Counter("fleet_api_denied_total", "API requests refused: 401 (no or bad token) or 403 (scope).",
                      ["status"], registry=REGISTRY)
