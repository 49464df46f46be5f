"""Alert records and the per-vehicle alert book kept inside the twin.

:class:`Alert` is both the state of one alert and the record published on
``fleet.alerts`` at each change (JSON, key = VIN). Its ``alert_id`` is
deterministic — ``{vin}:{rule}:{episode}``, the episode counting raises of that rule
on that vehicle — so replaying the same telemetry after a restart yields the same
id, never a second alert.

:class:`AlertBook` (one per twin, written with the twin to its changelog) holds the
open and acknowledged alerts, the episode counters, cooldowns and the condition
trackers of the signal rules.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

SCHEMA_VERSION = 1
Status = Literal["open", "acknowledged", "resolved"]
Event = Literal["opened", "escalated", "acknowledged", "resolved"]
STATUSES: tuple[str, ...] = ("open", "acknowledged", "resolved")


class Alert(msgspec.Struct, kw_only=True, omit_defaults=False):
    """One alert at one revision; the ``fleet.alerts`` record schema (``alert.schema.json``)."""

    schema: int = SCHEMA_VERSION
    alert_id: str
    revision: int
    event: Event
    status: Status
    vin: str
    component: str
    rule: str
    rule_kind: str
    rules_version: str
    severity: str
    title: str
    action: str
    evidence: dict[str, Any]
    probability: float | None = None
    horizon_days: float | None = None
    model_version: str | None = None
    region: str | None = None
    weather: dict[str, Any] | None = None
    opened_ms: int
    updated_ms: int
    resolved_ms: int | None = None
    by: str | None = None
    note: str | None = None


class AlertBook(msgspec.Struct, array_like=True, gc=False):
    """A vehicle's active alerts and rule trackers (pure data, stored in the twin)."""

    active: list[Alert] = msgspec.field(default_factory=list)
    #: rule id -> raises so far (the episode number of the next alert is this + 1)
    episodes: dict[str, int] = msgspec.field(default_factory=dict)
    #: rule id -> event time (ms) until which the rule may not raise again
    cooldown_until: dict[str, int] = msgspec.field(default_factory=dict)
    #: signal rule id -> event time (ms) since which its condition holds
    since: dict[str, int] = msgspec.field(default_factory=dict)
    #: last known values of the signals the rules watch (signal slot, ``twins.signals.SLOT`` -> value)
    last: dict[int, Any] = msgspec.field(default_factory=dict)
    #: newest reading time the signal rules have seen
    last_ts: int = 0
    #: low-voltage system: 0 unknown, 1 asleep, 2 awake; end of the current wake window
    power: int = 0
    wake_until_ms: int = 0


def alert_id(vin: str, rule: str, episode: int) -> str:
    """The deterministic id of the ``episode``-th alert of ``rule`` on ``vin``.

    >>> alert_id("1FA6P8CF0L5100001", "inverter-risk", 1)
    '1FA6P8CF0L5100001:inverter-risk:1'
    """
    return f"{vin}:{rule}:{episode}"


def parse_alert_id(aid: str) -> tuple[str, str, int]:
    """``(vin, rule, episode)`` of an id; ``ValueError`` naming the id if it is not one."""
    parts = aid.split(":")
    if len(parts) != 3 or not parts[2].isdigit() or not parts[0] or not parts[1]:
        raise ValueError(f"{aid!r} is not an alert id (expected VIN:rule:episode, e.g. 1FA6P8CF0L5100001:inverter-risk:1)")
    return parts[0], parts[1], int(parts[2])


def find_active(book: AlertBook, rule: str) -> Alert | None:
    """The open or acknowledged alert of ``rule`` (at most one exists)."""
    for a in book.active:
        if a.rule == rule:
            return a
    return None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Alert)


def encode_alert(alert: Alert) -> bytes:
    """The ``fleet.alerts`` record value (JSON)."""
    return _encoder.encode(alert)


def decode_alert(data: bytes) -> Alert:
    """Inverse of :func:`encode_alert` (raises ``msgspec.ValidationError``/``DecodeError``)."""
    return _decoder.decode(data)


def alert_schema() -> dict[str, Any]:
    """JSON Schema of the record, generated from :class:`Alert` (kept in ``alert.schema.json``)."""
    return msgspec.json.schema(Alert)
