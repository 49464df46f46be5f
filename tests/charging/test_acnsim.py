"""The planner inside ACN-Sim (acnportal, a test extra) on the Caltech three-phase network with real EVSEs."""

from __future__ import annotations

import warnings
from datetime import datetime

import numpy as np
import pytest

with warnings.catch_warnings():  # acnportal 0.3.3 imports pkg_resources
    warnings.simplefilter("ignore")
    from acnportal import acnsim

from bench.charging_acnsim import PlannerAlgorithm, run_month  # noqa: E402
from models.charging import PlanConfig, caltech_site  # noqa: E402
from models.charging.network import compile_network  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore")


def test_caltech_tree_matches_acnsims_constraints():
    """Our line-current model of the Caltech ACN gives ACN-Sim's constraint currents for any pilots."""
    cap = 50.0
    network = acnsim.sites.caltech_acn(basic_evse=False, transformer_cap=cap)
    site = caltech_site(cap)
    net = compile_network(site)
    rng = np.random.default_rng(1)
    pilots = {sid: float(rng.integers(0, 33)) for sid in network.station_ids}
    ours = np.zeros(net.rows.shape[1])
    for sid, a in pilots.items():
        ours[net.group_of[sid]] += a
    theirs = network.constraint_current(np.array([[pilots[s]] for s in network.station_ids]))[:, 0]
    by_name = dict(zip(network.constraint_index, np.abs(theirs)))
    mine = dict(zip(net.names, np.abs(net.exact @ ours)))
    assert mine["transformer line a"] == pytest.approx(by_name["Secondary A"], rel=1e-9)
    assert mine["transformer line c"] == pytest.approx(by_name["Secondary C"], rel=1e-9)
    assert mine["transformer primary line b"] == pytest.approx(by_name["Primary B"], rel=1e-9)
    assert mine["cc-pod line a"] == pytest.approx(by_name["CC Pod"], rel=1e-9)
    limits = dict(zip(network.constraint_index, network.magnitudes))
    assert dict(zip(net.names, net.limit))["transformer primary line a"] <= limits["Primary A"]


def test_planner_in_acnsim_has_no_violation_no_invalid_pilot_and_beats_edf_at_a_tight_cap():
    periods = 400  # the first 33 hours of March 2019, 30 kVA: the transformer binds
    ours = run_month("planner", 30.0, periods=periods)  # an invalid pilot would raise InvalidRateError
    edf = run_month("edf", 30.0, periods=periods)
    assert ours["violation_periods"] == 0 and ours["worst_current_over_limit"] <= 1.0 + 1e-6
    assert edf["worst_current_over_limit"] > 0.95  # the cap really binds
    assert ours["energy_delivered_share"] >= edf["energy_delivered_share"]
    assert ours["energy_delivered_share"] < 0.999  # and not everyone can be served


def test_adapter_batches_a_periods_events_into_one_replan():
    class Recording(PlannerAlgorithm):
        triggers: list[str] = []

        def schedule(self, active_sessions):  # type: ignore[no-untyped-def]
            out = super().schedule(active_sessions)
            self.triggers.append(self.planner.plan.trigger)  # type: ignore[union-attr]
            return out

    algo = Recording(caltech_site(50.0), PlanConfig(slot_minutes=5, n_slots=48, efficiency=1.0))
    evs = [acnsim.PluginEvent(10, acnsim.EV(10, 40, 5.0, s, f"S{i}", acnsim.Battery(100, 95, 6.6)))
           for i, s in enumerate(("CA-322", "CA-304", "CA-307"))]
    sim = acnsim.Simulator(acnsim.sites.caltech_acn(basic_evse=False, transformer_cap=50.0), algo,
                           acnsim.EventQueue(evs), datetime(2019, 3, 1), period=5, verbose=False)
    sim.run()
    first = next(i for i, st in enumerate(algo.solve_stats) if st["active_sessions"])
    assert algo.solve_stats[first]["active_sessions"] == 3 and algo.triggers[first] == "batch:3"
    assert acnsim.proportion_of_energy_delivered(sim) == pytest.approx(1.0, abs=1e-3)
