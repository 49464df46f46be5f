"""A site whose tree binds now: the plan delivers what the other lines can still carry now (capacity unused
while the site is at its limit is lost) instead of postponing it for price; a site that does not bind keeps
its cost-optimal plan."""

from __future__ import annotations

import pytest

from models.charging import Charger, GridSignals, Node, PlanConfig, SessionRequest, Site, plan_site
from tests.charging._helpers import T0, hours


def two_panel_site(p1_amps: float) -> Site:
    """Two 208 V chargers on panel p1 (AB, ``p1_amps`` per line), one on panel p2 (BC, 40 A), under a 200 A
    main; continuous pilots, so no rounding hands energy back."""
    def evse(cid: str, panel: str, phases: str) -> Charger:
        return Charger(cid, 7.4, panel=panel, phases=phases, voltage_v=208.0, max_a=32.0)  # continuous pilots

    nodes = (Node("main", "panel", limit_a=200.0), Node("p1", "panel", parent="main", phases="AB", limit_a=p1_amps),
             Node("p2", "panel", parent="main", limit_a=40.0))
    return Site("depot", "America/Los_Angeles", 100.0, (evse("c0", "p1", "AB"), evse("c1", "p1", "AB"),
                                                        evse("c2", "p2", "BC")), nodes)


def plan(p1_amps: float, config: PlanConfig = PlanConfig()):  # type: ignore[no-untyped-def]
    site = two_panel_site(p1_amps)
    prices = tuple(0.30 if i < 16 else 0.10 for i in range(96))  # dear for 4 h, then cheap
    grid = GridSignals(site.id, T0, prices, demand_charge_per_kw=0.0)
    reqs = [SessionRequest("V0", site.id, T0, hours(2), 7.4, energy_kwh=10.0, charger_id="c0"),
            SessionRequest("V1", site.id, T0, hours(2), 7.4, energy_kwh=10.0, charger_id="c1"),
            SessionRequest("V2", site.id, T0, hours(10), 7.4, energy_kwh=5.0, charger_id="c2")]
    return plan_site(site, reqs, grid, T0, config)


def test_a_congested_first_slot_is_filled_on_the_lines_that_still_have_room():
    busy = plan(40.0)  # p1 cannot carry what V0 and V1 need by 14:00: its lines bind from the first slot
    assert busy.vehicle("V0").amps[0] + busy.vehicle("V1").amps[0] == pytest.approx(40.0)
    v2 = busy.vehicle("V2")
    assert v2.amps[0] == pytest.approx(32.0) and v2.kw[0] == pytest.approx(32 * 0.208)  # now, at full power
    assert v2.planned_kwh == pytest.approx(5.0, abs=1e-3) and v2.unmet_kwh == 0.0  # and no more than it needs
    plain = plan(40.0, PlanConfig(fill_when_congested=False))  # the cost-optimal plan postpones V2 to the cheap hours
    assert plain.vehicle("V2").kw[:16] == [0.0] * 16 and plain.vehicle("V2").unmet_kwh == 0.0


def test_a_site_that_does_not_bind_keeps_its_cost_optimal_plan():
    loose = plan(200.0)
    assert loose.vehicle("V2").kw[:16] == [0.0] * 16  # nothing binds: V2 waits for the cheap hours
    assert loose.vehicle("V2").kw == plan(200.0, PlanConfig(fill_when_congested=False)).vehicle("V2").kw
