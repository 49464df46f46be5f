"""Component wear and failures: physics building blocks, fleet ages, failure rates, stress, precursors, repairs.

The fleet-year fixture (600 vehicles x 365 days at dt = 3600 s, ~25 s) backs the
statistical tests. ``FLEET_SLOW_TESTS=1`` also runs a 3,000-vehicle year with
tighter bands (about two minutes).
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import pytest

from models.simulation import FleetSimulator, low_voltage
from models.simulation import reliability as rel
from models.simulation.dtc import CODES
from models.simulation.ev_models import load_ev_models
from tests.simulation._helpers import TB
from twins.history.inverter import cips08_cycles_to_failure
from twins.maintenance import decode_maintenance

MS_PER_DAY = 86_400_000
SOH = f"{TB}.StateOfHealth"
LV_V = "Vehicle.LowVoltageBattery.CurrentVoltage"
LV_STATE = "Vehicle.LowVoltageSystemState"
ODO = "Vehicle.TraveledDistance"
SLOW = pytest.mark.skipif(os.environ.get("FLEET_SLOW_TESTS") != "1",
                          reason="slow statistical test: set FLEET_SLOW_TESTS=1")


# ----------------------------------------------------------------------------- building blocks
def test_cips08_matches_the_twins_inverter_model() -> None:
    for d_t, t_min in ((10.0, 40.0), (45.0, 20.0), (80.0, 60.0)):
        ours = float(rel.cips08_cycles(np.array([d_t]), np.array([t_min]))[0])
        assert ours == pytest.approx(cips08_cycles_to_failure(d_t, t_min), rel=1e-12)
    # hotter minimum and coolant: shorter life, more damage
    assert rel.tj_factor(np.array([30.0]), 5.0)[0] > 1.0 > rel.tj_factor(np.array([5.0]), 5.0)[0]


def test_ageing_laws_have_their_published_shapes() -> None:
    assert rel.peck_factor(np.array([25.0]), np.array([60.0]))[0] == pytest.approx(1.0)
    # Peck: (85/60)^2.66 · exp(0.79 eV/k · (1/298.15 - 1/358.15)) = 2.526 · exp(5.151) = 2.526 · 172.6
    assert rel.peck_factor(np.array([85.0]), np.array([85.0]))[0] == pytest.approx(436.0, rel=0.01)
    # Ea = 50 kJ/mol: ~1.9x per +10 K around 30 °C
    assert rel.battery_arrhenius(np.array([35.0]))[0] / rel.battery_arrhenius(np.array([25.0]))[0] == \
        pytest.approx(1.92, abs=0.02)
    # Montsinger: insulation ageing doubles per +10 K
    assert rel.motor_weight(np.array([80.0]))[0] == pytest.approx(2.0 * rel.motor_weight(np.array([70.0]))[0])
    # fast charging is worst hot and cold
    s = rel.dc_stress(np.array([-5.0, 20.0, 45.0]))
    assert s[1] < s[0] and s[1] < s[2]
    assert rel.knee(np.array([90.0]))[0] == 1.0 < rel.knee(np.array([75.0]))[0]


def test_twelve_volt_wake_dip_deepens_with_wear_and_cold() -> None:
    wear = np.array([0.0, 0.5, 1.0, 1.0])
    temp = np.array([20.0, 20.0, 20.0, -10.0])
    v = low_voltage.wake_voltage(temp, wear)
    assert 12.2 < v[0] < 12.5                         # new battery: a ~0.4 V dip
    assert v[0] > v[1] > v[2] > v[3]
    assert v[3] < rel.LV_FAIL_V < v[2]                 # a worn battery survives a mild wake, not a cold one


def test_rainflow_counts_the_hand_worked_cycles() -> None:
    pts, pos = rel._turning_points(np.array([10.0, 2, 6, 4, 8, 0, 10]), 0.5)
    ranges, mins, at = rel._rainflow(pts, pos)
    assert sorted(zip(ranges, mins)) == [(2.0, 4.0), (6.0, 2.0), (10.0, 0.0)]
    assert at == [4, 5, 6]                             # closed at the 8, the 0 and the final 10


def test_inverter_channel_is_a_cumulative_damage_per_route_second() -> None:
    sim = FleetSimulator(4, seed=2)
    ch = sim.reliability.channel
    assert np.all(np.diff(ch.cum[:, :, 0], axis=1) >= 0.0)
    assert np.all(ch.cum[:, -1, 0] > 0.0)
    assert 0.0 < ch.tmin_rise_k < 20.0
    # the channel is folded into the route integrals, so any step adds an exact difference
    assert sim._energy.cum.shape[2] == 5


# ----------------------------------------------------------------------------- fleet ages
def test_vehicle_ages_set_a_consistent_starting_condition() -> None:
    start = int(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
    sim = FleetSimulator(1500, seed=8, start_ms=start)
    r = sim.reliability
    age = r.age_years
    assert age.min() >= 0.0 and age.max() <= rel.MAX_AGE_YEARS
    years = {m.model: m.year for m in load_ev_models()}
    for row, a in zip(sim.fleet_table(), age):
        in_service = dt.date.fromisoformat(row["in_service_date"])
        assert in_service.year >= years[row["model"]] - 1
        assert abs((dt.date(2026, 1, 1) - in_service).days / 365.25 - a) < 0.01
    old, new = age > 4.0, age < 1.0
    assert np.corrcoef(age, sim.odo_km)[0, 1] > 0.7            # ~45,000 km a year of fleet duty
    assert sim.soh[old].mean() < sim.soh[new].mean() - 5.0
    assert 70.0 <= sim.soh.min() and sim.soh.max() <= 100.0
    assert np.median(r.inv_d[old] / r.inv_s[old]) > 3 * np.median(r.inv_d[new] / r.inv_s[new])
    assert np.median(r.lv_wear[old]) > np.median(r.lv_wear[new])
    # some components were already renewed before the start (older vehicles more often)
    renewed = r.prehistory_failures.sum(axis=1) > 0
    assert renewed[old].mean() > renewed[new].mean() and renewed[old].mean() > 0.1


# ----------------------------------------------------------------------------- a fleet-year
@dataclass
class Year:
    sim: FleetSimulator
    days: int
    events: list[dict[str, Any]]
    onsets: dict[tuple[int, str], list[int]]
    exposure: dict[str, np.ndarray]
    region: np.ndarray


def _run_year(n: int, seed: int, days: int = 365) -> Year:
    sim = FleetSimulator(n, seed=seed)
    onsets: dict[tuple[int, str], list[int]] = defaultdict(list)
    prev = sim.dtc.active.copy()
    for _ in range(days * 24):
        sim.advance(3600.0)
        new = sim.dtc.active & ~prev
        if new.any():
            for i, c in zip(*np.nonzero(new)):
                onsets[(int(i), CODES[c])].append(sim.now_ms)
        prev = sim.dtc.active.copy()
    region = np.array([sim.region_of(v) for v in sim.vins])
    return Year(sim, days, sim.maintenance_events(), onsets, sim.reliability.exposure, region)


@pytest.fixture(scope="module")
def year() -> Year:
    return _run_year(600, seed=11)


def _failures(y: Year) -> np.ndarray:
    index = {v: i for i, v in enumerate(y.sim.vins)}
    out = np.zeros((len(index), len(rel.COMPONENTS)))
    for e in y.events:
        if e["event"] == "failure":
            out[index[e["vin"]], rel.COMPONENTS.index(e["component"])] += 1
    return out


def _rates(y: Year, mask: np.ndarray | None = None) -> dict[str, float]:
    f = _failures(y)
    mask = np.ones(len(f), bool) if mask is None else mask
    years = mask.sum() * y.days / 365.0
    return {c: 100.0 * f[mask, j].sum() / years for j, c in enumerate(rel.COMPONENTS)}


def test_annual_failure_rates_are_plausible(year: Year) -> None:
    # targets 2-5 / 1-3 / 5-10 / 0.5-1 %; bands widened for 600 vehicle-years of Poisson noise
    r = _rates(year)
    assert 1.5 <= r["inverter"] <= 7.0, r
    assert 0.8 <= r["traction_battery"] <= 5.0, r
    assert 4.0 <= r["lv_battery"] <= 13.0, r
    assert 0.0 <= r["drive_motor"] <= 2.5, r


def test_hot_humid_miami_kills_inverters(year: Year) -> None:
    miami, sand_point = _rates(year, year.region == "miami"), _rates(year, year.region == "sand-point")
    assert miami["inverter"] >= 3.0 * max(sand_point["inverter"], 0.5), (miami, sand_point)


def test_stressed_vehicles_fail_far_more_than_mild_ones(year: Year) -> None:
    ex = year.exposure
    hot = year.region == "miami"
    hard = ex["keyon_h"] > np.median(ex["keyon_h"])
    inv_stressed, inv_mild = _rates(year, hot & hard)["inverter"], _rates(year, ~hot & ~hard)["inverter"]
    assert inv_stressed >= 4.0 * max(inv_mild, 0.5), (inv_stressed, inv_mild)
    dcfc = ex["dc_pack_eq"] > np.percentile(ex["dc_pack_eq"], 75)
    few = ex["dc_pack_eq"] <= np.percentile(ex["dc_pack_eq"], 50)
    b_stressed, b_mild = _rates(year, dcfc)["traction_battery"], _rates(year, few)["traction_battery"]
    assert b_stressed >= 4.0 * max(b_mild, 0.5), (b_stressed, b_mild)
    # ... and the ground-truth stress integrals say why
    assert np.median(ex["inverter_damage"][hot & hard]) > 2.0 * np.median(ex["inverter_damage"][~hot & ~hard])
    assert np.median(ex["soh_fade_pct"][dcfc]) > 1.5 * np.median(ex["soh_fade_pct"][few])


def test_failures_are_followed_by_their_repair(year: Year) -> None:
    end = year.sim.now_ms
    jobs: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in year.events:
        jobs[(e["vin"], e["component"])].append(e)
    n_failures = 0
    for (vin, comp), log in jobs.items():
        for k, e in enumerate(log):
            if e["event"] != "failure":
                continue
            n_failures += 1
            t = _ms(e["time"])
            after = [x for x in log[k + 1:] if x["event"] in ("repair", "replacement")]
            if not after:
                assert end - t < 30 * MS_PER_DAY, e      # only failures at the very end wait
                continue
            fix = after[0]
            assert 0 < _ms(fix["time"]) - t < 30 * MS_PER_DAY, (e, fix)
            assert fix["odometer_km"] == e["odometer_km"]  # out of service until fixed
            if comp == "lv_battery":
                assert _ms(fix["time"]) - t < 2 * MS_PER_DAY
    assert n_failures >= 50


def test_dtc_precursors_precede_a_fraction_of_failures(year: Year) -> None:
    codes = {"inverter": ("P0A3C",), "traction_battery": ("P0A7F", "P0AA6"), "drive_motor": ("P0AA6",),
             "lv_battery": ("P0562",)}
    index = {v: i for i, v in enumerate(year.sim.vins)}
    hit: Counter[str] = Counter()
    total: Counter[str] = Counter()
    leads = []
    for e in year.events:
        if e["event"] != "failure":
            continue
        t, i = _ms(e["time"]), index[e["vin"]]
        total[e["component"]] += 1
        before = [o for c in codes[e["component"]] for o in year.onsets.get((i, c), [])
                  if t - 60 * MS_PER_DAY <= o < t - 3_600_000]
        if before:
            hit[e["component"]] += 1
            leads.append((t - min(before)) / MS_PER_DAY)
    share = {c: hit[c] / total[c] for c in total}
    assert 0.3 <= share["inverter"] < 1.0, share           # imperfect sensitivity by design
    assert share["traction_battery"] >= 0.5, share
    assert 0.3 <= share["lv_battery"] < 1.0, share
    assert 7.0 <= float(np.median(leads)) <= 50.0          # weeks of warning, not minutes


def test_maintenance_log_schema_and_order(year: Year) -> None:
    times = [e["time"] for e in year.events]
    assert times == sorted(times)
    kinds = Counter(e["event"] for e in year.events)
    assert kinds["inspection_ok"] > 2 * len(year.sim.vins) * 0.8          # ~2 routine services a year
    for e in year.events[:: max(1, len(year.events) // 500)]:
        assert list(e) == ["vin", "component", "event", "time", "odometer_km"]
        assert e["component"] in rel.COMPONENTS and e["event"] in rel.EVENTS
        assert isinstance(e["odometer_km"], float) and e["odometer_km"] >= 0
        decode_maintenance(msgspec.json.encode({"schema": 1, **e}))      # the fleet.maintenance contract
        hour_local = (_ms(e["time"]) // 3_600_000 + {"miami": -5, "greensboro": -5, "sand-point": -9}[
            year.sim.region_of(e["vin"])]) % 24
        if e["event"] == "inspection_ok":
            assert 7 <= hour_local <= 18                                   # business hours (DST tolerance)


def _ms(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


# ----------------------------------------------------------------------------- repairs reset the state
def _soh_trace(sim: FleetSimulator, vin: int, steps: int) -> tuple[list[float], list[float]]:
    soh, odo, last = [], [], {}
    for _ in range(steps):
        last.update(sim.step(3600.0)[vin]["signals"])
        soh.append(last[SOH])
        odo.append(last[ODO])
    return soh, odo


def test_a_worn_out_pack_fails_and_its_replacement_restores_soh() -> None:
    sim = FleetSimulator(6, seed=1)
    r = sim.reliability
    eol = float(r.batt_eol[0])                 # (the new pack gets its own threshold)
    sim.soh[0] = eol + 0.01                    # test setup: a pack on the verge of its end of life
    soh, odo = _soh_trace(sim, 0, 24 * 20)
    log = [e for e in sim.maintenance_events() if e["vin"] == sim.vins[0] and e["component"] == "traction_battery"]
    kinds = [e["event"] for e in log if e["event"] != "inspection_ok"]
    assert kinds[:2] == ["failure", "replacement"], log
    fail_i = soh.index(next(x for x in soh if x <= eol + 0.005))     # emitted with 2 decimals
    jump = int(np.argmax(np.diff(soh))) + 1
    assert jump > fail_i
    assert soh[jump - 1] < 76.0 and soh[jump] >= 98.9                  # a new pack
    assert odo[fail_i] == odo[jump - 1]                                # parked until the workshop was done
    assert odo[-1] > odo[jump]                                         # and back at work afterwards


def test_an_inverter_failure_resets_its_damage_and_strength() -> None:
    sim = FleetSimulator(6, seed=2)
    r = sim.reliability
    r.inv_d[1] = 0.999 * r.inv_s[1]
    old_strength = r.inv_s[1]
    for _ in range(24 * 14):
        sim.advance(3600.0)
    log = [e["event"] for e in sim.maintenance_events() if e["vin"] == sim.vins[1] and e["component"] == "inverter"]
    assert [k for k in log if k != "inspection_ok"][:2] == ["failure", "replacement"]
    assert r.inv_d[1] < 0.05 * r.inv_s[1] and r.inv_s[1] != old_strength
    assert r.inverter_rth_factor()[1] == pytest.approx(1.0, abs=1e-6)


def test_weak_twelve_volt_batteries_show_low_wake_voltages_then_fail_on_a_cold_morning() -> None:
    start = int(dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc).timestamp() * 1000)
    sim = FleetSimulator(40, seed=3, regions=["sand-point"], start_ms=start)
    r = sim.reliability
    r.lv_wear[:20] = np.linspace(0.55, 0.9, 20)     # test setup: half the fleet on worn 12 V batteries
    r.lv_wear[20:] = 0.05
    wake_v: dict[int, list[float]] = defaultdict(list)
    for _ in range(24 * 21):
        for i, m in enumerate(sim.step(3600.0)):
            if m["signals"].get(LV_STATE) == "START":
                wake_v[i].append(m["signals"][LV_V])
    worn = [min(wake_v[i]) for i in range(20) if wake_v[i]]
    fresh = [min(wake_v[i]) for i in range(20, 40) if wake_v[i]]
    assert min(fresh) > 11.5 and np.median(fresh) > np.median(worn) + 0.5   # a new battery dips ~0.7 V at -5 °C
    failed = {e["vin"] for e in sim.maintenance_events() if e["component"] == "lv_battery" and e["event"] == "failure"}
    index = {v: i for i, v in enumerate(sim.vins)}
    assert failed and all(index[v] < 20 for v in failed)


def test_the_log_is_deterministic_for_a_seed() -> None:
    def log(seed: int) -> list[dict[str, Any]]:
        sim = FleetSimulator(150, seed=seed)
        for _ in range(24 * 60):
            sim.advance(3600.0)
        return sim.maintenance_events()

    a, b = log(5), log(5)
    assert a == b and any(e["event"] == "failure" for e in a)
    assert a != log(6)


def test_drained_events_are_the_log_in_pieces() -> None:
    sim = FleetSimulator(60, seed=4)
    pieces: list[dict[str, Any]] = []
    for _ in range(24 * 40):
        sim.advance(3600.0)
        pieces += sim.drain_maintenance_events()
    assert pieces == sim.maintenance_events() and pieces
    assert sim.drain_maintenance_events() == []


# ----------------------------------------------------------------------------- the big one
@SLOW
def test_fleet_year_statistics_at_scale() -> None:
    y = _run_year(3000, seed=21)
    r = _rates(y)
    assert 2.0 <= r["inverter"] <= 5.0, r
    assert 1.0 <= r["traction_battery"] <= 3.5, r
    assert 5.0 <= r["lv_battery"] <= 10.5, r
    assert 0.3 <= r["drive_motor"] <= 1.5, r
    by_region = {reg: _rates(y, y.region == reg) for reg in ("miami", "greensboro", "sand-point")}
    assert by_region["miami"]["inverter"] > by_region["greensboro"]["inverter"] > by_region["sand-point"]["inverter"]
    assert math.isfinite(sum(r.values()))
