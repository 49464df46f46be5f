"""Unit checks of the physics building blocks with hand-computed numbers."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from models.simulation.dtc import CODES, MASK_TO_CODES, DtcState
from models.simulation.ev_models import EVModel, load_ev_models
from models.simulation.powertrain import (motor_and_battery_kw, open_circuit_voltage, pack_current,
                                          pack_ocv_table, wheel_power_kw)
from models.simulation.schedule import _fallback_offset_ms, utc_offset_ms
from models.simulation.thermal import battery_step, relax
from models.simulation.vin import check_digit, make_vin


def _model(name: str) -> EVModel:
    return next(m for m in load_ev_models() if m.model == name)


def test_road_load_at_100_kmh_for_a_bolt() -> None:
    bolt = _model("Bolt EV")
    v = np.array([100 / 3.6])
    # aero 0.5*1.2*0.309*2.397*27.78^2 = 343 N, rolling 0.00777*(1626+120)*9.81 = 133 N -> 13.2 kW
    assert float(wheel_power_kw(bolt, v, np.array([0.0]))[0]) == pytest.approx(13.2, abs=0.2)
    # accelerating at 1 m/s^2 from 10 m/s adds m_eff*a*v ~ 17.8 kW
    p = float(wheel_power_kw(bolt, np.array([10.0]), np.array([1.0]))[0])
    assert 18.5 < p < 20.5


def test_regen_returns_about_two_thirds_of_braking_power() -> None:
    leaf = _model("Leaf")
    p_motor, p_batt, loss = motor_and_battery_kw(leaf, np.array([-20.0, 20.0, -20.0]), np.array([15.0, 15.0, 1.0]))
    assert -0.72 < p_batt[0] / 20.0 < -0.60             # 0.98 * 0.75 * ~0.94
    assert p_batt[1] > p_motor[1] > 20.0 * 0.98 and loss[1] > 0
    assert -0.3 < p_batt[2] / 20.0 < 0                   # regen fades at walking pace


def test_pack_current_solves_power_balance_with_vss_sign() -> None:
    ocv, r = np.array([360.0, 360.0]), np.array([0.1, 0.1])
    i = pack_current(np.array([-36_000.0, 50_000.0]), ocv, r)
    assert i[0] < 0 < i[1]
    np.testing.assert_allclose((ocv + i * r) * i, [-36_000.0, 50_000.0], rtol=1e-9)
    assert i[0] == pytest.approx(-103.0, abs=1.0)        # more than 100 A: the terminal voltage sags


def test_ocv_tables_span_realistic_pack_voltages() -> None:
    tables = np.stack([pack_ocv_table("NMC", 96), pack_ocv_table("LFP", 106)])
    v = open_circuit_voltage(np.array([0.5, 0.5]), tables)
    assert 350 < v[0] < 365 and 345 < v[1] < 355
    full = open_circuit_voltage(np.array([1.0, 1.0]), tables)
    assert full[0] == pytest.approx(96 * 4.18) and full[1] == pytest.approx(106 * 3.45)


def test_exponential_relaxation_is_exact_and_stable_for_huge_steps() -> None:
    t = relax(np.array([80.0]), np.array([20.0]), 30.0, 30.0)
    assert float(t[0]) == pytest.approx(20.0 + 60.0 / np.e)
    assert float(relax(np.array([80.0]), np.array([20.0]), 1e7, 30.0)[0]) == pytest.approx(20.0)
    # two half steps equal one full step
    half = relax(relax(np.array([80.0]), np.array([20.0]), 15.0, 30.0), np.array([20.0]), 15.0, 30.0)
    assert float(half[0]) == pytest.approx(float(t[0]))


def test_battery_cooling_pulls_a_hot_pack_down_only_when_awake() -> None:
    args = dict(t_amb=np.array([35.0, 35.0]), heat_w=np.zeros(2), capacitance=np.full(2, 400_000.0),
                g_amb=np.full(2, 50.0), cool_g=np.full(2, 400.0), speed_mps=np.zeros(2),
                cooling=np.zeros(2, bool), heating=np.zeros(2, bool), dt_s=600.0)
    res = battery_step(np.array([45.0, 45.0]), active=np.array([True, False]), **args)
    assert res.cooling.tolist() == [True, False]
    assert res.temp_c[0] < 40.0 < res.temp_c[1] < 45.0 and res.btms_w[0] > 0 == res.btms_w[1]


def test_vin_check_digit_matches_a_published_example() -> None:
    assert check_digit("1M8GDM9AXKP042788") == "X"     # the ISO 3779 textbook example
    vin = make_vin("5YJ", "3E1EA", 2022, "F", 123_456)
    assert len(vin) == 17 and vin[9] == "N" and vin[8] == check_digit(vin)


def test_dtcs_set_rarely_and_clear_later() -> None:
    rng = np.random.Generator(np.random.PCG64(0))
    n = 2000
    state = DtcState(n)
    awake = np.ones(n, bool)
    factor = state.condition_factor(np.full(n, 95.0), np.full(n, 40.0), np.full(n, 60.0), np.full(n, 0.6))
    now, counts = 0, []
    for _ in range(24 * 10):                     # ten awake days of 10 h in 1-h steps
        now += 3_600_000
        counts.append(int((state.step(rng, now, 3600.0, awake, factor) > 0).sum()))
    onset_per_vehicle_day = state.clear_at_ms.astype(bool).sum() / (n * 24)
    assert 0.002 < onset_per_vehicle_day < 0.03          # ~0.9 % per vehicle-awake-day summed over codes
    assert max(counts) < 0.1 * n
    hot = state.condition_factor(np.full(1, 95.0), np.full(1, 85.0), np.full(1, 60.0), np.full(1, 0.6))
    assert hot[0, CODES.index("P0A3C")] > 100 * factor[0, CODES.index("P0A3C")]
    assert MASK_TO_CODES[0b100100] == ("P0A3C", "U0100")


def test_us_dst_fallback_agrees_with_the_iana_database() -> None:
    """The no-tzdata fallback (for slim containers) matches zoneinfo hour by hour over two years."""
    start = int(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
    for tz in ("America/New_York", "America/Anchorage"):
        ZoneInfo(tz)
        for hour in range(0, 2 * 8760, 7):
            ms = start + hour * 3_600_000
            assert _fallback_offset_ms(tz, ms) == utc_offset_ms(tz, ms), (tz, hour)
