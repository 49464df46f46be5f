"""Repair-log records: validation, order-independent folding, component ages."""

from __future__ import annotations

import json
import random

import pytest

from twins.errors import InvalidReading
from twins.maintenance import (
    ComponentLog,
    apply_maintenance,
    component_age_days,
    decode_maintenance,
    records_from_csv,
)

VIN = "1G1FZ6S09L4100001"


def rec(component: str, event: str, time: str, **extra: object) -> bytes:
    return json.dumps({"schema": 1, "vin": VIN, "component": component, "event": event, "time": time,
                       **extra}).encode()


def test_invalid_records_name_field_and_value():
    with pytest.raises(InvalidReading) as err:
        decode_maintenance(rec("wiper", "failure", "2026-03-04T10:15:00Z"))
    assert err.value.field == "$.component" and err.value.value == "wiper"
    with pytest.raises(InvalidReading, match="no UTC offset"):
        decode_maintenance(rec("inverter", "failure", "2026-03-04T10:15:00"))
    with pytest.raises(InvalidReading) as err:
        decode_maintenance(rec("inverter", "failure", "2026-03-04T10:15:00Z", odometer_km=-5))
    assert err.value.field == "$.odometer_km" and err.value.value == -5


def test_newest_times_win_in_any_order():
    records = [decode_maintenance(rec(c, e, t)) for c, e, t in [
        ("inverter", "failure", "2026-03-04T10:15:00Z"), ("inverter", "replacement", "2026-03-05T09:00:00Z"),
        ("inverter", "failure", "2025-01-01T00:00:00Z"), ("lv_battery", "replacement", "2026-01-10T00:00:00Z"),
        ("traction_battery", "inspection_ok", "2026-02-01T00:00:00Z")]]
    logs = []
    for seed in range(10):
        log = ComponentLog()
        for r in random.Random(seed).sample(records, len(records)):
            apply_maintenance(log, r)
        logs.append(log)
    assert all(log == logs[0] for log in logs)
    log = logs[0]
    assert log.failed_ms[0] == records[0].time_ms and log.serviced_ms[0] == records[1].time_ms
    assert log.serviced_ms[3] == records[3].time_ms and log.inspections == 1
    now = records[1].time_ms + 10 * 86_400_000
    assert component_age_days(log, "inverter", now, in_service_ms=0) == pytest.approx(10.0)
    # never serviced: age of the vehicle; nothing known: None
    assert component_age_days(log, "drive_motor", now, in_service_ms=now - 400 * 86_400_000) == pytest.approx(400.0)
    assert component_age_days(log, "drive_motor", now, in_service_ms=None) is None


def test_csv_rows_become_wire_records():
    rows = records_from_csv("vin,component,event,time,odometer_km\n"
                            f"{VIN},inverter,failure,2026-03-04T10:15:00Z,48211.5\n{VIN},lv_battery,repair,2026-03-05T00:00:00Z,\n")
    assert [decode_maintenance(json.dumps(r).encode()).odometer_km for r in rows] == [48211.5, None]
