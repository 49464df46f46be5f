"""30-day ring of daily rows: UTC day boundaries, rollover, gaps, windows and the SoH trend."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from tests.twins.history.util import DAY_MS, T0, row, vals
from twins.history import HistoryState, features, update_history
from twins.history.daily import DIST, N_DAYS, NO_DATA, SOH

H = 3_600_000
D0 = T0 // DAY_MS      # UTC day index of T0


def drive_days(s: HistoryState, days: range, km_of_day, odo0: float = 1_000.0) -> float:
    """Two readings per day (08:00 and 18:00 UTC); day k drives km_of_day(k) between them."""
    odo = odo0
    for k in days:
        update_history(s, T0 + k * DAY_MS + 8 * H, vals(traveled_distance=odo))
        odo += km_of_day(k)
        update_history(s, T0 + k * DAY_MS + 18 * H, vals(traveled_distance=odo))
    return odo


def test_rollover_after_more_than_30_days():
    s = HistoryState()
    drive_days(s, range(40), lambda k: k + 1.0)      # day k drives k + 1 km
    f = features(s)
    assert s.daily.day - s.daily.first_day == 39
    assert f["daily_days_7d"] == 7 and f["daily_days_30d"] == 30
    assert f["daily_km_7d"] == pytest.approx(sum(range(34, 41)))        # days 33..39: 259 km
    assert f["daily_km_30d"] == pytest.approx(sum(range(11, 41)))       # days 10..39: 765 km
    assert f["daily_km_per_day_30d"] == pytest.approx(765 / 30)
    assert f["usage_distance_km"] == pytest.approx(sum(range(1, 41)))
    d = s.daily
    assert row(d, D0 + 9) is None                     # day 9 left the window (its slot was reused)
    assert row(d, D0 + 10)[DIST] == 110               # day 10: 11.0 km stored in 0.1 km units
    assert len(d.ring) == N_DAYS * 9                  # fixed size


def test_long_gap_clears_the_ring_and_short_gap_zeros_skipped_days():
    s = HistoryState()
    odo = drive_days(s, range(10), lambda k: 10.0)
    odo = drive_days(s, range(13, 15), lambda k: 5.0, odo)     # days 10-12 without telemetry
    f = features(s)
    assert f["daily_km_7d"] == pytest.approx(10.0 * 2 + 5.0 * 2)    # days 8..14: 8, 9 / 10-12 empty / 13, 14
    assert f["daily_km_per_day_7d"] == pytest.approx(30.0 / 7)
    assert row(s.daily, D0 + 9)[DIST] == 100 and row(s.daily, D0 + 11)[DIST] == 0
    drive_days(s, range(80, 81), lambda k: 7.0, odo)               # 66-day gap
    f = features(s)
    assert f["daily_km_30d"] == pytest.approx(7.0)
    assert f["daily_days_30d"] == 30
    assert all(row(s.daily, D0 + day)[DIST] == 0 for day in range(51, 80))


def test_day_boundary_is_utc_midnight():
    s = HistoryState()
    update_history(s, T0 + DAY_MS - 10_000, vals(traveled_distance=100.0, inverter_temp=70.0))   # 23:59:50
    update_history(s, T0 + DAY_MS + 10_000, vals(traveled_distance=100.3, inverter_temp=40.0))   # 00:00:10
    f = features(s)
    assert s.daily.day == (T0 + DAY_MS) // DAY_MS
    assert f["daily_km_7d"] == pytest.approx(0.3) and f["daily_days_7d"] == 2
    assert row(s.daily, s.daily.day - 1)[DIST] == 0          # booked on the day of the reading that ends it
    assert f["daily_inv_temp_max_7d"] == 70.0


def test_daily_maxima_and_sums():
    s = HistoryState()
    for k in range(12):
        t = T0 + k * DAY_MS + 10 * H
        update_history(s, t, vals(inverter_temp=50.0 + k, pack_temp_max=30.0 - k, speed=50.0,
                                  charge_current_dc=0.0, pack_current=-10.0))
        update_history(s, t + 1_800_000, vals(inverter_temp=40.0, pack_temp_max=20.0, speed=0.0,
                                              charge_current_dc=100.0, pack_voltage=400.0, pack_current=0.0))
        update_history(s, t + 1_900_000, vals(inverter_temp=40.0, pack_temp_max=20.0, speed=0.0,
                                              charge_current_dc=0.0, pack_voltage=400.0, pack_current=0.0))
    f = features(s)
    # Per day: 30 min driving between readings 30 min apart (under the 3900 s cap); 10 A for 1800 s;
    # one DC session of 100 A * 400 V = 40 kW for 100 s. Row quantisation: 0.01 h, 0.1 Ah, 0.1 kWh.
    assert f["daily_driving_h_per_day_7d"] == pytest.approx(1800 / 3600, abs=0.006)
    assert f["daily_ah_per_day_30d"] == pytest.approx(10.0 * 1800 / 3600, abs=0.05)
    assert f["daily_dcfc_sessions_7d"] == 7 and f["daily_dcfc_sessions_30d"] == 12
    assert f["daily_dcfc_kwh_30d"] == pytest.approx(12 * 40.0 * 100 / 3600, abs=12 * 0.05)
    assert f["daily_inv_temp_max_7d"] == 61.0 and f["daily_inv_temp_max_30d"] == 61.0
    assert f["daily_cell_temp_max_7d"] == 25.0 and f["daily_cell_temp_max_30d"] == 30.0


def test_soh_slope_linear_fade():
    s = HistoryState()
    for k in range(20):
        update_history(s, T0 + k * DAY_MS + 12 * H, vals(soh=95.0 - 0.02 * k))
    assert features(s)["batt_soh_slope_pct_per_day"] == pytest.approx(-0.02, abs=1e-9)


def test_soh_slope_matches_least_squares_over_last_30_days():
    rnd = random.Random(3)
    s = HistoryState()
    days, sohs = [], []
    for k in range(45):
        if k % 7 == 3:
            continue                                   # some days without telemetry
        soh = round(97.0 - 0.01 * k + rnd.gauss(0.0, 0.05), 2)
        update_history(s, T0 + k * DAY_MS + 9 * H, vals(soh=soh))
        days.append(k)
        sohs.append(soh)
    window = [(d, y) for d, y in zip(days, sohs) if d > 44 - 30]
    x, y = np.array(window, dtype=float).T
    expected = np.polyfit(x, y, 1)[0]
    assert features(s)["batt_soh_slope_pct_per_day"] == pytest.approx(expected, rel=1e-9)
    assert row(s.daily, D0 + 38)[SOH] == NO_DATA           # a day without telemetry has no SoH
    assert row(s.daily, D0 + 37)[SOH] == round(sohs[days.index(37)] * 100)


def test_soh_slope_undefined_with_one_day():
    s = HistoryState()
    update_history(s, T0, vals(soh=90.0))
    update_history(s, T0 + H, vals(soh=89.0))
    assert math.isnan(features(s)["batt_soh_slope_pct_per_day"])
    assert math.isnan(features(HistoryState())["daily_inv_temp_max_30d"])
