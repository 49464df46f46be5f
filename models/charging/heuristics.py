"""Baseline schedulers with the LP's inputs and outputs: uncontrolled, EDF and LLF.

All three walk the horizon slot by slot and only use vehicles plugged in at that
slot (online; departure times are known, as in ACN-Sim). Each vehicle asks for
``min(limit_kw, rate that finishes its session need in this slot)``.

- ``uncontrolled``: everyone gets what they ask for; the site cap is ignored
  (``metrics.max_cap_excess_kw`` shows by how much it is exceeded).
- ``edf`` (earliest deadline first) and ``llf`` (least laxity first): requests are
  served in priority order until the slot's site cap (DR-lowered) is used up.
  Laxity = hours to departure - hours still needed at full allowed power.

>>> from models.charging.heuristics import METHODS
>>> METHODS
('uncontrolled', 'edf', 'llf')
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from models.charging.outcome import assemble
from models.charging.problem import SiteProblem, build_problem
from models.charging.results import SitePlan
from models.charging.types import GridSignals, PlanConfig, SessionRequest, Site

__all__ = ["METHODS", "plan_heuristic", "heuristic_power"]

METHODS = ("uncontrolled", "edf", "llf")


def heuristic_power(problem: SiteProblem, method: str) -> np.ndarray:
    """Per-pair power (kW) of a heuristic on a built problem."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    eff = problem.config.efficiency
    n_p = len(problem.pair_v)
    power = np.zeros(n_p)
    if n_p == 0:
        return power
    remaining = problem.session_need_kwh.copy()
    order = np.argsort(problem.pair_t, kind="stable")
    t_sorted = problem.pair_t[order]
    cuts = np.searchsorted(t_sorted, np.arange(problem.n_slots + 1))
    limit, dep = problem.limit_kw, problem.departure_s
    for t in np.flatnonzero(cuts[1:] > cuts[:-1]):
        idx = order[cuts[t]:cuts[t + 1]]
        v = problem.pair_v[idx]
        h = problem.pair_h[idx]
        want = np.minimum(limit[v], remaining[v] / (eff * h))
        if method == "uncontrolled":
            give = want
        else:
            if method == "edf":
                key = dep[v]
            else:
                key = (dep[v] - problem.slot_start_s[t]) / 3600.0 - remaining[v] / (eff * limit[v])
            rank = np.lexsort((v, key))
            w = want[rank]
            before = np.cumsum(w) - w
            give = np.empty_like(want)
            give[rank] = np.clip(problem.cap_kw[t] - before, 0.0, w)
        power[idx] = give
        remaining[v] = np.maximum(0.0, remaining[v] - eff * give * h)
    return power


def plan_heuristic(method: str, site: Site, requests: Sequence[SessionRequest], signals: GridSignals,
                   start: datetime, config: PlanConfig = PlanConfig(), *, peak_floor_kw: float = 0.0,
                   trigger: str = "") -> SitePlan:
    """Plan one site with a heuristic (``uncontrolled``, ``edf`` or ``llf``); same output as ``plan_site``."""
    t0 = time.perf_counter()
    problem = build_problem(site, requests, signals, start, config, peak_floor_kw)
    power = heuristic_power(problem, method)
    return assemble(problem, power, method=method, solve_time_s=time.perf_counter() - t0, status="heuristic",
                    trigger=trigger)
