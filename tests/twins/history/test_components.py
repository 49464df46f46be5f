"""Motor, 12 V battery and usage accumulators on hand-made series."""

from __future__ import annotations

import math

import pytest

from tests.twins.history.util import T0, feed
from twins.history import HistoryState, features


# ----------------------------------------------------------------------------- drive motor
def test_motor_time_above_thresholds_peak_and_load():
    s = feed(HistoryState(), [
        (0, {"motor_temp": 125.0, "motor_power": 30.0}),
        (60, {"motor_temp": 155.0, "motor_power": -0.5}),   # 60 s at 125 °C, loaded
        (90, {"motor_temp": 110.0, "motor_power": -20.0}),  # 30 s at 155 °C, not loaded (|P| <= 1 kW)
        (10_090, {"motor_temp": 100.0}),                    # 10000 s gap at 110 °C, loaded -> capped 3900 s
    ])
    f = features(s)
    assert f["motor_hours_above_120c"] == pytest.approx(90 / 3600)
    assert f["motor_hours_above_150c"] == pytest.approx(30 / 3600)
    assert f["motor_temp_peak_c"] == 155.0
    assert f["motor_load_hours"] == pytest.approx((60 + 3900) / 3600)


def test_motor_load_falls_back_to_speed():
    s = feed(HistoryState(), [(0, {"speed": 30.0}), (10, {"speed": 0.5}), (20, {"speed": 0.0})])
    assert features(s)["motor_load_hours"] == pytest.approx(10 / 3600)


# ----------------------------------------------------------------------------- 12 V battery
def test_wake_voltage_min_and_cold_wakes():
    s = feed(HistoryState(), [
        (0, {"lv_system_state": "ON", "lv_voltage": 14.1, "air_temp": -12.0}),   # first state: not a wake
        (10, {"lv_system_state": "OFF", "lv_voltage": 12.6}),
        (200, {"lv_system_state": "LOCK", "lv_voltage": 12.4}),
        (1_000, {"lv_system_state": "START", "lv_voltage": 12.3}),   # wake 1 (cold: -12 °C)
        (1_004, {"lv_voltage": 12.1}),                              # within 10 s: wake 1 min 12.1
        (1_011, {"lv_voltage": 11.0}),                              # after the window: not a wake voltage
        (1_012, {"lv_voltage": 14.2, "lv_system_state": "ON"}),
        (2_000, {"lv_system_state": "OFF", "air_temp": 5.0}),
        (2_500, {"lv_system_state": "UNDEFINED"}),                  # unknown: still asleep
        (3_000, {"lv_system_state": "ACC", "lv_voltage": 12.5}),     # wake 2 (not cold)
        (3_001, {"lv_voltage": 13.9}),
    ])
    f = features(s)
    assert f["lv_wakes"] == 2.0
    assert f["lv_cold_wakes"] == 1.0
    assert f["lv_wake_min_v"] == 12.1
    assert f["lv_wake_last_v"] == 12.5
    assert f["lv_min_v"] == 11.0


def test_time_below_12v_and_low_voltage_events():
    s = feed(HistoryState(), [
        (0, {"lv_voltage": 12.2}),
        (10, {"lv_voltage": 11.9}),     # below 12.0 from here
        (20, {"lv_voltage": 11.7}),     # event 1 (10 s below so far)
        (30, {"lv_voltage": 11.85}),    # still latched (< 11.9 re-arm)
        (40, {"lv_voltage": 11.7}),     # no new event
        (10_040, {"lv_voltage": 11.95}),  # gap capped at 3900 s; re-armed
        (10_050, {"lv_voltage": 11.75}),  # event 2
        (10_060, {"lv_voltage": 12.0}),   # 12.0 is not below 12.0
        (10_070, {"lv_voltage": 12.0}),
    ])
    f = features(s)
    assert f["lv_low_events"] == 2.0
    assert f["lv_hours_below_12v"] == pytest.approx((10 + 10 + 10 + 3900 + 10 + 10) / 3600)


# ----------------------------------------------------------------------------- usage
def test_distance_driving_and_harsh_events():
    s = feed(HistoryState(), [
        (0, {"traveled_distance": 1_000.0, "speed": 0.0, "accel_longitudinal": 0.0}),
        (10, {"speed": 40.0, "accel_longitudinal": 3.5}),          # harsh accel 1
        (11, {"accel_longitudinal": 3.2}),                         # same excursion
        (12, {"accel_longitudinal": 1.0}),
        (13, {"accel_longitudinal": 3.1, "traveled_distance": 1_000.4}),   # harsh accel 2
        (70, {"accel_longitudinal": -4.5, "traveled_distance": 1_001.0}),  # harsh brake 1
        (71, {"accel_longitudinal": -5.0, "speed": 0.8}),
        (80, {"accel_longitudinal": -3.9, "speed": 0.0}),
        (81, {"accel_longitudinal": -4.1, "traveled_distance": 990.0}),    # odometer reset: not counted; brake 2
        (90, {"traveled_distance": 995.0, "speed": 20.0}),                 # +5 km from the new reference
        (50_000, {"speed": 0.0}),                                          # driving gap capped at 3900 s
    ])
    f = features(s)
    assert f["usage_distance_km"] == pytest.approx(1.0 + 5.0)
    assert f["usage_driving_hours"] == pytest.approx((71 - 10 + 3900) / 3600)
    assert f["usage_harsh_accel"] == 2.0
    assert f["usage_harsh_brake"] == 2.0
    assert f["usage_harsh_per_100km"] == pytest.approx(4 / 6.0 * 100)


def test_odometer_jump_is_a_discontinuity():
    s = feed(HistoryState(), [(0, {"traveled_distance": 10.0}), (1, {"traveled_distance": 3_000.0}),
                              (2, {"traveled_distance": 3_001.5})])
    assert features(s)["usage_distance_km"] == pytest.approx(1.5)
    assert math.isnan(features(HistoryState())["usage_harsh_per_100km"])


