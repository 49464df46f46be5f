"""The worker's metrics without a broker: counters at 0 before their first event, the risk histogram."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams import metrics
from streams.settings import Settings
from streams.worker_metrics import RiskDistribution


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample called ``name`` in an exposition text."""
    return [(s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]


def test_every_labelled_counter_exists_at_zero_before_its_first_event():
    from streams.app import create_app
    from twins.decoding import REASONS

    settings = Settings(kafka_bootstrap="localhost:9", topic_telemetry="t", topic_weather="w", auth_hs256_secret="s" * 32)
    create_app(settings)  # what a worker does at start-up
    text = metrics.render().decode()
    counters = [f for f in text_string_to_metric_families(text) if f.type == "counter" and f.name.startswith("fleet_")]
    assert len(counters) >= 10
    for family in counters:  # a counter added later without known label values fails here
        assert [s for s in family.samples if s.name.endswith("_total")], f"{family.name} has no series at start-up"
    outcomes = {lbl["outcome"] for lbl, _ in samples(text, "fleet_records_in_total")}
    assert outcomes == {"applied", "duplicate", "too_late", "invalid", "failed"}
    opened = [lbl for lbl, _ in samples(text, "fleet_alert_records_total")]
    assert {"event": "opened", "severity": "critical", "rule_kind": "risk"} in opened
    assert len(opened) == 4 * 4 * 4
    dlq = {(lbl["topic"], lbl["reason"]) for lbl, _ in samples(text, "fleet_dlq_records_total")}
    for topic in ("t", "w", settings.topic_maintenance, settings.topic_charging_requests, settings.topic_grid):
        assert {(topic, r) for r in REASONS} <= dlq, topic
    assert all(v == 0 for lbl, v in samples(text, "fleet_dlq_records_total") if lbl["topic"] in ("t", "w"))

    named = metrics.render(["fleet_records_in_total", "no_such_metric"]).decode()  # /metrics?name=...
    kept = {s.name for f in text_string_to_metric_families(named) for s in f.samples}
    assert "fleet_records_in_total" in kept and "fleet_dlq_records_total" not in kept
    assert samples(named, "fleet_records_in_total") == samples(text, "fleet_records_in_total")
    assert len(named) < len(text) / 10


def test_risk_distribution_buckets_are_cumulative_and_count_every_score():
    dist = RiskDistribution()
    dist.observe(["inverter", "lv_battery"], np.array([[0.01, 0.5], [0.3, 0.99], [0.0, 0.02], [0.7, 0.02]]))
    (family,) = list(dist.collect())
    inv = {s.labels["le"]: s.value for s in family.samples
           if s.name.endswith("_bucket") and s.labels["component"] == "inverter"}
    assert (inv["0.01"], inv["0.3"], inv["0.6"], inv["0.8"], inv["+Inf"]) == (2, 3, 3, 4, 4)
    lv_sum = [s.value for s in family.samples if s.name.endswith("_sum") and s.labels["component"] == "lv_battery"]
    assert lv_sum == [pytest.approx(1.53)]
