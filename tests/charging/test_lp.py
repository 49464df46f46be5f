"""The site LP: caps hold, feasible requests are met, shortfalls are explained, peaks move out of the evening."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest
from scipy.optimize import linprog

from models.charging import DemandResponseEvent, PlanConfig, plan_heuristic, plan_site
from models.charging.lp import LpSolver, slot_blocks, terminal_value, unmet_penalty
from models.charging.problem import build_problem
from tests.charging._helpers import T0, assert_caps, depot, evening_tou, hours, request


def test_caps_hold_for_site_charger_vehicle_and_dr_window():
    site = depot(cap_kw=30.0, n_ac=4, n_dc=1, ac_kw=7.4)
    dr = DemandResponseEvent("dr-1", hours(6), hours(8), 12.0)  # 18:00-20:00 local
    reqs = [request("A", 5.0, 19.0, max_kw=11.0, charger="ac0", energy_kwh=40.0),  # charger 7.4 binds
            request("B", 5.5, 9.0, max_kw=6.0, charger="ac1", energy_kwh=15.0),  # vehicle 6 kW binds
            request("C", 5.0, 8.5, max_kw=120.0, charger="dc0", energy_kwh=45.0),  # DC 50 kW, through DR
            request("D", 7.0, 20.0, max_kw=11.0, charger="ac2", energy_kwh=30.0)]
    plan = plan_site(site, reqs, evening_tou(dr_events=(dr,)), T0)
    assert_caps(plan, site, reqs)
    starts = plan.slot_starts()
    in_dr = [i for i, s in enumerate(starts) if dr.start <= s < dr.end]
    assert len(in_dr) == 8 and all(plan.cap_kw[i] == 12.0 for i in in_dr)
    assert max(plan.site_load_kw[i] for i in in_dr) <= 12.0 + 1e-6
    limits = {v.vin: v.power_limit_kw for v in plan.vehicles}
    assert limits == {"A": 7.4, "B": 6.0, "C": 50.0, "D": 7.4}
    assert plan.metrics.max_cap_excess_kw == 0.0


def test_every_request_met_when_feasible_and_energy_adds_up():
    site = depot(cap_kw=22.0, n_ac=4)
    reqs = [request(f"V{i}", 5.0 + 0.25 * i, 19.0, energy_kwh=e, charger=f"ac{i}")
            for i, e in enumerate([30.0, 45.0, 12.5, 60.0])]
    cfg = PlanConfig(efficiency=0.9)
    plan = plan_site(site, reqs, evening_tou(), T0, cfg)
    assert plan.metrics.status == "optimal" and plan.metrics.unmet_kwh == 0.0 and plan.metrics.share_met == 1.0
    for v, r in zip(plan.vehicles, reqs):
        assert v.planned_kwh == pytest.approx(r.energy_kwh, abs=1e-6)
        assert v.grid_kwh == pytest.approx(r.energy_kwh / 0.9, abs=1e-6)
        assert v.reason is None
    # 147.5 kWh into batteries = 163.9 kWh from the grid, all bought at the $0.12 off-peak price
    assert plan.metrics.energy_kwh == pytest.approx(147.5 / 0.9, abs=1e-5)
    assert plan.metrics.energy_cost_usd == pytest.approx(0.12 * 147.5 / 0.9, abs=1e-4)
    assert plan.metrics.peak_in_scope_kw == pytest.approx(0.0, abs=1e-6)
    assert_caps(plan, site, reqs)


def test_infeasible_returns_best_plan_with_unmet_and_reasons():
    site = depot(cap_kw=15.0, n_ac=3, ac_kw=7.2)
    dr = DemandResponseEvent("evening-dr", hours(5), hours(7), 3.0)
    reqs = [
        # alone it can get at most 7.2 kW x 2.5 h x 0.92 = 16.56 kWh before 19:30
        request("short", 5.0, 7.5, max_kw=11.0, charger="ac0", energy_kwh=42.0),
        # plugged 17:00-19:00 only, in the DR window: 3 kW x 2 h x 0.92 = 5.52 kWh at most
        request("dr", 5.0, 7.0, max_kw=11.0, charger="ac1", energy_kwh=10.0),
        request("ok", 5.0, 19.0, max_kw=11.0, charger="ac2", energy_kwh=20.0),
    ]
    plan = plan_site(site, reqs, evening_tou(dr_events=(dr,)), T0)
    assert_caps(plan, site, reqs)
    v = {s.vin: s for s in plan.vehicles}
    assert v["ok"].unmet_kwh == 0.0 and v["ok"].reason is None
    assert v["short"].reason_code == "vehicle_limit"
    assert v["short"].reason == ("needs 42.0 kWh but can receive at most 16.6 kWh before departure 19:30 "
                                 "at 7.2 kW (charger limit)")
    assert v["dr"].reason_code == "dr_event" and "'evening-dr'" in v["dr"].reason and "3.0 kW 17:00-19:00" in v["dr"].reason
    # best plan: the DR cap is fully used, shared between the two vehicles plugged in during it
    assert v["short"].planned_kwh + v["dr"].planned_kwh == pytest.approx(0.92 * 3.0 * 2 + 0.92 * 7.2 * 0.5, abs=1e-6)
    assert plan.metrics.unmet_kwh == pytest.approx(v["short"].unmet_kwh + v["dr"].unmet_kwh, abs=1e-9)
    assert 0 < plan.metrics.share_met < 1


def test_site_cap_shortfall_is_named():
    site = depot(cap_kw=10.0, n_ac=3)
    reqs = [request(f"V{i}", 5.0, 8.0, charger=f"ac{i}", energy_kwh=20.0) for i in range(3)]
    plan = plan_site(site, reqs, evening_tou(demand_charge=0.0), T0)
    assert plan.metrics.unmet_kwh == pytest.approx(60.0 - 0.92 * 10.0 * 3, abs=1e-6)
    codes = {v.reason_code for v in plan.vehicles if v.unmet_kwh > 0}
    assert codes == {"site_cap"}
    assert "site cap 10.0 kW shared with 2 other plugged-in vehicles" in next(
        v.reason for v in plan.vehicles if v.reason)


def test_tou_evening_wave_peak_lower_than_uncontrolled():
    site = depot(cap_kw=120.0, n_ac=10)
    wave = [request(f"W{i}", 4.5 + 0.1 * i, 19.5, energy_kwh=35.0, charger=f"ac{i}") for i in range(10)]
    grid = evening_tou()
    lp = plan_site(site, wave, grid, T0)
    dumb = plan_heuristic("uncontrolled", site, wave, grid, T0)
    assert dumb.metrics.peak_in_scope_kw >= 100.0  # everyone at 11 kW at ~17:30
    assert lp.metrics.peak_in_scope_kw <= 1e-6 and lp.metrics.unmet_kwh == 0.0
    assert lp.metrics.peak_kw < 0.6 * dumb.metrics.peak_kw  # and no rebound peak at 21:00 either
    assert lp.metrics.cost_usd < 0.3 * dumb.metrics.cost_usd


def test_block_lp_matches_independent_per_slot_lp():
    """The aggregated HiGHS model has the optimum of a plain per-slot LP built densely here (scipy.linprog)."""
    site = depot(cap_kw=18.0, n_ac=4)
    reqs = [request("A", 3.3, 10.0, charger="ac0", energy_kwh=30.0),
            request("B", 4.0, 7.6, charger="ac1", energy_kwh=25.0, battery_risk=0.3),
            request("C", 5.2, 30.0, charger="ac2", energy_kwh=50.0),
            request("D", 6.0, 7.0, charger="ac3", energy_kwh=12.0)]
    grid = evening_tou(dr_events=(DemandResponseEvent("x", hours(5.5), hours(6.5), 8.0),))
    cfg = PlanConfig(early_bias_per_kwh_h=0.0, fine_slots=0, headroom=0.0)
    prob = build_problem(site, reqs, grid, T0, cfg)
    p, status = LpSolver().solve(prob)
    assert status == "optimal" and slot_blocks(prob).max() + 1 < prob.n_slots  # blocks really merged

    nv, nt, npair = prob.n_vehicles, prob.n_slots, len(prob.pair_v)
    n = npair + 2 * nv + 2
    c = np.zeros(n)
    c[:npair] = prob.price[prob.pair_t] * prob.pair_h
    c[npair:npair + nv] = unmet_penalty(prob)
    c[npair + nv:npair + 2 * nv] = terminal_value(prob)
    c[-2], c[-1] = prob.demand_charge(), cfg.rebound_peak_weight_per_kw
    a_eq = np.zeros((nv, n))
    a_eq[prob.pair_v, np.arange(npair)] = cfg.efficiency * prob.pair_h
    a_eq[np.arange(nv), npair + np.arange(nv)] = 1
    a_eq[np.arange(nv), npair + nv + np.arange(nv)] = 1
    load = np.zeros((nt, n))
    load[prob.pair_t, np.arange(npair)] = 1
    peak_rows = load[prob.in_scope].copy()
    peak_rows[:, -2] = -1
    all_rows = load.copy()
    all_rows[:, -1] = -1
    bounds = ([(0, lim) for lim in prob.limit_kw[prob.pair_v]] + [(0, None)] * nv
              + [(0, d) for d in prob.session_need_kwh - prob.need_kwh] + [(0, None), (0, None)])
    ref = linprog(c, A_ub=np.vstack([load, peak_rows, all_rows]),
                  b_ub=np.r_[prob.cap_kw, np.zeros(prob.in_scope.sum() + nt)], A_eq=a_eq,
                  b_eq=prob.session_need_kwh, bounds=bounds, method="highs")
    assert ref.status == 0
    ours_load = np.bincount(prob.pair_t, weights=p, minlength=nt)
    delivered = np.bincount(prob.pair_v, weights=cfg.efficiency * p * prob.pair_h, minlength=nv)
    ours = (np.sum(c[:npair] * p) + unmet_penalty(prob) * np.sum(np.maximum(0, prob.need_kwh - delivered))
            + terminal_value(prob) * np.sum(np.maximum(0, prob.session_need_kwh - np.maximum(delivered, prob.need_kwh)))
            + prob.demand_charge() * ours_load[prob.in_scope].max() + cfg.rebound_peak_weight_per_kw * ours_load.max())
    assert ours == pytest.approx(ref.fun, rel=1e-7, abs=1e-6)


def test_vehicle_departing_after_horizon_charges_cheaply_now():
    site = depot(cap_kw=50.0, n_ac=2)
    reqs = [request("long", 5.0, 30.0, charger="ac0", energy_kwh=40.0)]  # leaves 6 h after the horizon
    plan = plan_site(site, reqs, evening_tou(), T0)
    v = plan.vehicles[0]
    assert v.departs_after_horizon and v.need_kwh == 0.0  # 11 kW x 6 h later would be enough...
    assert v.planned_kwh == pytest.approx(40.0, abs=1e-6)  # ...but tonight's off-peak is cheaper than waiting
    assert v.expected_kwh_at_departure == pytest.approx(40.0, abs=1e-6)


def test_plan_is_json_serialisable_and_round_trips():
    from models.charging import SitePlan

    site = depot(cap_kw=30.0)
    plan = plan_site(site, [request("A", 5.0, 19.0, charger="ac0")], evening_tou(), T0)
    raw = msgspec.json.encode(plan)
    back = msgspec.json.decode(raw, type=SitePlan)
    assert back.vehicle("A").slots() == plan.vehicle("A").slots()
    assert back.metrics == plan.metrics


@pytest.mark.parametrize("seed", range(8))
def test_random_sites_caps_hold_feasible_met_and_lp_delivers_most(seed):
    """Random contested sites: caps always hold; with room for everyone all is met; the LP delivers at least
    as much as EDF and LLF whenever the cap binds."""
    rng = np.random.default_rng(seed)
    n = 12
    arrive = rng.uniform(0.0, 10.0, n).round(2)
    dwell = rng.uniform(1.0, 10.0, n).round(2)
    limit = rng.choice([3.7, 7.4, 11.0, 22.0], n)
    grid = evening_tou(dr_events=(DemandResponseEvent("dr", hours(6.0), hours(7.5), 10.0),))
    site = depot(cap_kw=1000.0, n_ac=n, ac_kw=22.0)
    # feasible by construction: each needs at most 80 % of what its own limit delivers alone, the cap is huge
    # (the DR cap of 10 kW is lifted for this part)
    easy = [request(f"V{i}", arrive[i], arrive[i] + dwell[i], max_kw=float(limit[i]), charger=f"ac{i}",
                    energy_kwh=float(0.8 * 0.92 * limit[i] * dwell[i] * rng.uniform(0.2, 1.0))) for i in range(n)]
    plan = plan_site(site, easy, evening_tou(), T0)
    assert plan.metrics.unmet_kwh == 0.0 and all(v.reason is None for v in plan.vehicles)
    assert_caps(plan, site, easy)
    tight = depot(cap_kw=float(rng.uniform(15.0, 30.0)), n_ac=n, ac_kw=22.0)
    hard = [msgspec.structs.replace(r, energy_kwh=r.energy_kwh * 1.2) for r in easy]
    lp = plan_site(tight, hard, grid, T0)
    assert_caps(lp, tight, hard)
    for method in ("edf", "llf"):
        h = plan_heuristic(method, tight, hard, grid, T0)
        assert_caps(h, tight, hard)
        assert lp.metrics.delivered_kwh >= h.metrics.delivered_kwh - 1e-6
    assert all((v.unmet_kwh > 0) == (v.reason is not None) for v in lp.vehicles)
