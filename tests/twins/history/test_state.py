"""Entry points: ordering, first reading, msgpack round-trip, bounded memory, feature table, speed."""

from __future__ import annotations

import doctest
import importlib
import math
import time

import msgspec
import numpy as np
import pytest

from tests.twins.history.util import T0, feed, synthetic_stream, vals
from twins.history import (FEATURE_NAMES, FEATURES, MAX_STEP_S, SLOTS_READ, HistoryState, copy_history,
                           decode_history, encode_history, features, update_history)
from twins.history import rainflow
from twins.history.dtc import TRACKED
from twins.history.features import INPUTS, batch_features, state_inputs
from twins.reading import reading_from_dict
from twins.twin import merge_into, new_twin

SIZE_BOUND = 3_000


def test_default_state_and_round_trip():
    s = HistoryState()
    assert decode_history(encode_history(s)) == s
    for ts, v in synthetic_stream(5_000, seed=1):
        update_history(s, ts, v)
    data = encode_history(s)
    back = decode_history(data)
    assert back == s
    assert encode_history(back) == data
    assert msgspec.msgpack.decode(data, type=HistoryState) == s
    a, b = features(s), features(back)
    assert a.keys() == b.keys() and all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)


def test_out_of_order_and_same_time_readings_are_ignored():
    s = feed(HistoryState(), [(0, {"inverter_temp": 90.0}), (10, {"inverter_temp": 90.0})])
    before = encode_history(s)
    update_history(s, T0 + 5_000, vals(inverter_temp=150.0, soc=5.0))     # older than the last update
    update_history(s, T0 + 10_000, vals(inverter_temp=150.0, soc=5.0))    # same time
    assert s.n_ignored == 2
    s.n_ignored = 0
    assert encode_history(s) == before
    update_history(s, T0 + 20_000, vals(inverter_temp=90.0))
    assert features(s)["inv_hours_above_80c"] == pytest.approx(20 / 3600)
    assert features(s)["inv_temp_peak_c"] == 90.0


def test_first_reading_only_sets_the_start_and_gaps_are_capped():
    s = feed(HistoryState(), [(0, {"speed": 50.0})])
    assert s.observed_s == 0.0 and s.n_updates == 1
    feed(s, [(86_400, {"speed": 0.0})])                 # a day offline
    assert MAX_STEP_S == 3900.0
    assert features(s)["usage_driving_hours"] == pytest.approx(3900 / 3600)
    assert features(s)["history_observed_h"] == pytest.approx(3900 / 3600)


def test_memory_is_bounded_over_100k_readings():
    s = HistoryState()
    sizes: dict[int, int] = {}
    fixed: dict[int, int] = {}       # size without the rainflow residue (whose length varies with the signal)
    max_stack = 0
    # One reading a minute: 100k readings span ~69 days, so the 30-day ring is full well before 50k.
    for i, (ts, v) in enumerate(synthetic_stream(100_000, step_s=60.0, seed=2), start=1):
        update_history(s, ts, v)
        max_stack = max(max_stack, len(s.inverter.rf.stack))
        if i % 5_000 == 0:
            residue = len(msgspec.msgpack.encode(s.inverter.rf.stack))
            sizes[i] = len(encode_history(s))
            fixed[i] = sizes[i] - residue
    assert s.n_updates == 100_000
    assert features(s)["inv_cycles_total"] > 5_000 and s.daily.day - s.daily.first_day > 30
    assert max(sizes.values()) < SIZE_BOUND, sizes
    late = [n for i, n in sizes.items() if i > 50_000]
    # No growth: past 50k only the residue length (<= 64 points) and msgpack int widths vary;
    # counters crossing 2**8 / 2**16 add a byte or two.
    assert max(n for i, n in fixed.items() if i > 50_000) <= fixed[50_000] + 16, fixed
    assert max(late) <= fixed[50_000] + 16 + 9 * 64 + 3
    assert max_stack <= 64
    assert len(s.daily.ring) == 270 and len(s.inverter.bins_half) == 15


def test_worst_case_encoded_size_is_below_the_bound():
    """Every field at its widest msgpack form: a full 64-point residue, 5-byte ring ints, 9-byte counters."""
    def widen(st: msgspec.Struct) -> None:
        for name in st.__struct_fields__:
            v = getattr(st, name)
            if isinstance(v, msgspec.Struct):
                widen(v)
            elif isinstance(v, list):
                v[:] = [2**31 - 1] * len(v)
            elif isinstance(v, int) and not isinstance(v, bool):
                setattr(st, name, 2**40)
            elif not isinstance(v, bool):
                setattr(st, name, 1.2345)
    s = HistoryState()
    widen(s)
    s.inverter.rf.stack = [123.4] * 64
    assert len(encode_history(s)) < SIZE_BOUND


def test_features_match_the_documented_table():
    assert len(set(FEATURE_NAMES)) == len(FEATURES)
    assert all(f.unit and f.meaning for f in FEATURES)
    for s in (HistoryState(), feed(HistoryState(), [(0, {"soc": 50.0}), (1, {"soc": 51.0})])):
        f = features(s)
        assert list(f) == list(FEATURE_NAMES)
        assert all(type(x) is float for x in f.values()), {k: type(x) for k, x in f.items()}
    s = HistoryState()
    for ts, v in synthetic_stream(20_000, seed=4):
        update_history(s, ts, v)
    f = features(s)
    # a busy vehicle knows every feature but the trouble-code sightings (no code was ever active)
    assert [k for k, x in f.items() if math.isnan(x)] == [f"dtc_days_since_{c}" for c in TRACKED]


def test_a_row_alone_equals_the_row_in_a_batch():
    """``batch_features`` computes each row on its own: the rows of a batch equal ``features`` one at a time,
    bit for bit (a scored twin's features do not depend on the twins scored with it)."""
    states = [HistoryState()]
    for seed in range(4):
        s = HistoryState()
        for ts, v in synthetic_stream(2_000 * (seed + 1), step_s=300.0, seed=10 + seed):
            update_history(s, ts, v)
        states.append(s)
    rows = [state_inputs(s) for s in states]
    width = max(r["inverter.rf.stack"].shape[1] for r in rows)
    batch = {name: np.concatenate([np.pad(r[name], ((0, 0), (0, width - r[name].shape[1])))
                                   if name == "inverter.rf.stack" else r[name] for r in rows]) for name in INPUTS}
    alone = np.array([list(features(s).values()) for s in states])
    np.testing.assert_array_equal(batch_features(batch), alone)
    assert len({len(s.inverter.rf.stack) for s in states}) > 2 and not np.isnan(alone[1:, :40]).all(axis=0).any()
    with pytest.raises(ValueError, match="daily.ring"):
        batch_features({name: batch[name] for name in INPUTS if name != "daily.ring"})


def test_docstring_examples_of_the_feature_math():
    features_module = importlib.import_module("twins.history.features")   # the package's `features` is the function
    for mod in (features_module, rainflow):
        result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.attempted > 0 and result.failed == 0


def test_with_a_real_twin_merge():
    twin = new_twin("1FA6P8CF0L5100001")
    s = HistoryState()
    msgs = [
        {"Vehicle.LowVoltageSystemState": "LOCK", "Vehicle.LowVoltageBattery.CurrentVoltage": 12.4,
         "Vehicle.Powertrain.TractionInverter.Temperature": 20},
        {"Vehicle.LowVoltageSystemState": "START", "Vehicle.Speed": 0},
        {"Vehicle.LowVoltageSystemState": "ON", "Vehicle.Speed": 20.5,
         "Vehicle.Powertrain.TractionInverter.Temperature": 85.0},
        {"Vehicle.Speed": 30.0},
    ]
    for i, sig in enumerate(msgs):
        r = reading_from_dict({"schema": 1, "vin": twin.vin, "ts": T0 + i * 1000, "seq": i, "signals": sig})
        merge_into(twin, (r,))
        update_history(s, r.ts, twin.values)
    f = features(s)
    assert f["lv_wakes"] == 1.0 and f["lv_wake_min_v"] == 12.4
    assert f["usage_driving_hours"] == pytest.approx(1 / 3600)
    assert f["inv_hours_above_80c"] == pytest.approx(1 / 3600)
    assert len(SLOTS_READ) == 17


def test_update_is_fast():
    stream = list(synthetic_stream(30_000, step_s=1.0, seed=5))
    best = math.inf
    for _ in range(3):
        s = HistoryState()
        t0 = time.perf_counter()
        for ts, v in stream:
            update_history(s, ts, v)
        best = min(best, (time.perf_counter() - t0) / len(stream))
    assert best < 25e-6, f"{best * 1e6:.1f} µs per update"   # ~3 µs on a laptop core; generous for CI


def _mutables(obj, out):
    if isinstance(obj, (msgspec.Struct, list)):
        out.append(obj)
    if isinstance(obj, msgspec.Struct):
        for name in obj.__struct_fields__:
            _mutables(getattr(obj, name), out)
    return out


def test_copy_history_shares_nothing_mutable():
    s = HistoryState()
    for ts, v in synthetic_stream(3_000, seed=6):
        update_history(s, ts, v)
    c = copy_history(s)
    assert c == s
    ours, theirs = _mutables(s, []), _mutables(c, [])
    assert len(ours) == len(theirs) and not {id(x) for x in ours} & {id(x) for x in theirs}
    before = encode_history(s)
    for ts, v in synthetic_stream(3_000, seed=7, t0=T0 + 10**9):
        update_history(c, ts, v)
    assert encode_history(s) == before and c != s


def test_feature_doc_is_current():
    from twins.history.doc import DOC_PATH, render

    assert DOC_PATH.read_text() == render(), "run `python -m twins.history.doc` and commit FEATURES.md"
