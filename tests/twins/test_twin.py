"""Unit tests of the pure twin merge: order, duplicates, partial updates, staleness."""

from __future__ import annotations

import itertools
import random

import pytest

from twins.reading import reading_from_dict
from twins.twin import (
    SEQ_WINDOW,
    apply,
    apply_many,
    decode_twin,
    encode_twin,
    is_stale,
    new_twin,
    signal_time,
    signal_value,
)

VIN = "5YJ3E1EA7KF000001"
T0 = 1_767_225_600_000
SPEED = "Vehicle.Speed"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
DTC = "Vehicle.Diagnostics.DTCList"


def rd(seq: int, ts: int, **signals: object):
    paths = {"speed": SPEED, "soc": SOC, "dtc": DTC}
    return reading_from_dict(
        {"schema": 1, "vin": VIN, "ts": ts, "seq": seq, "signals": {paths[k]: v for k, v in signals.items()}}
    )


def test_newer_value_wins_regardless_of_arrival_order():
    newer, older = rd(1, T0 + 1000, speed=60.0), rd(0, T0, speed=10.0)
    t = apply_many(new_twin(VIN), [newer, older])
    assert signal_value(t, SPEED) == 60.0
    assert signal_time(t, SPEED) == T0 + 1000
    assert t.n_applied == 2
    assert (t.first_seen, t.last_seen) == (T0, T0 + 1000)


def test_partial_updates_merge_per_signal():
    t = apply_many(new_twin(VIN), [rd(0, T0, speed=30.0, soc=80.0), rd(1, T0 + 1000, speed=35.0)])
    assert signal_value(t, SPEED) == 35.0
    assert signal_value(t, SOC) == 80.0
    assert signal_time(t, SOC) == T0
    # an older partial update still fills a signal for which it is the newest
    t2 = apply(t, rd(2, T0 + 2000, dtc=["P0A7F"]))
    t3 = apply(t2, rd(3, T0 + 500, soc=79.0))
    assert signal_value(t3, SOC) == 79.0  # T0+500 is newer than T0 for this signal
    assert signal_value(t3, SPEED) == 35.0
    assert signal_value(t3, DTC) == ["P0A7F"]


def test_duplicate_seq_is_applied_once():
    a = rd(5, T0, speed=20.0)
    t = apply_many(new_twin(VIN), [a, rd(6, T0 + 1000, speed=22.0), a, a])
    assert t.n_applied == 2
    assert t.n_duplicate == 2
    assert signal_value(t, SPEED) == 22.0


def test_duplicate_with_different_payload_is_still_dropped():
    t = apply_many(new_twin(VIN), [rd(1, T0 + 1000, soc=50.0), rd(1, T0 + 1000, soc=10.0)])
    assert signal_value(t, SOC) == 50.0
    assert t.n_duplicate == 1


def test_seq_older_than_window_is_too_late():
    t = apply_many(new_twin(VIN), [rd(s, T0 + s * 1000, speed=float(s)) for s in range(SEQ_WINDOW + 10)])
    late = apply(t, rd(3, T0 + 3000 - 1, soc=1.0))
    assert late.n_too_late == 1
    assert signal_value(late, SOC) is None
    # within the window but never seen: applied
    t_gap = apply_many(new_twin(VIN), [rd(0, T0), rd(10, T0 + 10_000)])
    t_gap = apply(t_gap, rd(5, T0 + 5000, soc=42.0))
    assert signal_value(t_gap, SOC) == 42.0 and t_gap.n_applied == 3


def test_producer_restart_resets_sequence():
    t = apply_many(new_twin(VIN), [rd(s, T0 + s * 1000, speed=1.0) for s in range(100)])
    restarted = apply_many(t, [rd(0, T0 + 200_000, speed=77.0), rd(1, T0 + 201_000, soc=55.0)])
    assert restarted.n_seq_resets == 1
    assert restarted.seq_max == 1
    assert signal_value(restarted, SPEED) == 77.0
    assert signal_value(restarted, SOC) == 55.0
    assert restarted.n_applied == 102


def test_apply_is_pure():
    t = apply(new_twin(VIN), rd(0, T0, speed=10.0))
    before = encode_twin(t)
    apply(t, rd(1, T0 + 1000, speed=99.0))
    assert encode_twin(t) == before


def test_staleness_uses_last_event_time():
    t = apply(new_twin(VIN), rd(0, T0, speed=0.0))
    assert not is_stale(t, now_ms=T0 + 60_000, stale_after_ms=60_000)
    assert is_stale(t, now_ms=T0 + 60_001, stale_after_ms=60_000)


def test_encode_decode_roundtrip_is_compact():
    t = apply_many(new_twin(VIN), [rd(0, T0, speed=10.5, soc=70.25, dtc=["P0A7F", "U0100"])])
    data = encode_twin(t)
    assert decode_twin(data) == t
    assert len(data) < 1_600  # signals + seq window + residency + ~1 KB operating history


def test_any_order_of_distinct_messages_gives_the_same_twin():
    rng = random.Random(3)
    msgs = [
        rd(s, T0 + s * 997, **({"speed": float(s)} if s % 2 else {"soc": float(s % 100)}))
        for s in range(40)
    ]
    reference = encode_twin(apply_many(new_twin(VIN), msgs))
    for _ in range(25):
        shuffled = msgs[:]
        rng.shuffle(shuffled)
        with_dups = shuffled + rng.sample(msgs, 10)
        got = apply_many(new_twin(VIN), with_dups)
        assert got.n_duplicate == 10
        got.n_duplicate = 0
        want = decode_twin(reference)
        got.seq_mask = want.seq_mask
        got.history = want.history  # history integrates in arrival order and skips late readings (by design)
        assert encode_twin(got) == reference


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_three_messages_every_permutation(order):
    msgs = [rd(0, T0, speed=1.0, soc=10.0), rd(1, T0 + 1, speed=2.0), rd(2, T0 + 2, soc=30.0)]
    t = apply_many(new_twin(VIN), [msgs[i] for i in order])
    assert (signal_value(t, SPEED), signal_value(t, SOC)) == (2.0, 30.0)


def test_history_follows_in_order_readings_and_skips_late_ones():
    from twins.history import features

    inv = "Vehicle.Powertrain.TractionInverter.Temperature"
    msgs = [reading_from_dict({"schema": 1, "vin": VIN, "ts": T0 + s * 60_000, "seq": s,
                               "signals": {inv: 40.0 + (50.0 if s % 2 else 0.0)}}) for s in range(10)]
    t = apply_many(new_twin(VIN), msgs)
    f = features(t.history)
    assert f["inv_temp_peak_c"] == 90.0
    assert f["history_updates"] == 10
    # 9 intervals of 60 s, each held at its starting value: those starting at s = 1, 3, 5, 7 are at 90 °C
    assert f["inv_hours_above_80c"] == pytest.approx(4 * 60 / 3600)
    late = apply(t, reading_from_dict({"schema": 1, "vin": VIN, "ts": T0 + 30_000, "seq": 20,
                                        "signals": {inv: 150.0}}))
    assert late.n_applied == 11  # a new seq, so applied, but its event time is older than the held values
    assert features(late.history)["inv_temp_peak_c"] == 90.0
    assert features(late.history)["history_updates"] == 10
    assert features(t.history)["history_updates"] == 10  # input twin untouched


def test_repeated_seq_with_newer_ts_then_redelivery_is_not_applied_twice():
    """Issue 14: a seq seen before with a newer time is a restart; a redelivery from before it stays out."""
    first = [rd(s, T0 + s * 1000, speed=float(s)) for s in range(10)]
    t = apply_many(new_twin(VIN), first)
    t = apply(t, rd(9, T0 + 60_000, speed=99.0))   # same seq, newer time: the producer restarted at 9
    assert t.n_seq_resets == 1 and t.n_applied == 11
    again = apply_many(t, first)                    # the whole first epoch redelivered
    assert again.n_applied == 11 and again.n_too_late + again.n_duplicate == 10
    assert signal_value(again, SPEED) == 99.0


def test_seq_jump_beyond_the_window_is_a_restart_not_a_new_maximum():
    t = apply_many(new_twin(VIN), [rd(s, T0 + s * 1000, speed=1.0) for s in range(5)])
    t = apply(t, rd(2**63 - 1, T0 + 5_000, speed=2.0))   # a hostile or corrupt seq
    assert t.n_seq_resets == 1
    later = apply_many(t, [rd(s, T0 + s * 1000 + 500, speed=float(s)) for s in range(5, 10)])
    assert later.n_too_late == 0 and later.n_applied == t.n_applied + 5   # the vehicle's data keeps flowing
    assert signal_value(later, SPEED) == 9.0 and later.seq_max == 9


def test_seq_jump_window_is_a_parameter():
    t = apply_many(new_twin(VIN), [rd(0, T0), rd(1, T0 + 1000)])
    from twins.twin import merge_into
    merge_into(t, [rd(1 + 100, T0 + 500, speed=5.0)], seq_jump_max=64)   # jump of 100 > 64, older time
    assert t.n_too_late == 1 and t.seq_max == 1
    merge_into(t, [rd(1 + 50, T0 + 500, speed=5.0)], seq_jump_max=64)    # jump of 50: next message
    assert t.seq_max == 51 and t.n_applied == 3
