"""Physical plausibility over simulated days, and stability at coarse time steps."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from models.simulation import REGIONS, FleetSimulator
from tests.simulation._helpers import (AIR, CHARGING, DC_CURRENT, INVERTER, LAT, LON, ODO, SOC, SPEED, TB, Run,
                                       run_states)

DT = 10.0
HOURS = 33
MS_PER_H = 3_600_000
CAPACITY_KWH = {"Leaf": 30.0, "Bolt EV": 66.0, "Model 3": 54.0, "Zoe": 54.66}


@pytest.fixture(scope="module")
def day() -> Run:
    """12 vehicles (4 per region) from 2026-01-05 00:00Z (a Monday) for 33 h at 10 s."""
    start = int(dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc).timestamp() * 1000)
    sim = FleetSimulator(12, seed=7, start_ms=start)
    return run_states(sim, DT, int(HOURS * 3600 / DT))


def _drivers(day: Run) -> list[int]:
    dist = day.values[ODO][-1] - day.values[ODO][0]
    return [i for i in range(len(day.vins)) if dist[i] > 0]


def test_most_vehicles_drive_a_plausible_distance(day: Run) -> None:
    odo = day.values[ODO]
    assert np.all(np.diff(odo, axis=0) >= 0), "odometer must never decrease"
    drivers = _drivers(day)
    assert len(drivers) >= 9
    for i in drivers:
        km = odo[-1, i] - odo[0, i]
        assert 30.0 <= km <= 400.0, (day.vins[i], km)


def test_soc_falls_while_driving_and_rises_while_charging(day: Run) -> None:
    soc, speed, charging = day.values[SOC], day.values[SPEED], day.values[CHARGING].astype(bool)
    dsoc = np.diff(soc, axis=0)
    moving, plugged = speed[1:] > 0, charging[1:] & charging[:-1]   # charging through the whole step
    for i in _drivers(day):
        assert dsoc[moving[:, i], i].sum() < -10.0, day.vins[i]       # at least 10 % used on the road
    charged = [i for i in range(len(day.vins)) if plugged[:, i].any()]
    assert len(charged) >= 9
    for i in charged:
        assert dsoc[plugged[:, i], i].sum() > 5.0, day.vins[i]
        assert dsoc[plugged[:, i], i].min() >= 0.0


def test_energy_use_per_km_is_realistic(day: Run) -> None:
    soc, speed, odo = day.values[SOC], day.values[SPEED], day.values[ODO]
    moving = speed[1:] > 0
    for i in _drivers(day):
        used_kwh = -np.diff(soc[:, i])[moving[:, i]].sum() / 100.0 * CAPACITY_KWH[day.models[i]]
        km = np.diff(odo[:, i])[moving[:, i]].sum()
        assert 0.10 <= used_kwh / km <= 0.35, (day.models[i], used_kwh / km)


def test_inverter_swings_while_driving_and_relaxes_when_parked(day: Run) -> None:
    inv, speed, air = day.values[INVERTER], day.values[SPEED], day.values[AIR]
    for i in _drivers(day):
        driving = inv[speed[:, i] > 0, i]
        assert driving.max() - driving.min() >= 10.0, (day.vins[i], driving.min(), driving.max())
        assert driving.max() - np.median(air[:, i]) >= 10.0
    # Final sample: 04:00 local (00:00 in Sand Point), hours after the last shift ended: back at ambient.
    assert np.all(speed[-1] == 0.0)
    assert np.all(np.abs(inv[-1] - air[-1]) <= 2.0), (inv[-1], air[-1])


def test_positions_stay_near_the_depot_and_return_to_it(day: Run) -> None:
    lat, lon = day.values[LAT], day.values[LON]
    parked = day.lv_state == "LOCK"
    for i, region in enumerate(day.regions):
        home = REGIONS[region]
        first_parked = int(np.argmax(parked[:, i]))
        depot_lat, depot_lon = lat[first_parked, i], lon[first_parked, i]
        kx = 111.32 * math.cos(math.radians(depot_lat))
        assert math.hypot((depot_lat - home.lat) * 111.32, (depot_lon - home.lon) * kx) <= 5.0
        km = np.hypot((lat[:, i] - depot_lat) * 111.32, (lon[:, i] - depot_lon) * kx)
        assert km.max() <= home.roam_km + 0.5
        assert np.all(km[parked[:, i]] < 0.01)          # always parks back at the same depot
        if i in _drivers(day):
            assert km.max() > 2.0


def test_battery_and_component_temperatures_stay_physical(day: Run) -> None:
    air = day.values[AIR]
    for path in (f"{TB}.Temperature.Average", "Vehicle.Powertrain.ElectricMotor.Temperature",
                 "Vehicle.Powertrain.ElectricMotor.EngineCoolant.Temperature", INVERTER):
        temp = day.values[path]
        assert np.all(temp >= air.min() - 3.0) and np.all(temp <= 80.0), path
    assert np.all(day.values[f"{TB}.Temperature.Max"] >= day.values[f"{TB}.Temperature.Average"])


def _mean_air(region: str, start: dt.datetime) -> float:
    sim = FleetSimulator(3, seed=1, regions=[region], start_ms=int(start.timestamp() * 1000))
    temps = [m["signals"][AIR] for _ in range(24 * 7) for m in sim.step(3600.0) if AIR in m["signals"]]
    return float(np.mean(temps))


def test_miami_july_is_much_hotter_than_sand_point_january() -> None:
    miami_july = _mean_air("miami", dt.datetime(2026, 7, 6, tzinfo=dt.timezone.utc))
    sand_point_jan = _mean_air("sand-point", dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc))
    # TMY: Miami July averages ~28 °C, Sand Point January ~0.6 °C.
    assert 26.0 <= miami_july <= 32.0
    assert -4.0 <= sand_point_jan <= 4.0
    assert miami_july - sand_point_jan >= 20.0


@pytest.mark.parametrize("dt_s, days", [(60.0, 2), (900.0, 10), (3600.0, 30)])
def test_coarse_steps_stay_stable(dt_s: float, days: int) -> None:
    sim = FleetSimulator(60, seed=3)
    run = run_states(sim, dt_s, int(days * 86_400 / dt_s))
    for path, values in run.values.items():
        assert np.all(np.isfinite(values)), path
    for path in (f"{TB}.Temperature.Average", f"{TB}.Temperature.Max", INVERTER,
                 "Vehicle.Powertrain.ElectricMotor.Temperature"):
        assert np.all((run.values[path] > -40.0) & (run.values[path] < 90.0)), path
    soc = run.values[SOC]
    assert soc.min() >= 2.9 and soc.max() <= 100.0
    odo = run.values[ODO]
    assert np.all(np.diff(odo, axis=0) >= 0)
    per_day_km = (odo[-1] - odo[0]) / days
    assert 20.0 <= float(np.median(per_day_km)) <= 300.0
    assert np.any(run.values[DC_CURRENT] > 0) or dt_s > 60.0


def test_fast_charging_happens_mid_shift_with_realistic_current() -> None:
    start = int(dt.datetime(2026, 1, 6, tzinfo=dt.timezone.utc).timestamp() * 1000)
    run = run_states(FleetSimulator(100, seed=9, start_ms=start), 30.0, 2880)
    dc = run.values[DC_CURRENT]
    sessions = (dc[1:] > 0) & (dc[:-1] == 0)
    assert sessions.sum() >= 3
    assert 60.0 <= dc[dc > 0].max() <= 500.0        # 50-150 kW at ~350 V
    soc = run.values[SOC]
    assert np.all(soc[:-1][sessions] <= 25.5)         # fast charging starts when the pack runs low
    assert np.all(run.values[SPEED][dc > 0] == 0.0)
    assert np.all(run.values[CHARGING][dc > 0] == 1.0)


def test_state_of_health_declines_slowly() -> None:
    """SoH starts where each vehicle's age (0-6 years), duty and climate put it and fades slowly;
    it only ever rises at a pack replacement (see test_reliability), and packs past the ~82 % knee
    fade faster."""
    sim = FleetSimulator(30, seed=4)
    run = run_states(sim, 3600.0, 24 * 60)
    soh = run.values[f"{TB}.StateOfHealth"]
    assert np.all((soh[0] >= 70.0) & (soh[0] <= 100.0))
    replaced = {e["vin"] for e in sim.maintenance_events()
                if e["component"] == "traction_battery" and e["event"] == "replacement"}
    keep = np.array([v not in replaced for v in run.vins])
    assert np.all(np.diff(soh[:, keep], axis=0) <= 0.0)
    loss_per_year = (soh[0] - soh[-1]) * 365.0 / 60.0
    healthy = keep & (soh[0] > 82.0)
    assert np.all((loss_per_year[healthy] > 0.3) & (loss_per_year[healthy] < 6.0)), loss_per_year
    assert np.all(loss_per_year[keep] < 20.0), loss_per_year
