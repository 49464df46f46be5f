"""The project's planner inside ACN-Sim (acnportal 0.3.3, a bench/test extra; models/ never imports it).

``PlannerAlgorithm`` is an ACN-Sim scheduling algorithm: every period it hands the
simulator's active sessions to a ``models.charging.Planner`` on the Caltech tree
(``caltech_site``) as one batch — new sessions plug in, finished ones plug out,
each session's metered ``energy_delivered`` is a reading — and returns the plan's
first-slot pilot amps. ``run_month`` runs one algorithm over the March 2019
sessions on ``caltech_acn(basic_evse=False, transformer_cap=cap)`` with ideal
batteries that take at most ``car_kw`` (6.6 kW: a little less than a 32 A pilot
offers at 208 V), and measures it with acnportal's own analysis functions.

ACN-Sim counts periods on the wall clock and ignores DST; the planner runs on the
same clock (fixed UTC-8), and prices come from the SCE TOU-EV-4 tariff on it.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
from acnportal import acnsim
from acnportal.algorithms import (BaseAlgorithm, RoundRobin, SortedSchedulingAlgo, UncontrolledCharging,
                                  earliest_deadline_first, least_laxity_first)

from models.charging.acn import caltech_site, load_acn_sessions
from models.charging.lp import LpSolver
from models.charging.planner import Planner
from models.charging.problem import build_problem
from models.charging.tariff import load_tariff, tariff_signals
from models.charging.types import GridSignals, PlanConfig, SessionRequest, Site

__all__ = ["PlannerAlgorithm", "run_month", "offline_optimum", "ALGORITHMS"]

PERIOD_MIN = 5
CLOCK = "Etc/GMT+8"  # ACN-Sim's DST-free wall clock (UTC-8)
START = datetime(2019, 3, 1, tzinfo=timezone(timedelta(hours=-8)))
TARIFF = "sce_tou_ev_4_march_2019"
CAR_KW = 6.6
FACET_DEG = 2.0  # the planner's chords, as the offline optimum's: at most 1 - cos 1° = 0.015 % of a line given away


def at(period: int) -> datetime:
    """The planner's time of an ACN-Sim period."""
    return START + timedelta(minutes=PERIOD_MIN * period)


def month_signals(site: Site) -> GridSignals:
    """SCE TOU-EV-4 prices on 5-minute slots over March and the first days of April 2019."""
    return tariff_signals(site.id, load_tariff(TARIFF), CLOCK, START.date(), 45, slot_minutes=PERIOD_MIN,
                          demand_charge_scope="all")


class PlannerAlgorithm(BaseAlgorithm):
    """ACN-Sim algorithm wrapping the receding-horizon ``Planner`` (one batch update per period)."""

    def __init__(self, site: Site, config: PlanConfig) -> None:
        super().__init__()
        self.max_recompute = 1
        self.planner = Planner(site, month_signals(site), config, replan_every_min=PERIOD_MIN)

    def schedule(self, active_sessions: list[Any]) -> dict[str, list[float]]:
        now = at(self.interface.current_time)
        active = {s.session_id: s for s in active_sessions}
        known = {r.vin for r in self.planner.sessions}
        site = self.planner.site
        plug_ins = [SessionRequest(vin=sid, site_id=site.id, plug_in=min(at(s.arrival), now),
                                   departure=at(s.estimated_departure), max_kw=site.charger(s.station_id).max_kw,
                                   energy_kwh=float(s.requested_energy), charger_id=s.station_id,
                                   delivered_kwh=float(s.energy_delivered))
                    for sid, s in active.items() if sid not in known]
        readings = {sid: float(s.energy_delivered) for sid, s in active.items() if sid in known}
        plan = self.planner.update(now, plug_ins=plug_ins, plug_outs=sorted(known - active.keys()),
                                   deliveries=readings)
        return {v.charger_id: [v.amps[0] if v.amps else 0.0] for v in plan.vehicles  # type: ignore[misc]
                if v.charger_id is not None and v.first_slot_start == plan.horizon_start}


def _events(car_kw: float, periods: int | None = None) -> acnsim.EventQueue:
    evs = []
    for s in load_acn_sessions():
        if periods is not None and s.arrival_period >= periods:
            continue
        cap = max(100.0, s.requested_kwh)
        battery = acnsim.Battery(cap, cap - s.requested_kwh, car_kw)
        evs.append(acnsim.PluginEvent(s.arrival_period, acnsim.EV(s.arrival_period, s.departure_period,
                                                                  s.requested_kwh, s.station_id, s.session_id,
                                                                  battery)))
    return acnsim.EventQueue(evs)


ALGORITHMS = ("uncontrolled", "edf", "llf", "round_robin", "planner")


def _algorithm(name: str, cap: float, config: PlanConfig) -> BaseAlgorithm:
    if name == "uncontrolled":
        return UncontrolledCharging()
    if name == "edf":
        return SortedSchedulingAlgo(earliest_deadline_first)
    if name == "llf":
        return SortedSchedulingAlgo(least_laxity_first)
    if name == "round_robin":
        return RoundRobin(earliest_deadline_first)
    if name == "planner":
        return PlannerAlgorithm(caltech_site(cap), config)
    raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {name!r}")


def _violations(sim: Any) -> tuple[int, float]:
    """(periods with any constraint above its limit, worst ratio current / limit) over the run."""
    cur = acnsim.constraint_currents(sim, return_magnitudes=True)
    limits = dict(zip(sim.network.constraint_index, sim.network.magnitudes))
    ratio = np.vstack([np.abs(np.asarray(cur[k])) / limits[k] for k in limits])
    tol = sim.network.violation_tolerance / np.asarray(list(limits.values()))[:, None]
    return int(np.sum((ratio > 1.0 + tol).any(axis=0))), float(ratio.max())


def run_month(name: str, cap: float, *, car_kw: float = CAR_KW, config: PlanConfig | None = None,
              periods: int | None = None) -> dict[str, Any]:
    """One ACN-Sim run of algorithm ``name`` at transformer cap ``cap`` (kVA); metrics from acnportal."""
    config = config or PlanConfig(slot_minutes=PERIOD_MIN, n_slots=144, efficiency=1.0, fine_slots=1,
                                  phase_facet_deg=FACET_DEG)
    network = acnsim.sites.caltech_acn(basic_evse=False, transformer_cap=cap)
    events = _events(car_kw, periods)
    algo = _algorithm(name, cap, config)
    sim = acnsim.Simulator(network, algo, events, START.replace(tzinfo=None), period=PERIOD_MIN, verbose=False)
    t0 = time.perf_counter()
    sim.run()  # an invalid pilot raises acnportal's InvalidRateError here
    wall = time.perf_counter() - t0
    power = acnsim.aggregate_power(sim)
    site = caltech_site(cap)
    price = np.asarray(month_signals(site).prices_per_kwh)[: power.size]
    dc = month_signals(site).demand_charge_per_kw
    n_bad, worst = _violations(sim)
    solve = sum(s["solve_time"] for s in algo.solve_stats)
    return {"algorithm": name, "cap_kva": cap, "energy_delivered_share": float(acnsim.proportion_of_energy_delivered(sim)),
            "demands_met_share": float(acnsim.proportion_of_demands_met(sim)),
            "energy_kwh": float(acnsim.total_energy_delivered(sim)), "peak_kw": float(power.max()),
            "energy_cost_usd": float(np.sum(price * power) * PERIOD_MIN / 60), "demand_charge_usd": float(dc * power.max()),
            "violation_periods": n_bad, "worst_current_over_limit": worst, "invalid_pilots": 0,
            "solve_time_s": solve, "wall_s": wall, "calls": len(algo.solve_stats)}


def offline_optimum(cap: float, *, car_kw: float = CAR_KW, max_deg: float = 2.0) -> dict[str, Any]:
    """Perfect-foresight LP over the month on the same tree (continuous pilots, chords of ``max_deg``)."""
    site = caltech_site(cap)
    sessions = load_acn_sessions()
    reqs = [SessionRequest(vin=s.session_id, site_id=site.id, plug_in=at(s.arrival_period),
                           departure=at(s.departure_period), max_kw=car_kw, energy_kwh=s.requested_kwh,
                           charger_id=s.station_id) for s in sessions]
    n = max(s.departure_period for s in sessions)
    cfg = PlanConfig(slot_minutes=PERIOD_MIN, n_slots=n, efficiency=1.0, headroom=0.0, fine_slots=0,
                     phase_facet_deg=max_deg, fill_when_congested=False)
    t0 = time.perf_counter()
    prob = build_problem(site, reqs, month_signals(site), START, cfg)
    power, _ = LpSolver(presolve=True).solve(prob)
    got = np.bincount(prob.pair_v, weights=power * prob.pair_h, minlength=prob.n_vehicles)
    req = np.array([r.requested_kwh for r in reqs])
    return {"algorithm": "offline_optimum", "cap_kva": cap,
            "energy_delivered_share": float(np.minimum(got, req).sum() / req.sum()),
            "energy_kwh": float(got.sum()), "solve_time_s": time.perf_counter() - t0}


def _table(rows: list[dict[str, Any]]) -> str:
    out = ["| cap kVA | algorithm | energy delivered % | demands met % | peak kW | energy $ | demand $ | "
           "violating periods | worst current / limit | solve s |", "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["algorithm"] == "offline_optimum":
            out.append(f"| {r['cap_kva']:.0f} | offline optimum (LP, perfect foresight, same tree) | "
                       f"{100 * r['energy_delivered_share']:.2f} | | | | | | | {r['solve_time_s']:.1f} |")
            continue
        out.append(f"| {r['cap_kva']:.0f} | {r['algorithm']} | {100 * r['energy_delivered_share']:.2f} | "
                   f"{100 * r['demands_met_share']:.1f} | {r['peak_kw']:.1f} | {r['energy_cost_usd']:.0f} | "
                   f"{r['demand_charge_usd']:.0f} | {r['violation_periods']} | {r['worst_current_over_limit']:.3f} | "
                   f"{r['solve_time_s']:.1f} |")
    return "\n".join(out)


def plot(rows: list[dict[str, Any]], path: Any) -> None:
    """Energy delivered per cap and algorithm (bars), offline optimum as a marker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    caps = sorted({r["cap_kva"] for r in rows})
    algos = [a for a in ALGORITHMS if a != "uncontrolled"]
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(algos)
    for i, a in enumerate(algos):
        ys = [next((100 * r["energy_delivered_share"] for r in rows if r["cap_kva"] == c and r["algorithm"] == a),
                   np.nan) for c in caps]
        ax.bar(np.arange(len(caps)) + i * width, ys, width, label=a)
    opt = [next((100 * r["energy_delivered_share"] for r in rows if r["cap_kva"] == c
                 and r["algorithm"] == "offline_optimum"), np.nan) for c in caps]
    ax.plot(np.arange(len(caps)) + 0.4 - width / 2, opt, "k_", ms=40, mew=2, label="offline optimum")
    ax.set_xticks(np.arange(len(caps)) + 0.4 - width / 2, [f"{c:.0f} kVA" for c in caps])
    lo = min(r["energy_delivered_share"] for r in rows) * 100
    ax.set(ylim=(max(0, lo - 5), 100.5), ylabel="% of requested energy delivered",
           title="ACN-Sim, Caltech ACN March 2019, three-phase network, real EVSE pilot sets")
    ax.legend(fontsize=8, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.1))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    """Run every algorithm at every cap (``BENCH_ACNSIM_CAPS``, default 30,50,80 kVA; ``BENCH_ACNSIM_ALGOS``,
    ``offline_optimum`` among them) and write the report part. ``BENCH_ACNSIM_KEEP=1`` keeps the rows of
    acnsim.json that are not re-run; ``BENCH_ACNSIM_JSON`` writes the rows elsewhere (and no report)."""
    import json
    import os
    import sys
    import warnings
    from pathlib import Path

    warnings.simplefilter("ignore")
    out = Path(__file__).resolve().parent / "charging_report"
    caps = [float(c) for c in os.environ.get("BENCH_ACNSIM_CAPS", "30,50,80").split(",")]
    algos = os.environ.get("BENCH_ACNSIM_ALGOS", ",".join(("offline_optimum",) + ALGORITHMS)).split(",")
    target = Path(os.environ.get("BENCH_ACNSIM_JSON", out / "acnsim.json"))
    rows: list[dict[str, Any]] = []
    if os.environ.get("BENCH_ACNSIM_KEEP") == "1":
        rows = [r for r in json.loads((out / "acnsim.json").read_text())
                if not (r["cap_kva"] in caps and r["algorithm"] in algos)]
    for cap in caps:
        for a in algos:
            rows.append(offline_optimum(cap) if a == "offline_optimum" else run_month(a, cap))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            target.write_text(json.dumps(rows, indent=1) + "\n")
    if "BENCH_ACNSIM_JSON" not in os.environ:
        write_report(rows, out)


def _summary(rows: list[dict[str, Any]]) -> str:
    lines = []
    for cap in sorted({r["cap_kva"] for r in rows}):
        by = {r["algorithm"]: r for r in rows if r["cap_kva"] == cap}
        if "planner" not in by:
            continue
        ours = 100 * by["planner"]["energy_delivered_share"]
        parts = [f"planner {ours:.2f} %"]
        for a in ("edf", "llf", "round_robin"):
            if a in by:
                parts.append(f"{a} {100 * by[a]['energy_delivered_share']:.2f} %")
        if "offline_optimum" in by:
            opt = 100 * by["offline_optimum"]["energy_delivered_share"]
            parts.append(f"offline optimum {opt:.2f} % (gap {opt - ours:.2f} points)")
        lines.append(f"- {cap:.0f} kVA: " + ", ".join(parts) + f"; planner violations "
                     f"{by['planner']['violation_periods']}, invalid pilots 0.")
    return "\n".join(lines)


def write_report(rows: list[dict[str, Any]], out: Any) -> None:
    """acnsim.md and acnsim.png in ``out`` from the measured rows."""
    order = ("offline_optimum",) + ALGORITHMS
    rows = sorted(rows, key=lambda r: (r["cap_kva"], order.index(r["algorithm"])))
    plot(rows, out / "acnsim.png")
    (out / "acnsim.md").write_text(
        "## ACN-Sim: the planner on the Caltech three-phase network\n\n"
        f"Generated by `python -m bench.charging_acnsim` (acnportal 0.3.3). March 2019 sessions (954), "
        f"`caltech_acn(basic_evse=False, transformer_cap=cap)`: 54 EVSEs on phase pairs, per-line limits on both "
        f"sides of the transformer and two 80 A pods; AeroVironment EVSEs accept 0 or 6-32 A, ClipperCreek 0/8/16/"
        f"24/32 A (an invalid pilot aborts the run with `InvalidRateError`). Ideal batteries that take at most "
        f"{CAR_KW} kW (a 32 A pilot offers 6.656 kW). 5-minute periods; the planner re-plans every period from "
        f"the metered energy (12 h horizon, SCE TOU-EV-4 prices, month peak as demand-charge floor, "
        f"{FACET_DEG:g}° chords; when the executed slot meets a line limit it delivers all it can in that slot "
        f"instead of postponing energy for price, and its tie-break serves the least slack first). "
        f"Violations are counted with acnportal's `constraint_currents` against the network's limits. The offline "
        f"optimum is one LP over the month with perfect foresight on the same tree (2° chords, continuous "
        f"pilots, cars at 6.6 kW): an upper bound. Solve s = wall time inside the algorithm over the month (these "
        f"runs shared 2 cores with other jobs: compare them with each other, not with a quiet machine). A cap "
        f"without a row for an algorithm was not run.\n\n"
        + _summary(rows) + "\n\n" + _table(rows) + "\n\n![energy delivered](acnsim.png)\n")


if __name__ == "__main__":
    main()
