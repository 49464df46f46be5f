"""The telemetry contract: strict decoding with errors naming field and value."""

from __future__ import annotations

import json

import pytest

from twins.errors import InvalidReading
from twins.reading import decode_reading, present_signals

OK = {"schema": 1, "vin": "1FA6P8CF0L5100001", "ts": 1767225600000, "seq": 3,
      "signals": {"Vehicle.Speed": 48.5, "Vehicle.Diagnostics.DTCList": ["P0A7F"],
                  "Vehicle.Powertrain.TractionBattery.Charging.IsCharging": False}}


def enc(d: dict) -> bytes:
    return json.dumps(d).encode()


def with_signal(path: str, value: object) -> bytes:
    d = json.loads(json.dumps(OK))
    d["signals"] = {path: value}
    return enc(d)


def test_valid_record_decodes_with_only_present_signals():
    r = decode_reading(enc(OK))
    assert r.seq == 3 and r.ts == 1767225600000
    assert present_signals(r) == {
        "Vehicle.Speed": 48.5,
        "Vehicle.Diagnostics.DTCList": ["P0A7F"],
        "Vehicle.Powertrain.TractionBattery.Charging.IsCharging": False,
    }


@pytest.mark.parametrize(
    ("raw", "field", "value"),
    [
        (with_signal("Vehicle.Speed", 512.0), "$.signals.Vehicle.Speed", 512.0),
        (with_signal("Vehicle.Speed", "fast"), "$.signals.Vehicle.Speed", "fast"),
        (with_signal("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", -3),
         "$.signals.Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", -3),
        (with_signal("Vehicle.Powertrain.TractionBattery.Charging.IsCharging", 1),
         "$.signals.Vehicle.Powertrain.TractionBattery.Charging.IsCharging", 1),
        (with_signal("Vehicle.Diagnostics.DTCList", ["P0A7F", "bad"]),
         "$.signals.Vehicle.Diagnostics.DTCList[1]", "bad"),
        (with_signal("Vehicle.LowVoltageSystemState", "SLEEPY"), "$.signals.Vehicle.LowVoltageSystemState", "SLEEPY"),
        (enc({**OK, "vin": "TOO-SHORT"}), "$.vin", "TOO-SHORT"),
        (enc({**OK, "ts": 1767225600}), "$.ts", 1767225600),
        (enc({**OK, "seq": -1}), "$.seq", -1),
        (enc({**OK, "schema": 2}), "$.schema", 2),
    ],
)
def test_invalid_values_name_field_and_value(raw, field, value):
    with pytest.raises(InvalidReading) as err:
        decode_reading(raw)
    assert err.value.field == field
    assert err.value.value == value
    assert repr(value) in str(err.value)


def test_unknown_signal_is_rejected():
    with pytest.raises(InvalidReading) as err:
        decode_reading(with_signal("Vehicle.Cabin.Sunroof.Position", 3))
    assert "Vehicle.Cabin.Sunroof.Position" in str(err.value)


def test_missing_field_and_garbage():
    d = dict(OK)
    del d["seq"]
    with pytest.raises(InvalidReading, match="seq"):
        decode_reading(enc(d))
    with pytest.raises(InvalidReading, match="not valid JSON") as err:
        decode_reading(b"\x00\x01not json")
    assert err.value.field == "$"


def test_committed_json_schema_matches_the_decoder():
    from twins.schema import SCHEMA_PATH, render

    assert SCHEMA_PATH.read_text() == render(), "run `make schema` and commit twins/telemetry.schema.json"


def test_json_schema_lists_every_signal_with_its_range():
    from twins.schema import telemetry_schema
    from twins.signals import SIGNALS

    props = telemetry_schema()["$defs"]["Signals"]["properties"]
    assert set(props) == {s.path for s in SIGNALS}
    speed = props["Vehicle.Speed"]
    assert (speed["minimum"], speed["maximum"]) == (-250, 400)
    assert "km/h" in speed["description"]
