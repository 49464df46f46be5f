"""Property-based fuzzing of every input topic's decoding boundary, in process (issue 14).

Hypothesis generates hostile values for each topic, byte-level (random bytes, invalid UTF-8,
tombstones, oversize, deep nesting) and structure-aware (a valid record with one field replaced
by an arbitrary JSON value, or a numeric field pushed to extremes). Every example must end as the
worker would account for it: a typed record that the real merge/apply code takes (applied or
counted as duplicate/too late), or :class:`InvalidReading` with a reason code of
``twins.decoding.REASONS`` whose dead-letter headers fit their bounds. Nothing else may escape.
10,500 examples per run.
"""

from __future__ import annotations

import doctest
import importlib
import json
from datetime import datetime, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.charging import Planner
from models.charging.messages import apply, decode_message, decode_object
from streams.dead_letter import (FIELD_MAX_BYTES, REASON_MAX_BYTES, VALUE_EXCERPT_MAX_BYTES, DeadLetters,
                                 Rejection, dlq_headers)
from tests.charging._helpers import depot, evening_tou
from twins.decoding import REASONS, InputLimits, check_not_future, decode_input
from twins.errors import InvalidReading
from twins.maintenance import ComponentLog, apply_maintenance, check_maintenance_time, decode_maintenance
from twins.reading import decode_reading
from twins.twin import merge_into, new_twin
from twins.weather import apply_weather, decode_weather, new_cell

NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, the worker's clock in these tests
LIMITS = InputLimits(max_record_bytes=16 * 1024, max_future_skew_ms=300_000)
FUZZ = settings(max_examples=1500, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

VIN = "1G1FZ6S09L4100001"
VALID = {
    "telemetry": {"schema": 1, "vin": VIN, "ts": NOW_MS - 1000, "seq": 7,
                  "signals": {"Vehicle.Speed": 48.2, "Vehicle.Diagnostics.DTCList": ["P0A7F"],
                              "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current": 71.5,
                              "Vehicle.LowVoltageSystemState": "ON"}},
    "maintenance": {"schema": 1, "vin": VIN, "component": "inverter", "event": "replacement",
                    "time": "2025-11-06T08:00:00Z", "odometer_km": 48230.0},
    "weather": {"schema": 1, "cell": "dhwf", "ts": NOW_MS - 3_600_000, "issued": NOW_MS - 3_600_000,
                "air_temp_c": 31.1, "rel_humidity_pct": 59.0, "precip_mm": 0.0, "wind_mps": 4.6, "source": "x"},
    "charging": {"type": "plug_in", "at": "2026-03-03T17:00:00-08:00",
                 "request": {"vin": VIN, "site_id": "depot", "plug_in": "2026-03-03T17:00:00-08:00",
                             "departure": "2026-03-04T07:00:00-08:00", "charger_id": "ac0", "max_kw": 11.0,
                             "energy_kwh": 30.0}},
    "grid": {"type": "grid", "at": "2026-03-03T00:00:00-08:00",
             "signals": {"site_id": "depot", "start": "2026-03-03T00:00:00-08:00", "slot_minutes": 60,
                         "prices_per_kwh": [0.2] * 24, "demand_charge_per_kw": 10.0}},
}

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
    st.sampled_from(["", "\n", "1G1FZ6S09L4100001\n", " 1G1FZ6S09L4100001", "9999-12-31T23:59:59Z", "NaN"]),
    st.sampled_from([2**63 - 1, -1, 0, 4_102_444_800_000, 1e308, -1e308, 10**9]),
)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=12)


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value in a nested JSON document."""
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, prefix + (i,))
    return out


def _get(doc: Any, path: tuple) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _replace(doc: Any, path: tuple, value: Any) -> Any:
    doc = json.loads(json.dumps(doc))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


@st.composite
def mutated(draw: Any, topic: str) -> bytes:
    """A valid record of ``topic`` with one value replaced, a key dropped or added, re-encoded."""
    doc = VALID[topic]
    path = draw(st.sampled_from(_paths(doc)))
    action = draw(st.sampled_from(["replace", "replace", "number", "drop", "add"]))
    numbers = [p for p in _paths(doc) if isinstance(_get(doc, p), (int, float)) and not isinstance(_get(doc, p), bool)]
    if action == "number" and numbers:         # plausible-looking numbers: many decode, and must merge or apply
        doc = _replace(doc, draw(st.sampled_from(numbers)),
                       draw(st.integers(-10**4, 10**4) | st.floats(-1e4, 1e4) | st.integers(NOW_MS - 10**9, NOW_MS)))
    elif action == "replace":
        doc = _replace(doc, path, draw(json_values))
    elif action == "drop":
        doc = json.loads(json.dumps(doc))
        node = doc
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    else:
        doc = _replace(doc, (draw(st.text(min_size=1, max_size=20)),), draw(json_values))
    return json.dumps(doc).encode()


@st.composite
def byte_level(draw: Any, topic: str) -> bytes | None:
    """Tombstones, raw bytes, invalid UTF-8 inside a valid record, deep nesting, oversize values."""
    valid = json.dumps(VALID[topic]).encode()
    kind = draw(st.sampled_from(["none", "bytes", "utf8", "nest", "huge", "flip", "truncate"]))
    if kind == "none":
        return None
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "utf8":
        at = valid.index(b'"', valid.index(b":") + 1) + 1  # inside the first string value
        return valid[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80"])) + valid[at:]
    if kind == "nest":
        depth = draw(st.integers(min_value=200, max_value=5000))
        opener = draw(st.sampled_from([b"[", b'{"a":']))
        closer = b"]" if opener == b"[" else b"}"
        inner = opener * depth + b"1" + closer * depth
        return valid[:-1] + b',"deep":' + inner + b"}"
    if kind == "huge":
        return valid[:-1] + b',"pad":"' + b"x" * draw(st.integers(LIMITS.max_record_bytes, 2 * LIMITS.max_record_bytes)) + b'"}'
    if kind == "flip":
        i = draw(st.integers(0, len(valid) - 1))
        return valid[:i] + bytes([valid[i] ^ draw(st.integers(1, 255))]) + valid[i + 1:]
    return valid[: draw(st.integers(0, len(valid) - 1))]


def hostile(topic: str) -> st.SearchStrategy[bytes | None]:
    return st.one_of(mutated(topic), byte_level(topic))


def assert_dead_letter_fits(raw: bytes | None, exc: InvalidReading) -> None:
    """The rejection carries a known reason code, and its dead letter's headers and value are bounded."""
    assert exc.code in REASONS, exc.code
    headers = dict(dlq_headers(exc, "fleet.topic", 3, 42, NOW_MS))
    assert len(headers["dlq.reason"]) <= REASON_MAX_BYTES and len(headers["dlq.field"]) <= FIELD_MAX_BYTES
    assert len(headers["dlq.value"]) <= VALUE_EXCERPT_MAX_BYTES and headers["dlq.error"] == exc.code.encode()
    dlq = DeadLetters(topic=None, source_topic="fleet.topic", partitions=4, max_value_bytes=1024)
    key, value, more = dlq.record(Rejection(b"k" * 5000, raw, exc, 3, 42, None))
    assert len(key) <= 1024 and (value is None or len(value) <= 1024)
    assert sum(len(v) for _, v in more) < 4096


def outcome(raw: bytes | None, decode: Any, check: Any, take: Any) -> str:
    try:
        record = decode_input(raw, decode, LIMITS)
        check(record)
    except InvalidReading as exc:
        assert_dead_letter_fits(raw, exc)
        return "dead_letter"
    return take(record)


def take_reading(reading: Any) -> str:
    twin = new_twin(reading.vin)
    merge_into(twin, [reading])                     # the real merge: applied, or counted
    merge_into(twin, [reading])                     # a redelivery is never applied twice
    assert (twin.n_applied, twin.n_duplicate + twin.n_too_late) == (1, 1)
    return "applied"


@FUZZ
@given(hostile("telemetry"))
def test_telemetry_records_end_applied_or_dead_lettered(raw: bytes | None) -> None:
    outcome(raw, decode_reading, lambda r: check_not_future(r.ts, NOW_MS, LIMITS, "$.ts"), take_reading)


@FUZZ
@given(st.one_of(hostile("telemetry"), st.binary(max_size=64)))
def test_telemetry_bytes_and_mutations_more(raw: bytes | None) -> None:
    outcome(raw, decode_reading, lambda r: check_not_future(r.ts, NOW_MS, LIMITS, "$.ts"), take_reading)


def take_maintenance(rec: Any) -> str:
    log = ComponentLog()
    apply_maintenance(log, rec)
    return "applied"


@FUZZ
@given(hostile("maintenance"))
def test_maintenance_records_end_applied_or_dead_lettered(raw: bytes | None) -> None:
    outcome(raw, decode_maintenance, lambda m: check_maintenance_time(m, NOW_MS, NOW_MS - 400 * 86_400_000, LIMITS),
            take_maintenance)


@FUZZ
@given(hostile("weather"))
def test_weather_records_end_applied_or_dead_lettered(raw: bytes | None) -> None:
    outcome(raw, decode_weather, lambda w: check_not_future(w.issued, NOW_MS, LIMITS, "$.issued"),
            lambda w: (apply_weather(new_cell(w.cell), w), "applied")[1])


PLANNER_STATE = Planner(depot(cap_kw=30.0, n_ac=3), evening_tou()).state()
AT_LATEST = datetime(2026, 3, 5, tzinfo=timezone.utc)


def take_charging(msg: Any) -> str:
    """What the stream's agent does with a decoded message: the site's planner applies it or refuses it."""
    planner = Planner.from_state(PLANNER_STATE)
    try:
        apply(planner, msg)
    except ValueError:
        return "dead_letter"                        # the agent dead-letters a refusal as `processing`
    return "applied"


def check_charging(msg: Any) -> None:
    check_not_future(int(msg.at.timestamp() * 1000), int(AT_LATEST.timestamp() * 1000), LIMITS, "$.at")


def decode_charging(raw: bytes) -> Any:
    return decode_message(msgspec.json.encode(decode_object(raw)))


@FUZZ
@given(hostile("charging"))
def test_charging_requests_end_applied_or_dead_lettered(raw: bytes | None) -> None:
    outcome(raw, decode_charging, check_charging, take_charging)


@settings(FUZZ, max_examples=1000)
@given(hostile("grid"))
def test_grid_messages_end_applied_or_dead_lettered(raw: bytes | None) -> None:
    outcome(raw, decode_charging, check_charging, take_charging)


@settings(FUZZ, max_examples=2000)
@given(st.sampled_from(list(VALID)), st.binary(max_size=300) | st.none())
def test_raw_bytes_on_every_topic(topic: str, raw: bytes | None) -> None:
    decoders = {"telemetry": decode_reading, "maintenance": decode_maintenance, "weather": decode_weather,
                "charging": decode_charging, "grid": decode_charging}
    outcome(raw, decoders[topic], lambda r: None, lambda r: "applied")


def test_the_valid_records_are_valid():
    """The generators start from records the boundary accepts (else every mutation test is vacuous)."""
    def raw(topic: str) -> bytes:
        return json.dumps(VALID[topic]).encode()

    assert outcome(raw("telemetry"), decode_reading, lambda r: check_not_future(r.ts, NOW_MS, LIMITS, "$.ts"),
                   take_reading) == "applied"
    assert outcome(raw("maintenance"), decode_maintenance,
                   lambda m: check_maintenance_time(m, NOW_MS, NOW_MS - 400 * 86_400_000, LIMITS),
                   take_maintenance) == "applied"
    assert outcome(raw("weather"), decode_weather, lambda w: None, lambda w: "applied") == "applied"
    for topic in ("charging", "grid"):
        assert outcome(raw(topic), decode_charging, check_charging, take_charging) == "applied"


def test_every_exception_a_hostile_value_raises_becomes_a_rejection():
    """The exception classes a decoder lets escape (found by fuzzing) all end as InvalidReading."""
    cases = {
        "tombstone": (None, "tombstone"),
        "RecursionError": (b'{"schema":1,"vin":' + b"[" * 5000 + b"]" * 5000 + b"}", "invalid"),
        "UnicodeDecodeError": (b'{"schema":1,"vin":"\xff"}', "invalid"),
        "TypeError (bytes-like needed)": (None, "tombstone"),
        "oversize": (b" " * (LIMITS.max_record_bytes + 1), "too_large"),
        "huge integer": (b'{"schema":1,"vin":"1G1FZ6S09L4100001","ts":' + b"9" * 400 + b',"seq":0,"signals":{}}',
                         "invalid"),
        "not an object": (b"[]", "invalid"),
        "empty string": (b"", "invalid"),
    }
    for name, (raw, code) in cases.items():
        for decode in (decode_reading, decode_maintenance, decode_weather, decode_charging):
            try:
                decode_input(raw, decode, LIMITS)
            except InvalidReading as exc:
                assert exc.code == code, (name, decode.__name__, exc.code)
            else:
                raise AssertionError(f"{name} accepted by {decode.__name__}")

    def boom(raw: bytes) -> None:
        raise OverflowError("a decoder bug or a value no decoder expected")

    try:
        decode_input(b"{}", boom, LIMITS)
    except InvalidReading as exc:
        assert exc.code == "invalid" and "OverflowError" in exc.reason


@pytest.mark.parametrize("module", ["twins.decoding", "twins.reading", "twins.maintenance", "twins.twin",
                                    "streams.http_input"])
def test_boundary_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
