"""Weather cells, cell state, residency and exposure: order independence with real numbers."""

from __future__ import annotations

import json
import random

import pytest

from twins import geohash
from twins.errors import InvalidReading
from twins.residency import GAP_FILL_HOURS, Residency, exposure, note_location
from twins.weather import (
    HOUR_MS,
    apply_hourly,
    apply_weather,
    decode_weather,
    hourly_from_day,
    new_cell,
    new_day,
)

H0 = 1_783_533_600_000 // HOUR_MS  # 2026-07-08 18:00Z, an hour index


def rec(cell: str, hour: int, temp: float, rh: float = 50.0, issued_hour: int | None = None) -> bytes:
    issued = (hour if issued_hour is None else issued_hour) * HOUR_MS
    return json.dumps({"schema": 1, "cell": cell, "ts": hour * HOUR_MS, "issued": issued,
                       "air_temp_c": temp, "rel_humidity_pct": rh}).encode()


def test_geohash_matches_published_examples():
    assert geohash.encode(57.64911, 10.40744, 11) == "u4pruydqqvj"  # Wikipedia's example
    assert geohash.encode(42.6, -5.6, 5) == "ezs42"
    lat_lo, lat_hi, lon_lo, lon_hi = geohash.bounds("ezs42")
    assert lat_lo <= 42.6 <= lat_hi and lon_lo <= -5.6 <= lon_hi
    with pytest.raises(ValueError, match="'a' is not in the base-32 alphabet"):
        geohash.bounds("ezsa")


def test_weather_record_validation_names_field_and_value():
    with pytest.raises(InvalidReading) as err:
        decode_weather(rec("dhwf", H0, 99.0))
    assert err.value.field == "$.air_temp_c" and err.value.value == 99.0
    with pytest.raises(InvalidReading, match="before issued"):
        decode_weather(rec("dhwf", H0, 20.0, issued_hour=H0 + 1))
    with pytest.raises(InvalidReading) as err:
        decode_weather(rec("dhwa", H0, 20.0))
    assert err.value.field == "$.cell"


def test_cell_state_is_independent_of_arrival_order():
    records = [decode_weather(rec("dhwf", H0 + h, 25.0 + h)) for h in range(6)]
    records += [decode_weather(rec("dhwf", H0 + 5 + k, 40.0 + k, issued_hour=H0 + 5)) for k in range(1, 4)]
    records += [decode_weather(rec("dhwf", H0 + 7, 33.0, issued_hour=H0 + 2))]  # older forecast for hour +7
    records += [decode_weather(rec("dhwf", H0 + 3, 11.0, issued_hour=H0 + 1))]  # forecast for an observed hour
    ref = None
    for seed in range(20):
        order = records[:]
        random.Random(seed).shuffle(order)
        state = new_cell("dhwf")
        for r in order:
            state = apply_weather(state, r)
        if ref is None:
            ref = state
        assert state == ref
    assert ref.latest.air_temp_c == 30.0
    assert [(f.ts // HOUR_MS - H0, f.air_temp_c) for f in ref.forecasts] == [(6, 41.0), (7, 42.0), (8, 43.0)]


def test_hourly_day_keeps_newest_observation_per_hour():
    day = new_day("dhwf", H0 // 24)
    day = apply_hourly(day, decode_weather(rec("dhwf", H0, 30.0, 85.0)))
    later_same_hour = decode_weather(json.dumps({"schema": 1, "cell": "dhwf", "ts": H0 * HOUR_MS + 600_000,
                                                 "issued": H0 * HOUR_MS + 600_000, "air_temp_c": 31.0}).encode())
    day = apply_hourly(day, later_same_hour)
    day = apply_hourly(day, decode_weather(rec("dhwf", H0, 29.0)))  # older one in the same hour: ignored
    assert hourly_from_day(day, H0)[0] == 31.0
    assert hourly_from_day(day, H0 + 1) is None


def test_residency_exposure_matches_hand_computation():
    res = Residency()
    for h in (0, 1, 2, 5):  # a 2-hour gap in the same cell is filled
        note_location(res, (H0 + h) * HOUR_MS + 1000, "dhwf")
    note_location(res, (H0 + 30 + GAP_FILL_HOURS) * HOUR_MS, "b3vf")  # far later, elsewhere
    temps = {("dhwf", H0 + h): (36.5 + h, 85.0 if h % 2 else 60.0) for h in range(6)}
    temps[("b3vf", H0 + 30 + GAP_FILL_HOURS)] = (-12.0, 90.0)
    out = exposure(res, lambda cell, hour: temps.get((cell, hour)))
    # dhwf hours 0..5: T - 35 = 1.5+2.5+3.5+4.5+5.5+6.5 = 24; RH>=80 at h=1,3,5 -> 3; b3vf: 2 below -10, RH 90 -> +1
    assert out == {"weather_degree_hours_above_35c": 24.0, "weather_degree_hours_below_minus10c": 2.0,
                   "weather_hours_rh_80": 4.0, "weather_hours_observed": 7.0}


def test_residency_is_order_independent_and_bounded():
    stamps = [(H0 + h) * HOUR_MS + 5 for h in range(0, 200, 3)]
    ref = Residency()
    for ts in stamps:
        note_location(ref, ts, "dhwf")
    shuffled = Residency()
    for ts in random.Random(1).sample(stamps, len(stamps)):
        note_location(shuffled, ts, "dhwf")
    assert (shuffled.cells, shuffled.starts, shuffled.ends) == (ref.cells, ref.starts, ref.ends) == (
        ["dhwf"], [H0], [H0 + 198])
    hopping = Residency()
    for i in range(100):  # hops every 10 h: more intervals than kept
        note_location(hopping, (H0 + 10 * i) * HOUR_MS, ["dhwf", "b3vf"][i % 2])
    assert len(hopping.cells) == 16 and hopping.ends[-1] == H0 + 990 and hopping.starts[0] == H0 + 840
    far = Residency()
    for i in range(20):  # hops every 100 h: the 30-day window prunes first
        note_location(far, (H0 + 100 * i) * HOUR_MS, ["dhwf", "b3vf"][i % 2])
    assert far.starts[0] >= far.ends[-1] - 720 and len(far.cells) == 8
