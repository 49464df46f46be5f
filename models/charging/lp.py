"""Per-site linear programme, built vectorised and solved with HiGHS (``highspy``) in one ``passModel`` call.

Variables (columns): p[v,t] >= 0 kW for every plugged-in (vehicle, slot) pair,
unmet[v] >= 0 kWh, defer[v] in [0, session_need[v] - need[v]] kWh (energy a
vehicle departing after the horizon may still get later), load[t] in
[0, cap[t]] kW, ``peak`` >= peak_floor (in-scope site peak) and ``peak_all``
>= 0 (overall site peak).

    minimise  sum price[t] * h[v,t] * p[v,t]                   energy cost ($)
            + carbon_price * carbon[t] / 1000 * h[v,t] * p[v,t] (optional)
            + early_bias * hours_from_start[t] * h[v,t] * p[v,t] (quick-charge tie-break)
            + demand_charge * peak + rebound_weight * peak_all
            + penalty * sum unmet[v] + terminal_value * sum defer[v]
    s.t.      sum_t eta * h[v,t] * p[v,t] + unmet[v] + defer[v] = session_need[v]   (per vehicle)
              sum_v p[v,t] - load[t] = 0, load[t] <= cap[t]       (site cap, DR-lowered)
              load[t] - peak <= 0                                (t in demand-charge scope)
              load[t] - peak_all <= 0                            (all t, if rebound weight > 0)
              0 <= p[v,t] <= min(charger, vehicle, health limit)

              sum_v F[r, group(v)] / kW-per-amp[v] * p[v,t] <= bound[r]   (every tree row r, ``network.py``)

``h[v,t]`` is the plugged-in time in slot t (hours), eta the charging efficiency.
Tree rows enter as lazy cuts: solve without them, add the (row, block) pairs the
solution violates, re-solve warm, repeat; the optimum is the full model's (rows
left out hold), and only the few rows that bind make the LP larger.
The equality row also forbids over-charging (useful with negative prices).
``terminal_value`` (default: the horizon's highest price) values energy a
vehicle could still receive after the horizon, so the plan charges it now when
that is cheaper instead of pushing it all past the horizon. With scope "all",
peak and peak_all coincide and are merged.

Block aggregation (exact): consecutive slots with identical price, carbon, cap,
scope, DR event and length, during which no vehicle plugs in or out, form a
block; every vehicle gets one power per block. Averaging any per-slot solution
over a block keeps it feasible and costs no more (linear costs, the peak of an
average <= the max), so the block LP has the same optimum (the early-bias
tie-break is then applied to the block's mean time). Plans are therefore
constant within such blocks: fewer set-point changes, and about half the
columns of the per-slot model. The first ``config.fine_slots`` slots are never
merged, so the part of the plan that is executed before the next re-plan can
still front-load (quick charge) instead of being spread thin over a long block
— which matters when unknown vehicles arrive later.

Congested near term (``PlanConfig.fill_when_congested``): if the first block's
solution meets a tree row or the site cap, the LP is re-solved warm with a
reward on first-block energy larger than any price difference of the horizon
(``_work_conserving``): the plan then delivers all it can now and shares the
binding lines the way that passes the most energy, rather than postponing
energy for a cheaper hour into which unknown arrivals will contend. The reward
is below the demand charge per kWh, so it never raises the peak.

>>> import highspy  # noqa: F401  (the only solver dependency)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

import highspy
import msgspec
import numpy as np
import scipy.sparse as sp

from models.charging.outcome import assemble
from models.charging.pilots import round_pilots
from models.charging.problem import SiteProblem, build_problem
from models.charging.results import SitePlan
from models.charging.types import GridSignals, PlanConfig, SessionRequest, Site

__all__ = ["plan_site", "unmet_penalty", "terminal_value", "LpSolver", "slot_blocks"]


def unmet_penalty(problem: SiteProblem) -> float:
    """$/kWh for undelivered energy: dominates every cost a kWh can cause (see PlanConfig)."""
    cfg = problem.config
    if cfg.unmet_penalty_per_kwh is not None:
        return cfg.unmet_penalty_per_kwh
    slot_h = cfg.slot_minutes / 60.0
    worst = (float(np.abs(problem.price).max()) + cfg.carbon_price_per_kg * float(problem.carbon.max()) / 1000.0
             + cfg.early_bias_per_kwh_h * cfg.n_slots * slot_h
             + (problem.demand_charge() + cfg.rebound_peak_weight_per_kw) / (cfg.efficiency * slot_h))
    return max(10.0, 100.0 * worst)


def terminal_value(problem: SiteProblem) -> float:
    """$/kWh for session energy deferred past the horizon (PlanConfig override or the max price)."""
    cfg = problem.config
    if cfg.terminal_value_per_kwh is not None:
        return cfg.terminal_value_per_kwh
    return float(np.max(problem.price + cfg.carbon_price_per_kg * problem.carbon / 1000.0)) + 1e-3


def urgency(problem: SiteProblem) -> np.ndarray:
    """Per-vehicle weight of the quick-charge tie-break: 8 x the share of its time left that the vehicle needs
    at full power (its energy still needed / (limit x time left plugged in)), clipped to [0.5, 8].

    Among options of (nearly) equal cost the vehicle with the least slack is served first (as least-laxity-
    first would): vehicles that could still wait keep their slack for vehicles that arrive later and compete,
    while one that must charge at full power from now on is not squeezed by them. (Weighting by time left
    alone, earliest-deadline-first, kept serving short visits and left long ones to run out of time.)"""
    left_h = (problem.departure_s - np.maximum(problem.arrival_s, problem.start_s)) / 3600.0
    share = problem.session_need_kwh / np.maximum(problem.config.efficiency * problem.limit_kw * left_h, 1e-9)
    return np.clip(8.0 * share, 0.5, 8.0)


def slot_blocks(problem: SiteProblem) -> np.ndarray:
    """Block index of every slot (see module docstring): cut where conditions or the plugged-in set change."""
    n_t = problem.n_slots
    cut = np.zeros(n_t + 1, dtype=bool)
    cut[0] = cut[n_t] = True
    cut[: min(problem.config.fine_slots, n_t)] = True  # the near term (executed next) stays per slot
    for a in (problem.price, problem.carbon, problem.cap_kw, problem.in_scope, problem.dr_event, problem.dt_h):
        cut[1:n_t] |= a[1:] != a[:-1]
    if len(problem.pair_v):
        pv, pt, ph = problem.pair_v, problem.pair_t, problem.pair_h
        first = np.flatnonzero(np.r_[True, pv[1:] != pv[:-1]])
        last = np.r_[first[1:] - 1, len(pv) - 1]
        f, lt = pt[first], pt[last]
        cut[f] = True
        cut[lt + 1] = True
        partial_f = ph[first] < problem.dt_h[f] - 1e-9
        partial_l = ph[last] < problem.dt_h[lt] - 1e-9
        cut[f[partial_f] + 1] = True
        cut[lt[partial_l]] = True
    return np.cumsum(cut[:n_t]) - 1


class LpSolver:
    """A reusable HiGHS instance (one per thread); ``solve`` returns per-pair power and the status."""

    def __init__(self, threads: int = 1, presolve: bool = False) -> None:
        # Presolve off: these LPs are small and already tight; it costs more than it saves.
        self._h = highspy.Highs()
        self._h.setOptionValue("output_flag", False)
        self._h.setOptionValue("threads", threads)
        self._h.setOptionValue("random_seed", 0)
        self._presolve = "on" if presolve else "off"
        self._h.setOptionValue("presolve", self._presolve)
        self.last_size: tuple[int, int, int] = (0, 0, 0)  # columns, rows, nonzeros of the last model

    def solve(self, problem: SiteProblem) -> tuple[np.ndarray, str]:
        """Build the block LP of ``problem`` (sparse, column-wise), solve it, return (p per pair, status).

        Vehicles are first bounded by ``plan_limit_kw`` (their limit less the headroom); if that leaves
        any of them short, the headroom is dropped and the LP solved again at the full limits.
        """
        power, status = self._solve(problem, problem.plan_limit_kw)
        if status == "optimal" and np.any(problem.plan_limit_kw < problem.limit_kw):
            got = problem.config.efficiency * np.bincount(problem.pair_v, weights=power * problem.pair_h,
                                                          minlength=problem.n_vehicles)
            short = (problem.need_kwh - got > problem.config.tol_kwh) & (problem.plan_limit_kw < problem.limit_kw)
            if short.any():
                power, status = self._solve(problem, problem.limit_kw)
        return power, status

    def _run(self, problem: SiteProblem) -> None:
        self._h.run()
        model_status = self._h.getModelStatus()
        if model_status == highspy.HighsModelStatus.kUnknown:
            # dual simplex without presolve can stall on badly scaled costs (unmet penalty vs cents): retry
            # once from scratch with presolve, which solves the same model to optimality
            self._h.setOptionValue("presolve", "on")
            self._h.clearSolver()
            self._h.run()
            self._h.setOptionValue("presolve", self._presolve)
            model_status = self._h.getModelStatus()
        if model_status != highspy.HighsModelStatus.kOptimal:
            name = self._h.modelStatusToString(model_status).lower()
            raise RuntimeError(f"HiGHS returned '{name}' for site {problem.site.id!r}")

    def _network_cuts(self, problem: SiteProblem, gv: np.ndarray, gb: np.ndarray, n_b: int) -> None:
        """Tree rows as lazy cuts: add the (row, block) pairs the current solution violates and re-solve
        (warm) until none is violated. Same optimum as adding every row up front (the rows left out hold),
        but most rows never bind, so the LP stays about the size of the aggregate-cap one.
        Row (r, b): sum over the block's columns of rows[r, group] / kW-per-amp * p <= bound[r]."""
        net = problem.network
        if net is None or not net.bound.size or gv.size == 0:
            return
        assert problem.group_v is not None and problem.kw_per_amp_v is not None
        n_g, n_r, n_e = gv.size, net.bound.size, net.rows.shape[1]
        eg = problem.group_v[gv]
        coef = net.rows[:, eg].T / problem.kw_per_amp_v[gv][:, None]  # [G, R] per kW
        order = np.argsort(gb, kind="stable")
        b_start = np.searchsorted(gb[order], np.arange(n_b + 1))
        added = np.zeros(n_b * n_r, dtype=bool)
        for _ in range(100):
            x = np.asarray(self._h.getSolution().col_value)[:n_g]
            amps = np.bincount(gb * n_e + eg, weights=x * problem.kw_per_amp_v[gv] ** -1.0,
                               minlength=n_b * n_e).reshape(n_b, n_e)
            bad = ((amps @ net.rows.T) > net.bound + 1e-7).ravel() & ~added
            if not bad.any():
                return
            keys = np.flatnonzero(bad)
            b, r = keys // n_r, keys % n_r
            counts = b_start[b + 1] - b_start[b]
            first = np.repeat(b_start[b], counts) + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts,
                                                                                        counts))
            col, row = order[first], np.repeat(np.arange(keys.size), counts)
            val = coef[col, r[row]]
            nz = val != 0
            col, row, val = col[nz], row[nz], val[nz]
            starts = np.searchsorted(row, np.arange(keys.size)).astype(np.int32)
            self._h.addRows(keys.size, np.full(keys.size, -highspy.kHighsInf), net.bound[r], val.size, starts,
                            col.astype(np.int32), val)
            added[keys] = True
            self._run(problem)
        raise RuntimeError(f"site {problem.site.id!r}: network cuts did not converge")

    def _work_conserving(self, problem: SiteProblem, cost: np.ndarray, gv: np.ndarray, gb: np.ndarray,
                         g_h: np.ndarray) -> None:
        """Congested near term: if the first block's plan meets a tree row or the site cap, re-solve (warm) with
        a reward on first-block energy larger than any price difference in the horizon, so the plan delivers
        all it can now (the LP then also shares the binding lines the way that passes the most energy), and
        leave it otherwise. The LP knows only the vehicles that are here: it postpones energy for a cheaper
        hour, but capacity unused while the site is at its limit is lost, and later arrivals contend for the
        hours it postponed into. The reward stays below the demand charge per kWh, so the plan still does not
        raise the peak for it, and a site whose limits do not bind keeps its cost-optimal plan."""
        first = np.flatnonzero(gb == 0)
        if not first.size or not problem.config.fill_when_congested:
            return
        x = np.asarray(self._h.getSolution().col_value)[first]
        busy = float(x.sum()) >= problem.cap_kw[0] - 1e-6
        net = problem.network
        if not busy and net is not None and net.bound.size:
            assert problem.group_v is not None and problem.kw_per_amp_v is not None
            g = problem.group_v[gv[first]]
            amps = np.bincount(g, weights=x / problem.kw_per_amp_v[gv[first]], minlength=net.rows.shape[1])
            busy = bool(((net.rows @ amps) > net.bound - 1e-6).any())
        if not busy:
            return
        cfg = problem.config
        value = problem.price + cfg.carbon_price_per_kg * problem.carbon / 1000.0
        span_h = (problem.end_s - problem.start_s) / 3600.0
        reward = float(value.max() - value.min()) + 8.0 * cfg.early_bias_per_kwh_h * span_h + 1e-3
        self._h.changeColsCost(first.size, first.astype(np.int32), cost[first] - reward * g_h[first])
        self._run(problem)
        self._network_cuts(problem, gv, gb, int(gb.max()) + 1)

    def _solve(self, problem: SiteProblem, limit_kw: np.ndarray) -> tuple[np.ndarray, str]:
        cfg = problem.config
        n_p, n_v = len(problem.pair_v), problem.n_vehicles
        if n_p == 0:
            return np.zeros(0), "empty"
        pv, pt, ph = problem.pair_v, problem.pair_t, problem.pair_h
        block = slot_blocks(problem)
        n_b = int(block[-1]) + 1
        b_first = np.flatnonzero(np.r_[True, block[1:] != block[:-1]])  # first slot of each block
        pb = block[pt]
        group = np.cumsum(np.r_[False, (pv[1:] != pv[:-1]) | (pb[1:] != pb[:-1])])
        n_g = int(group[-1]) + 1
        g_first = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        gv, gb = pv[g_first], pb[g_first]
        hours_from_start = (problem.slot_start_s - problem.start_s) / 3600.0
        g_h = np.bincount(group, weights=ph, minlength=n_g)
        g_bias = np.bincount(group, weights=ph * hours_from_start[pt], minlength=n_g)

        scope_b = np.flatnonzero(problem.in_scope[b_first])
        n_s = scope_b.size
        weight = cfg.rebound_peak_weight_per_kw
        merged = n_s == n_b  # scope "all": the in-scope peak is the overall peak
        reb_b = np.arange(n_b) if (weight > 0 and not merged) else np.zeros(0, dtype=np.int64)
        n_r = reb_b.size
        # columns: [p G | unmet V | defer V | load B | peak | peak_all]
        # rows:    [energy V | load definition B | scope S | rebound R]
        c_unmet, c_defer, c_load = n_g, n_g + n_v, n_g + 2 * n_v
        c_peak, c_all = c_load + n_b, c_load + n_b + 1
        r_load, r_scope, r_reb = n_v, n_v + n_b, n_v + n_b + n_s
        n_col, n_row = c_all + 1, r_reb + n_r
        ar_g, ar_v, ar_b = np.arange(n_g), np.arange(n_v), np.arange(n_b)
        rows = np.concatenate([gv, r_load + gb, ar_v, ar_v, r_load + ar_b, r_scope + np.arange(n_s),
                               r_scope + np.arange(n_s), r_reb + np.arange(n_r), r_reb + np.arange(n_r)])
        cols = np.concatenate([ar_g, ar_g, c_unmet + ar_v, c_defer + ar_v, c_load + ar_b, c_load + scope_b,
                               np.full(n_s, c_peak), c_load + reb_b, np.full(n_r, c_all)])
        vals = np.concatenate([cfg.efficiency * g_h, np.ones(n_g), np.ones(2 * n_v), -np.ones(n_b), np.ones(n_s),
                               -np.ones(n_s), np.ones(n_r), -np.ones(n_r)])
        a = sp.csc_matrix((vals, (rows, cols)), shape=(n_row, n_col))

        bt = b_first[gb]
        cost = np.zeros(n_col)
        cost[:n_g] = (g_h * (problem.price[bt] + cfg.carbon_price_per_kg * problem.carbon[bt] / 1000.0)
                      + cfg.early_bias_per_kwh_h * urgency(problem)[gv] * g_bias)
        cost[c_unmet:c_defer] = unmet_penalty(problem)
        cost[c_defer:c_load] = terminal_value(problem)
        cost[c_peak] = problem.demand_charge() + (weight if merged else 0.0)
        cost[c_all] = weight if n_r else 0.0
        lower = np.zeros(n_col)
        lower[c_peak] = problem.peak_floor_kw
        upper = np.full(n_col, highspy.kHighsInf)
        upper[:n_g] = limit_kw[gv]
        upper[c_defer:c_load] = problem.session_need_kwh - problem.need_kwh
        upper[c_load:c_peak] = problem.cap_kw[b_first]
        row_lo = np.concatenate([problem.session_need_kwh, np.zeros(n_b), np.full(n_s + n_r, -highspy.kHighsInf)])
        row_hi = np.concatenate([problem.session_need_kwh, np.zeros(n_b + n_s + n_r)])

        h = self._h
        h.clearModel()
        status = h.passModel(n_col, n_row, a.nnz, int(highspy.MatrixFormat.kColwise),
                             int(highspy.ObjSense.kMinimize), 0.0, cost, lower, upper, row_lo, row_hi,
                             a.indptr.astype(np.int32), a.indices.astype(np.int32), a.data,
                             np.zeros(n_col, dtype=np.int32))
        if status == highspy.HighsStatus.kError:
            raise RuntimeError(f"HiGHS rejected the model of site {problem.site.id!r}")
        self.last_size = (n_col, n_row, int(a.nnz))
        self._run(problem)
        self._network_cuts(problem, gv, gb, n_b)
        self._work_conserving(problem, cost, gv, gb, g_h)
        power = np.clip(np.asarray(h.getSolution().col_value)[group], 0.0, limit_kw[pv])
        # HiGHS meets rows within its 1e-7 tolerance; scale such slots down so caps hold exactly
        load = np.bincount(pt, weights=power, minlength=problem.n_slots)
        over = load > problem.cap_kw
        if over.any():
            factor = np.ones(problem.n_slots)
            factor[over] = problem.cap_kw[over] / load[over]
            power *= factor[pt]
        return power, "optimal"


def plan_site(site: Site, requests: Sequence[SessionRequest], signals: GridSignals, start: datetime,
              config: PlanConfig = PlanConfig(), *, peak_floor_kw: float = 0.0, solver: LpSolver | None = None,
              trigger: str = "") -> SitePlan:
    """Optimal plan for one site from ``start``; ``solve_time_s`` covers build + solve + results."""
    t0 = time.perf_counter()
    problem = build_problem(site, requests, signals, start, config, peak_floor_kw)
    solver = solver or LpSolver(config.threads)
    power, status = solver.solve(problem)
    power, amps = round_pilots(problem, power)
    plan = assemble(problem, power, method="lp", solve_time_s=0.0, status=status, trigger=trigger, amps=amps)
    metrics = msgspec.structs.replace(plan.metrics, solve_time_s=time.perf_counter() - t0)
    return msgspec.structs.replace(plan, metrics=metrics)
