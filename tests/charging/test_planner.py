"""Receding horizon: events trigger re-plans that respect new caps and keep the energy books straight."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import numpy as np
import pytest

from models.charging import DemandResponseEvent, PlanConfig, Planner, PlannerState
from tests.charging._helpers import assert_caps, depot, evening_tou, hours, request

ETA = 0.92


def executed_kwh(plan, vin, start, end):
    """Battery energy a plan delivers to ``vin`` in [start, end), computed from its published schedule."""
    sched = plan.vehicle(vin)
    slots = sched.slots()
    total = 0.0
    for i, (s, kw) in enumerate(slots):
        e = slots[i + 1][0] if i + 1 < len(slots) else s + timedelta(minutes=sched.slot_minutes)
        lo, hi = max(s, start), min(e, end)
        if hi > lo:
            total += ETA * kw * (hi - lo).total_seconds() / 3600
    return total


def three_cars_planner():
    site = depot(cap_kw=40.0, n_ac=3)
    grid = evening_tou(flat=0.15, demand_charge=0.0)
    reqs = [request(f"V{i}", 5.0, 19.0, charger=f"ac{i}", energy_kwh=40.0) for i in range(3)]
    pl = Planner(site, grid, PlanConfig())
    for r in reqs:
        plan = pl.plug_in(r, hours(5))
    return site, reqs, pl, plan


def test_dr_event_replans_with_new_cap_from_event_start_and_consistent_energy():
    site, reqs, pl, before = three_cars_planner()
    assert before.metrics.unmet_kwh == 0.0
    assert before.trigger == "plug_in:V2"
    assert max(before.site_load_kw) > 5.0  # without DR the plan charges through the evening
    now = hours(8)  # 20:00: the utility announces 21:00-23:00 at 5 kW
    event = DemandResponseEvent("dr-42", hours(9), hours(11), 5.0)
    after = pl.demand_response(event, now)
    assert after.trigger == "dr_event:dr-42"
    assert after.horizon_start == now
    # energy credited for 17:00-20:00 is exactly what the previous plan scheduled then
    assert sum(executed_kwh(before, r.vin, hours(5), now) for r in reqs) > 15.0  # which car gets it is a tie
    for r in reqs:
        done = executed_kwh(before, r.vin, hours(5), now)
        assert pl.delivered_kwh(r.vin) == pytest.approx(done, abs=1e-9)
        v = after.vehicle(r.vin)
        assert v.delivered_before_kwh == pytest.approx(done, abs=1e-9)
        assert v.need_kwh == pytest.approx(40.0 - done, abs=1e-9)
        assert v.expected_kwh_at_departure == pytest.approx(40.0, abs=1e-6)
        assert v.unmet_kwh == 0.0
    starts = after.slot_starts()
    in_dr = [i for i, s in enumerate(starts) if event.start <= s < event.end]
    assert len(in_dr) == 8
    assert all(after.cap_kw[i] == 5.0 for i in in_dr)
    assert max(after.site_load_kw[i] for i in in_dr) <= 5.0 + 1e-9
    assert max(after.site_load_kw[i] for i in in_dr) == pytest.approx(5.0)  # the low cap is used, not idled
    assert all(after.cap_kw[i] == 40.0 for i, s in enumerate(starts) if s < event.start or s >= event.end)
    assert_caps(after, site, list(pl.sessions))


def test_dr_event_starting_mid_slot_caps_the_current_partial_slot():
    _, _, pl, _ = three_cars_planner()
    now = hours(8) + timedelta(minutes=5)  # 20:05, inside the 20:00-20:15 slot
    plan = pl.demand_response(DemandResponseEvent("now", now, hours(9), 2.0), now)
    assert plan.slot_starts()[0] == now and plan.slot_starts()[1] == hours(8.25)
    assert plan.cap_kw[0] == 2.0 and plan.site_load_kw[0] <= 2.0 + 1e-9
    assert plan.metrics.unmet_kwh == 0.0


def test_plug_out_tick_and_state_round_trip():
    site, reqs, pl, _ = three_cars_planner()
    assert pl.tick(hours(5) + timedelta(minutes=10)) is None  # less than one slot since the last plan
    ticked = pl.tick(hours(5.5))
    assert ticked is not None and ticked.trigger == "tick"
    snapshot = msgspec.json.encode(pl.state())  # the state has no plan: restore it at the time it was taken
    gone = pl.plug_out("V1", hours(5.5))
    assert [v.vin for v in gone.vehicles] == ["V0", "V2"]
    closed = pl.pop_closed()
    assert [c.vin for c in closed] == ["V1"] and closed[0].delivered_kwh > 0 and pl.pop_closed() == []
    # a planner restored from the snapshot re-plans the same way
    restored = Planner.from_state(msgspec.json.decode(snapshot, type=PlannerState))
    twin = restored.plug_out("V1", hours(5.5))
    np.testing.assert_allclose(twin.site_load_kw, gone.site_load_kw, atol=1e-6)
    assert {v.vin: v.delivered_before_kwh for v in twin.vehicles} == pytest.approx(
        {v.vin: v.delivered_before_kwh for v in gone.vehicles}, abs=1e-9)


def test_realised_peak_becomes_the_demand_charge_floor():
    site = depot(cap_kw=60.0, n_ac=3)
    grid = evening_tou(demand_charge=15.0)
    pl = Planner(site, grid)
    # must charge inside the 16:00-21:00 window: 20 kWh in 2 h
    p1 = pl.plug_in(request("A", 5.0, 7.0, charger="ac0", energy_kwh=20.0), hours(5))
    peak = p1.metrics.peak_in_scope_kw
    assert peak == pytest.approx(20.0 / ETA / 2, rel=1e-6)  # spread flat: the lowest possible peak
    p2 = pl.plug_in(request("B", 5.5, 19.0, charger="ac1", energy_kwh=10.0), hours(5.5))
    assert pl.realized_peak_kw == pytest.approx(peak, rel=1e-6)
    assert p2.metrics.demand_cost_usd == pytest.approx(15.0 * peak, rel=1e-6)  # no new peak: B waits for 21:00
    assert p2.metrics.unmet_kwh == 0.0


def test_a_clock_that_goes_back_is_re_anchored_and_site_must_match(caplog):
    _, reqs, pl, _ = three_cars_planner()
    pl.advance(hours(6))
    delivered = [pl.delivered_kwh(r.vin) for r in reqs]
    assert sum(delivered) > 0
    with caplog.at_level("WARNING"):
        plan = pl.plug_out("V0", hours(5.5))  # stamped before the planner clock: no exception
    assert "re-anchoring the clock" in caplog.text
    assert [pl.delivered_kwh(r.vin) for r in reqs[1:]] == delivered[1:]  # nothing credited for going back
    assert plan.metrics.unmet_kwh == 0.0
    pl.advance(hours(6))  # from the re-anchored clock on, time counts again
    assert sum(pl.delivered_kwh(r.vin) for r in reqs[1:]) > sum(delivered[1:]) + 1.0
    other = request("X", 5.0, 9.0)
    with pytest.raises(ValueError, match="site_id"):
        pl.plug_in(msgspec.structs.replace(other, site_id="elsewhere"), hours(6))
    with pytest.raises(ValueError, match="timezone-aware"):
        pl.tick(hours(6).replace(tzinfo=None))
