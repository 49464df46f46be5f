"""Inverter accumulators: CIPS08 damage, cycle bins, time above 80/100 °C with dt capping, peak."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from tests.twins.history.util import feed
from twins.history import FEATURE_NAMES, HistoryState, features, rainflow_count
from twins.history.inverter import HYSTERESIS_K, InverterState, bin_index, cips08_cycles_to_failure, update_inverter

BIN_NAMES = [n for n in FEATURE_NAMES if n.startswith("inv_cycles_dt_")]   # in bin order


def cycle_summary(inv: InverterState) -> tuple[list[float], float]:
    """Cycle counts per bin and damage of one inverter, residue included, as ``features`` reports them."""
    f = features(HistoryState(inverter=inv))
    return [f[n] for n in BIN_NAMES], f["inv_damage_cips08"]


def cips08_by_hand(delta_t: float, tj_min_c: float) -> float:
    # Bayerer et al. (CIPS 2008): A=9.34e14, b1=-4.416, b2=1285, b3=-0.463, b4=-0.716, b5=-0.761, b6=-0.5
    # with our assumptions t_on = 15 s, I = 10 A per wire, V = 6.5 (650 V / 100), D = 400 µm.
    return (9.34e14 * delta_t**-4.416 * math.exp(1285.0 / (tj_min_c + 273.15))
            * 15.0**-0.463 * 10.0**-0.716 * 6.5**-0.761 * 400.0**-0.5)


def test_cips08_matches_hand_computation():
    assert cips08_cycles_to_failure(60.0, 30.0) == pytest.approx(cips08_by_hand(60.0, 30.0), rel=1e-12)
    assert cips08_cycles_to_failure(60.0, 30.0) == pytest.approx(6.008e5, rel=1e-3)
    assert cips08_cycles_to_failure(20.0, 60.0) == pytest.approx(5.247e7, rel=1e-3)
    # Larger swing or hotter minimum -> shorter life.
    assert cips08_cycles_to_failure(80.0, 30.0) < cips08_cycles_to_failure(60.0, 30.0)
    assert cips08_cycles_to_failure(60.0, 60.0) < cips08_cycles_to_failure(60.0, 30.0)
    assert cips08_cycles_to_failure(0.0, 30.0) == math.inf
    # elementwise on arrays, with numpy's exp (no swing: inf)
    with np.errstate(divide="ignore"):
        swings = cips08_cycles_to_failure(np.array([60.0, 20.0, 0.0]), np.array([30.0, 60.0, 30.0]), np.exp)
    np.testing.assert_allclose(swings, [cips08_by_hand(60.0, 30.0), cips08_by_hand(20.0, 60.0), math.inf],
                               rtol=1e-12)


def test_damage_and_bins_on_small_series():
    # 40, 100, 60, 80, 40 (1 s apart). Rainflow: full cycle 60-80 (ΔT 20 K, Tmin 60, mean 70),
    # then half 40-100 (S in range) and residue half 100-40 (ΔT 60 K, Tmin 40, mean 70).
    inv = InverterState()
    for i, t in enumerate([40.0, 100.0, 60.0, 80.0, 40.0]):
        update_inverter(inv, 1.0 if i else 0.0, t)
    counts, damage = cycle_summary(inv)
    expected = 1.0 / cips08_by_hand(20.0, 60.0) + 2 * 0.5 / cips08_by_hand(60.0, 40.0)
    assert damage == pytest.approx(expected, rel=1e-12)
    assert damage == pytest.approx(1.9247e-6, rel=1e-4)
    assert counts[bin_index(20.0, 70.0)] == 1.0
    assert counts[bin_index(60.0, 70.0)] == 1.0          # two halves
    assert sum(counts) == 2.0
    # Time above thresholds (strictly above), intervals held at their starting temperature: 100 °C for 1 s.
    assert inv.above80_s == 1.0 and inv.above100_s == 0.0
    assert inv.peak_c == 100.0
    # The last valley (40) is still open, so nothing is stored yet; everything above came from the residue.
    assert sum(inv.bins_half) == 0 and inv.damage == 0.0
    # A rise of more than 2 K confirms it: the full cycle and the starting half cycle are now stored.
    update_inverter(inv, 1.0, 45.0)
    assert inv.bins_half[bin_index(20.0, 70.0)] == 2 and inv.bins_half[bin_index(60.0, 70.0)] == 1
    assert inv.damage == pytest.approx(1.0 / cips08_by_hand(20.0, 60.0) + 0.5 / cips08_by_hand(60.0, 40.0))


def test_bin_edges():
    assert bin_index(9.99, 39.9) == 0
    assert bin_index(10.0, 40.0) == 4          # ΔT bin 1, mean bin 1
    assert bin_index(60.0, 70.0) == 14
    assert bin_index(45.0, 20.0) == 9
    assert bin_index(np.array([9.99, 10.0, 60.0, 45.0]), np.array([39.9, 40.0, 70.0, 20.0])).tolist() == [0, 4, 14, 9]


def test_time_above_thresholds_caps_gaps():
    s = HistoryState()
    feed(s, [(0, {"inverter_temp": 105.0}),
             (100, {"inverter_temp": 85.0}),      # 100 s at 105 °C
             (36_100, {"inverter_temp": 50.0}),   # 36000 s gap at 85 °C -> capped to 3900 s
             (36_200, {"inverter_temp": 50.0})])
    f = features(s)
    assert f["inv_hours_above_80c"] == pytest.approx((100 + 3900) / 3600)
    assert f["inv_hours_above_100c"] == pytest.approx(100 / 3600)
    assert f["inv_temp_peak_c"] == 105.0
    assert f["history_observed_h"] == pytest.approx((100 + 3900 + 100) / 3600)


def test_online_bins_agree_with_batch_rainflow():
    rnd = random.Random(7)
    series, x = [], 45.0
    for _ in range(20_000):
        x = min(130.0, max(-10.0, x + rnd.gauss(0.0, 2.5)))
        series.append(round(x, 1))
    inv = InverterState()
    for i, t in enumerate(series):
        update_inverter(inv, 1.0 if i else 0.0, t)
    counts, damage = cycle_summary(inv)
    ref = [0.0] * len(counts)
    ref_damage = 0.0
    for rng, mean, c in rainflow_count(series, HYSTERESIS_K):
        ref[bin_index(rng, mean)] += c
        ref_damage += c / cips08_by_hand(rng, mean - rng / 2) if rng > 0 else 0.0
    assert counts == ref
    assert damage == pytest.approx(ref_damage, rel=1e-9)
    assert sum(counts) > 1000


def test_unknown_temperature_keeps_state():
    inv = InverterState()
    update_inverter(inv, 0.0, None)
    update_inverter(inv, 1.0, None)
    assert inv.peak_c == -math.inf and inv.above80_s == 0.0 and inv.rf.stack == []
    f = features(HistoryState())
    assert math.isnan(f["inv_temp_peak_c"]) and f["inv_cycles_total"] == 0.0 and f["inv_damage_cips08"] == 0.0
