"""Uncontrolled, EDF and LLF: same interface as the LP; EDF/LLF respect caps, uncontrolled reports its peak."""

from __future__ import annotations

import numpy as np
import pytest

from models.charging import DemandResponseEvent, plan_heuristic, plan_site
from tests.charging._helpers import T0, assert_caps, depot, evening_tou, hours, request


def contested():
    site = depot(cap_kw=15.0, n_ac=4)
    reqs = [request("late", 5.0, 18.0, charger="ac0", energy_kwh=30.0),  # leaves last, lots of slack
            request("early", 5.0, 7.0, charger="ac1", energy_kwh=18.0),  # leaves first: 2 h x 11 kW needed
            request("mid", 5.0, 9.0, charger="ac2", energy_kwh=25.0),
            request("tiny", 5.25, 6.0, charger="ac3", energy_kwh=2.0)]
    grid = evening_tou(dr_events=(DemandResponseEvent("dr", hours(6.5), hours(7.5), 8.0),))
    return site, reqs, grid


@pytest.mark.parametrize("method", ["edf", "llf"])
def test_edf_llf_respect_caps_including_dr(method):
    site, reqs, grid = contested()
    plan = plan_heuristic(method, site, reqs, grid, T0)
    assert plan.method == method and plan.metrics.status == "heuristic"
    assert_caps(plan, site, reqs)
    assert plan.metrics.max_cap_excess_kw == 0.0
    assert max(plan.site_load_kw) == pytest.approx(15.0)  # work-conserving up to the cap
    dr_slots = [i for i, s in enumerate(plan.slot_starts()) if hours(6.5) <= s < hours(7.5)]
    assert max(plan.site_load_kw[i] for i in dr_slots) <= 8.0 + 1e-9


def test_edf_serves_earliest_deadline_first():
    site, reqs, grid = contested()
    plan = plan_heuristic("edf", site, reqs, grid, T0)
    first = {v.vin: v.kw[0] for v in plan.vehicles}  # the 17:00 slot: 15 kW for late/early/mid
    assert first["early"] == pytest.approx(11.0) and first["mid"] == pytest.approx(4.0) and first["late"] == 0.0


def test_llf_serves_least_laxity_first():
    site, reqs, grid = contested()
    plan = plan_heuristic("llf", site, reqs, grid, T0)
    # laxity at 17:00: early 2 - 18/(.92*11) = 0.22 h, mid 4 - 2.47 = 1.53 h, late 13 - 2.96 = 10 h
    first = {v.vin: v.kw[0] for v in plan.vehicles}
    assert first["early"] == pytest.approx(11.0) and first["mid"] == pytest.approx(4.0) and first["late"] == 0.0


def test_uncontrolled_ignores_cap_and_reports_its_peak():
    site, reqs, grid = contested()
    plan = plan_heuristic("uncontrolled", site, reqs, grid, T0)
    peak = 3 * 11.0 + 2.0 / (0.92 * 0.25)  # at 17:15 "tiny" only needs 8.7 kW to finish in one slot
    assert plan.metrics.peak_kw == pytest.approx(peak)
    assert plan.metrics.max_cap_excess_kw == pytest.approx(peak - 15.0)
    assert_caps(plan, site, reqs, site_cap=False)
    by = {v.vin: v for v in plan.vehicles}
    assert by["tiny"].planned_kwh == pytest.approx(2.0) and by["early"].unmet_kwh == 0.0
    # stops when full: 18 kWh at 11 kW x 0.92 takes 1.78 h, then zero
    assert by["early"].kw[7] == pytest.approx(18.0 / 0.92 / 0.25 - 7 * 11.0) and by["early"].kw[7] < 11.0


def test_lp_delivers_at_least_as_much_as_heuristics():
    site, reqs, grid = contested()
    delivered = {m: plan_heuristic(m, site, reqs, grid, T0).metrics.delivered_kwh for m in ("edf", "llf")}
    lp = plan_site(site, reqs, grid, T0)
    assert all(lp.metrics.delivered_kwh >= d - 1e-6 for d in delivered.values())
    assert lp.metrics.unmet_kwh == pytest.approx(lp.metrics.need_kwh - lp.metrics.delivered_kwh, abs=1e-6)
    assert np.all(np.asarray(lp.site_load_kw) <= np.asarray(lp.cap_kw) + 1e-9)


def test_unknown_method_is_rejected():
    site, reqs, grid = contested()
    with pytest.raises(ValueError, match="method must be one of"):
        plan_heuristic("fifo", site, reqs, grid, T0)
