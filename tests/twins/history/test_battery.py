"""Traction-battery accumulators on hand-made series with hand-computed values."""

from __future__ import annotations

import math

import pytest

from tests.twins.history.util import feed
from twins.history import HistoryState, features
from twins.history.battery import EA_J_PER_MOL, arrhenius_factor


def test_arrhenius_factor_is_about_1_8_per_10k_near_room_temperature():
    assert EA_J_PER_MOL == 45_000.0
    assert arrhenius_factor(25.0) == 1.0
    # exp(45000 / 8.314462618 * (1/298.15 - 1/308.15)) = 1.8023
    assert arrhenius_factor(35.0) == pytest.approx(1.8023, abs=1e-4)
    # Per +10 K: 1.839 (20->30), 1.802 (25->35), 1.768 (30->40) — the Arrhenius factor flattens as T rises.
    for t, ratio in ((20.0, 1.8386), (25.0, 1.8023), (30.0, 1.7685)):
        assert arrhenius_factor(t + 10.0) / arrhenius_factor(t) == pytest.approx(ratio, abs=1e-4)
    assert arrhenius_factor(15.0) == pytest.approx(0.5326, abs=1e-4)


def test_arrhenius_equivalent_hours_by_hand():
    s = feed(HistoryState(), [
        (0, {"pack_temp_avg": 25.0}),
        (100, {"pack_temp_avg": 35.0}),     # 100 s at 25 °C -> 100 s
        (300, {"pack_temp_avg": 45.0}),     # 200 s at 35 °C -> 200 * 1.80235 s
        (400, {"pack_temp_avg": 45.0}),     # 100 s at 45 °C -> 100 * 3.13036 s
    ])
    w35 = math.exp(45_000 / 8.314462618 * (1 / 298.15 - 1 / 308.15))
    w45 = math.exp(45_000 / 8.314462618 * (1 / 298.15 - 1 / 318.15))
    f = features(s)
    assert f["batt_arrhenius_eq_hours_25c"] == pytest.approx((100 + 200 * w35 + 100 * w45) / 3600, rel=1e-12)
    assert f["batt_arrhenius_eq_hours_25c"] == pytest.approx(0.214862, rel=1e-5)
    assert f["batt_arrhenius_mean_factor"] == pytest.approx((100 + 200 * w35 + 100 * w45) / 400)


def test_ah_throughput_and_efc():
    s = feed(HistoryState(), [
        (0, {"pack_current": -100.0, "soc": 80.0}),
        (36, {"pack_current": 50.0, "soc": 30.0}),   # 100 A for 36 s = 1 Ah
        (108, {"pack_current": 0.0, "soc": 80.0}),   # 50 A for 72 s = 1 Ah
        (5_000, {"soc": 80.0}),                      # 0 A
    ])
    f = features(s)
    assert f["batt_ah_throughput"] == pytest.approx(2.0)
    # Σ|ΔSoC| = 50 + 50 = 100 percent points = 0.5 equivalent full cycles.
    assert f["batt_efc"] == pytest.approx(0.5)


def test_current_gap_is_capped():
    s = feed(HistoryState(), [(0, {"pack_current": -36.0}), (20_000, {"pack_current": 0.0})])
    assert features(s)["batt_ah_throughput"] == pytest.approx(36.0 * 3900 / 3600)   # 39 Ah, not 200 Ah


def test_time_at_high_and_low_soc():
    s = feed(HistoryState(), [
        (0, {"soc": 95.0}),
        (200, {"soc": 91.0}),        # 200 s at 95 %
        (10_000, {"soc": 50.0}),     # 9800 s gap at 91 % -> capped to 3900 s
        (10_100, {"soc": 9.0}),      # 100 s at 50 %
        (10_400, {"soc": 10.0}),     # 300 s at 9 %
        (10_500, {"soc": 10.0}),     # 10 % is not < 10 %
    ])
    f = features(s)
    assert f["batt_hours_soc_above_90"] == pytest.approx((200 + 3900) / 3600)
    assert f["batt_hours_soc_below_10"] == pytest.approx(300 / 3600)


def test_dc_fast_charge_sessions_and_energy():
    s = feed(HistoryState(), [
        (0, {"charge_current_dc": 0.0, "pack_voltage": 400.0}),
        (60, {"charge_current_dc": 120.0}),       # session 1 starts
        (120, {"charge_current_dc": 130.0}),      # 60 s at 120 A * 400 V = 48 kW
        (180, {"charge_current_dc": 4.0}),        # 60 s at 52 kW; 4 A <= 5 A ends the session
        (240, {"charge_current_dc": 0.0}),
        (300, {"charge_current_dc": 150.0, "pack_voltage": 360.0}),   # session 2
        (310, {"charge_current_dc": 0.0}),        # 10 s at 150 * 360 = 54 kW
    ])
    f = features(s)
    assert f["batt_dcfc_sessions"] == 2.0
    assert f["batt_dcfc_kwh"] == pytest.approx((48 * 60 + 52 * 60 + 54 * 10) / 3600)


def test_cell_peak_and_soh():
    f0 = features(HistoryState())
    assert math.isnan(f0["batt_cell_temp_peak_c"]) and math.isnan(f0["batt_soh_pct"])
    s = feed(HistoryState(), [(0, {"pack_temp_max": 31.0, "soh": 97.5}), (1, {"pack_temp_max": 44.5}),
                              (2, {"pack_temp_max": 40.0, "soh": 97.4})])
    f = features(s)
    assert f["batt_cell_temp_peak_c"] == 44.5
    assert f["batt_soh_pct"] == 97.4
    # Max cell temperature is used for the Arrhenius weight when the average is unknown.
    assert f["batt_arrhenius_eq_hours_25c"] == pytest.approx(
        (arrhenius_factor(31.0) + arrhenius_factor(44.5)) / 3600)
