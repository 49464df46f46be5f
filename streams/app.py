"""The Faust application: twin table, telemetry fast path, DLQ, HTTP views.

``create_app(settings)`` builds a fresh app (tests build several in one process).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

import faust
from faust.types import TP

from streams import metrics
from streams.alerting import register_alerting
from streams.audit import AuditLog
from streams.auth import TokenVerifier
from streams.charging import register_charging
from streams.dead_letter import DeadLetters
from streams.fast_consumer import BatchingConsumer, BatchingTransport
from streams.ingest import TwinIngest
from streams.readiness import Readiness
from streams.kafka_security import describe, faust_credentials
from streams.risk_scoring import RiskScorer
from streams.settings import Settings
from streams.signing_keys import SigningKeys
from streams.vehicle_registry import load_registry
from streams.weather_feed import register_weather
from streams.worker_metrics import register_worker_metrics
from twins.errors import ConfigurationError

log = logging.getLogger(__name__)

log = logging.getLogger(__name__)


class FleetApp(faust.App):
    """faust.App whose consumer batches the telemetry topic (see :mod:`streams.fast_consumer`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: topic name -> batch handler; shared with the consumer once it exists.
        self.batch_topics: dict[str, Any] = {}
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        return BatchingTransport(self.conf.broker_consumer, self)

    async def on_stop(self) -> None:
        """Stopping (SIGTERM/SIGINT): end SSE streams, write dirty twins to the changelog, then Faust's stop
        (which commits the offsets those twins cover and leaves the group)."""
        self.alert_feed.close_subscribers()
        try:
            await asyncio.wait_for(self.ingest.flush(), self.fleet_settings.shutdown_timeout_s / 2)
        except Exception as exc:  # never block the stop: unflushed twins are replayed by the next owner
            log.warning("stopping: dirty twins not flushed (%s: %s); the next owner replays them",
                        type(exc).__name__, exc)
        await super().on_stop()

    def _new_consumer(self) -> Any:
        consumer = super()._new_consumer()
        assert isinstance(consumer, BatchingConsumer), type(consumer)
        consumer.batch_handlers = self.batch_topics  # shared: handlers registered later are seen
        return consumer

    fleet_settings: Settings
    twins: Any
    weather: Any
    ingest: TwinIngest
    cell_weather: Any
    hourly_weather: Any
    weather_day_version: Any
    alerts: Any
    alert_feed: Any
    verifier: TokenVerifier | None
    audit: AuditLog
    readiness: Readiness


def _credentials(settings: Settings) -> Any:
    """Faust's broker credentials: SASL and/or TLS from settings (:mod:`streams.kafka_security`)."""
    return faust_credentials(settings)


def _web_tls(settings: Settings) -> ssl.SSLContext | None:
    """The API's TLS context (FLEET_WEB_TLS_CERT_FILE / _KEY_FILE), or None for plain HTTP."""
    if settings.web_tls_cert_file is None or settings.web_tls_key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.web_tls_cert_file, settings.web_tls_key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"FLEET_WEB_TLS_CERT_FILE / _KEY_FILE cannot be loaded: {exc}") from None
    return context


def create_app(settings: Settings) -> FleetApp:
    """Build the worker app from settings (nothing is started)."""
    if not settings.bootstrap_servers:
        raise ConfigurationError(
            "FLEET_KAFKA_BOOTSTRAP is not set; start the worker through `fleet run` (embedded broker) "
            "or point it at a Kafka cluster"
        )
    verifier = None if settings.auth_mode == "off" else TokenVerifier(
        settings.auth_hs256_secret.get_secret_value() if settings.auth_hs256_secret else None,
        settings.auth_public_key_file, settings.auth_jwks_file, settings.auth_issuer, settings.auth_audience,
        settings.auth_leeway_s)
    app = FleetApp(
        settings.app_id,
        broker=[f"kafka://{s}" for s in settings.bootstrap_servers],
        broker_credentials=_credentials(settings),
        store=settings.store,
        datadir=str(settings.data_dir),
        web_host=settings.web_host,
        web_bind=settings.web_bind or settings.web_host,
        web_port=settings.web_port,
        web_ssl_context=_web_tls(settings),
        canonical_url=f"{'https' if settings.web_tls_cert_file else 'http'}://{settings.web_host}:{settings.web_port}",
        web_in_thread=False,
        web_application_options={"handler_args": {"keepalive_timeout": settings.web_idle_timeout_s}},
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,
        broker_session_timeout=settings.session_timeout_s,
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_commit_interval=settings.commit_interval_s,
        broker_max_poll_records=settings.ingest_max_records,
        consumer_auto_offset_reset="earliest",
        consumer_max_fetch_size=4 << 20,
        producer_linger_ms=5,
        producer_max_batch_size=1 << 20,
        table_standby_replicas=0,
        stream_wait_empty=False,
        worker_redirect_stdouts=False,
        logging_config=None,
    )
    app.fleet_settings = settings
    app.verifier = verifier
    app.audit = AuditLog(app.topic(settings.topic_audit, key_type=bytes, value_type=bytes, key_serializer="raw",
                                   value_serializer="raw", partitions=1), str(app.conf.canonical_url))
    log.info("Kafka clients: %s", describe(settings))
    app.twins = app.Table(
        "twins",
        default=None,
        partitions=settings.partitions,
        key_type=bytes,  # raw VIN bytes: same partitioner input as the telemetry key
        value_type=bytes,
        use_partitioner=True,
        help="Per-vehicle digital twin (msgpack twins.twin.Twin), keyed by VIN.",
    )
    telemetry = app.topic(settings.topic_telemetry, key_type=bytes, value_type=bytes,
                          key_serializer="raw", value_serializer="raw", partitions=settings.partitions)
    dlq = app.topic(settings.topic_telemetry_dlq, key_type=bytes, value_type=bytes,
                    key_serializer="raw", value_serializer="raw", partitions=settings.partitions)
    maintenance = app.topic(settings.topic_maintenance, key_type=bytes, value_type=bytes,
                            key_serializer="raw", value_serializer="raw", partitions=settings.partitions)
    app.topics.add(telemetry)  # subscribe: the batch fast path consumes it, no agent needed
    app.topics.add(maintenance)
    maintenance_dlq = app.topic(settings.topic_maintenance_dlq, key_type=bytes, value_type=bytes,
                                key_serializer="raw", value_serializer="raw", partitions=settings.partitions)
    registry = load_registry(settings.vehicle_registry, settings.weather_cell_precision)
    app.ingest = TwinIngest(
        table=app.twins,
        dead_letters=DeadLetters(dlq, settings.topic_telemetry, settings.partitions, settings.dlq_max_value_bytes),
        maintenance_dead_letters=DeadLetters(maintenance_dlq, settings.topic_maintenance, settings.partitions,
                                             settings.dlq_max_value_bytes),
        limits=settings.input_limits,
        seq_jump_max=settings.seq_jump_max,
        in_service_ms=registry.in_service_ms,
        signing=SigningKeys(settings.signing_mode, settings.signing_keys),
        consumer_getter=lambda: app.consumer,
        flush_interval_s=settings.twin_flush_interval_s,
        flush_max_dirty=settings.twin_flush_max_dirty,
        partitions=settings.partitions,
        cell_precision=settings.weather_cell_precision,
        home_cells=registry.home_cells,
        default_home_cell=settings.default_home_cell,
    )
    app.batch_topics[settings.topic_telemetry] = app.ingest.handle_batch
    app.batch_topics[settings.topic_maintenance] = app.ingest.handle_maintenance_batch
    app.ingest.telemetry_topic = settings.topic_telemetry
    for topic in (settings.topic_telemetry, settings.topic_maintenance):  # series at 0 from start-up
        for outcome in ("valid", "unsigned_accepted"):
            metrics.SIGNED_RECORDS.labels(topic, outcome)
    register_weather(app, settings)
    register_charging(app, settings)

    @app.task
    async def _flusher() -> None:
        await app.ingest.run_flusher()

    register_alerting(app, settings)
    register_worker_metrics(app, settings)

    app.scorer = RiskScorer(app, settings.risk_model_dir, settings.risk_score_interval_s, settings.risk_score_tick_s,
                            settings.risk_reload_s, settings.risk_batch_max, registry.in_service_ms)

    @app.task
    async def _scorer() -> None:
        await app.scorer.run()

    app.readiness = Readiness(app)

    @app.task
    async def _broker_probe() -> None:
        await app.readiness.run_probe()

    @app.on_rebalance_complete.connect
    async def _on_rebalance_complete(app_: Any, **kwargs: Any) -> None:
        app.readiness.on_rebalance_complete()

    @app.on_partitions_revoked.connect
    async def _on_revoked(app_: Any, revoked: set[TP], **kwargs: Any) -> None:
        app.readiness.on_revoked()
        await app.ingest.on_revoked(set(revoked))
        app.alerts.forget({tp.partition for tp in revoked if tp.topic == settings.topic_telemetry})

    from streams.alert_views import register_alert_views
    from streams.charging_views import register_charging_views
    from streams.views import register_views

    register_views(app)
    register_charging_views(app)
    register_alert_views(app)
    return app
