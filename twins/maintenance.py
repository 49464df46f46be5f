"""Repair and failure records: the ``fleet.maintenance`` contract and their effect on a twin.

A record (JSON; Kafka key = VIN; the same fields as a CSV row of a repair log)::

    {"schema": 1, "vin": "1G1FZ6S09L4100001", "component": "inverter", "event": "replacement",
     "time": "2026-03-04T10:15:00Z", "odometer_km": 48211.5}

``component``: ``inverter``, ``traction_battery``, ``drive_motor``, ``lv_battery``;
``event``: ``failure``, ``repair``, ``replacement``, ``inspection_ok``. The twin keeps,
per component, the newest failure and the newest repair/replacement time (newest wins,
so the order records arrive in does not matter) — the component's age for risk models.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from typing import Annotated, Literal

import msgspec

from twins.decoding import InputLimits, check_not_future
from twins.errors import InvalidReading
from twins.reading import TS_MIN_MS, VIN_PATTERN, strict_decode

COMPONENTS: tuple[str, ...] = ("inverter", "traction_battery", "drive_motor", "lv_battery")
EVENTS: tuple[str, ...] = ("failure", "repair", "replacement", "inspection_ok")
Component = Literal["inverter", "traction_battery", "drive_motor", "lv_battery"]
Event = Literal["failure", "repair", "replacement", "inspection_ok"]


class MaintenanceRecord(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One repair-log entry."""

    schema: Literal[1]  # type: ignore[valid-type]
    vin: Annotated[str, msgspec.Meta(pattern=VIN_PATTERN)]
    component: Component
    event: Event
    time: datetime
    odometer_km: Annotated[float, msgspec.Meta(ge=0, le=5_000_000)] | None = None

    @property
    def time_ms(self) -> int:
        """Event time in epoch milliseconds."""
        return int(self.time.timestamp() * 1000)


class ComponentLog(msgspec.Struct, array_like=True, gc=False):
    """Per component (index = ``COMPONENTS``): newest failure and newest repair/replacement (epoch ms, 0 = none)."""

    failed_ms: list[int] = msgspec.field(default_factory=lambda: [0] * len(COMPONENTS))
    serviced_ms: list[int] = msgspec.field(default_factory=lambda: [0] * len(COMPONENTS))
    inspections: int = 0


_decoder = msgspec.json.Decoder(MaintenanceRecord)


def decode_maintenance(raw: bytes) -> MaintenanceRecord:
    """Decode and validate a record; :class:`InvalidReading` names field and value."""
    rec = strict_decode(_decoder, raw)
    if rec.time.tzinfo is None:
        raise InvalidReading(f"time {rec.time.isoformat()!r} has no UTC offset; write e.g. 2026-03-04T10:15:00Z",
                             "$.time", rec.time.isoformat())
    return rec


DAY_MS = 86_400_000


def check_maintenance_time(rec: MaintenanceRecord, now_ms: int, in_service_ms: int | None,
                           limits: InputLimits) -> None:
    """A repair cannot predate the vehicle's service start (less a day) nor lie ahead of the worker's clock.

    >>> rec = decode_maintenance(b'{"schema":1,"vin":"1G1FZ6S09L4100001","component":"inverter",'
    ...                          b'"event":"repair","time":"9999-12-31T00:00:00Z"}')
    >>> check_maintenance_time(rec, 1767225600000, None, InputLimits())
    Traceback (most recent call last):
    ...
    twins.errors.InvalidReading: $.time 253402214400000 is 251634988800 s ahead of the worker's clock (1767225600000); at most 300 s (FLEET_MAX_FUTURE_SKEW_S) is accepted
    """
    t = rec.time_ms
    earliest = in_service_ms - DAY_MS if in_service_ms else TS_MIN_MS
    if t < earliest:
        bound = "a day before the vehicle entered service (fleet registry)" if in_service_ms else "2000-01-01"
        raise InvalidReading(f"time {rec.time.isoformat()} is before {bound}: a repair cannot predate the vehicle",
                             "$.time", rec.time.isoformat(), code="implausible")
    check_not_future(t, now_ms, limits, "$.time")


def apply_maintenance(log: ComponentLog, rec: MaintenanceRecord) -> None:
    """Fold one record into ``log`` in place (newest time per slot wins)."""
    i = COMPONENTS.index(rec.component)
    t = rec.time_ms
    if rec.event == "failure":
        if t > log.failed_ms[i]:
            log.failed_ms[i] = t
    elif rec.event in ("repair", "replacement"):
        if t > log.serviced_ms[i]:
            log.serviced_ms[i] = t
    else:
        log.inspections += 1


def component_age_days(log: ComponentLog, component: str, now_ms: int, in_service_ms: int | None) -> float | None:
    """Days since the component was last repaired/replaced (else since the vehicle entered service)."""
    serviced = log.serviced_ms[COMPONENTS.index(component)]
    since = serviced or in_service_ms
    return None if not since else max(0.0, (now_ms - since) / 86_400_000)


def records_from_csv(text: str) -> list[dict[str, object]]:
    """Rows of a repair-log CSV (``vin,component,event,time,odometer_km``) as wire-format dicts."""
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        odo = row.get("odometer_km")
        rows.append({"schema": 1, "vin": row["vin"], "component": row["component"], "event": row["event"],
                     "time": row["time"], "odometer_km": _number(odo) if odo not in (None, "") else None})
    return rows


def _number(text: str) -> float | str:
    """``text`` as a float, or as given (the decoder then names the field and the value)."""
    try:
        return float(text)
    except ValueError:
        return text


def utc_iso(ms: int) -> str:
    """Epoch ms as the ISO 8601 UTC form used in records."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
