"""Every topic the service uses, created explicitly with the right partition counts.

The twin table's changelog must have as many partitions as the telemetry topic
(Faust co-partitions them), and some brokers (Tansu) auto-create unknown topics
with their own partition count, so we never rely on auto-creation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError, TopicAlreadyExistsError

from streams.kafka_security import kafka_python_kwargs
from streams.settings import Settings
from twins.errors import ConfigurationError


@dataclass(frozen=True)
class TopicSpec:
    """Name, partitions and configs of one topic."""

    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)
    purpose: str = ""


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The topics this service reads or writes, in documentation order."""
    p = settings.partitions
    compact = {"cleanup.policy": "compact"}
    return [
        TopicSpec(settings.topic_telemetry, p, purpose="vehicle telemetry in, key = VIN"),
        TopicSpec(settings.topic_telemetry_dlq, p, purpose="records that failed decoding or validation"),
        TopicSpec(settings.twin_changelog_topic, p, compact, purpose="twin table changelog (Faust)"),
        TopicSpec(settings.topic_weather, 1, purpose="weather observations and forecasts in, key = geohash cell"),
        TopicSpec(settings.topic_weather_dlq, 1, purpose="weather records that failed validation"),
        TopicSpec(settings.weather_changelog_topic, 1, compact, purpose="weather table changelog (Faust, global)"),
        TopicSpec(settings.topic_maintenance, p, purpose="repair and failure records in, key = VIN"),
        TopicSpec(settings.topic_maintenance_dlq, p, purpose="repair records that failed validation"),
        TopicSpec(settings.topic_charging_requests, p, purpose="charging plug-in/plug-out requests, key = site"),
        TopicSpec(settings.topic_grid, p, purpose="grid signals (TOU prices, peaks, DR events), key = site"),
        TopicSpec(settings.topic_charging_schedules, p, purpose="charging schedules out, key = site"),
        TopicSpec(settings.topic_charging_dlq, p, purpose="charging/grid messages that failed validation"),
        TopicSpec(settings.changelog_topic("charging_state"), p, compact, purpose="planner state per site (Faust)"),
        TopicSpec(settings.changelog_topic("charging_plans"), p, compact, purpose="latest plan per site (Faust)"),
        TopicSpec(settings.topic_alerts, p, purpose="alert state changes out, key = VIN (co-partitioned with telemetry)"),
        TopicSpec(settings.topic_audit, 1, purpose="audit trail (append-only): acks, resolves, reloads, refusals"),
        TopicSpec(f"{settings.app_id}-__assignor-__leader", 1, purpose="Faust leader election"),
    ]


def admin_client(settings: Settings, bootstrap: str, timeout_s: float = 30.0) -> KafkaAdminClient:
    """A kafka-python admin client, retrying until the cluster answers."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="fleet-topology",
                                    request_timeout_ms=10_000, **client_security(settings))
        except (KafkaConnectionError, KafkaTimeoutError):
            if time.monotonic() > deadline:
                raise ConfigurationError(
                    f"no Kafka broker answered at {bootstrap!r} within {timeout_s}s; "
                    "check FLEET_KAFKA_BOOTSTRAP or unset it to use the embedded broker"
                ) from None
            time.sleep(0.5)


def client_security(settings: Settings) -> dict[str, object]:
    """kafka-python security keyword arguments from settings (TLS and SASL, :mod:`streams.kafka_security`)."""
    return kafka_python_kwargs(settings)


def ensure_topics(settings: Settings, bootstrap: str) -> list[TopicSpec]:
    """Create missing topics; fail loudly when an existing one has the wrong partition count."""
    specs = topic_specs(settings)
    admin = admin_client(settings, bootstrap)
    try:
        existing = set(admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        for spec in missing:
            try:
                admin.create_topics(
                    [NewTopic(spec.name, spec.partitions, settings.replication_factor, topic_configs=spec.config)]
                )
            except TopicAlreadyExistsError:
                pass
        _check_partitions(admin, specs)
    except KafkaError as exc:
        raise ConfigurationError(f"could not create topics on {bootstrap!r}: {exc}") from exc
    finally:
        admin.close()
    return specs


def _check_partitions(admin: KafkaAdminClient, specs: list[TopicSpec], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        described = {t.get("name", t.get("topic")): len(t["partitions"]) for t in admin.describe_topics([s.name for s in specs])}
        wrong = [(s.name, s.partitions, described.get(s.name, 0)) for s in specs if described.get(s.name) != s.partitions]
        if not wrong:
            return
        if time.monotonic() > deadline:
            detail = ", ".join(f"{n} has {got} partitions, needs {want}" for n, want, got in wrong)
            raise ConfigurationError(
                f"topic layout mismatch: {detail}. Set FLEET_PARTITIONS to match or recreate the topics."
            )
        time.sleep(0.3)
