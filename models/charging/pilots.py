"""Pilot signals a real EVSE accepts: plan power (kW) -> whole-step pilot amps that keep every limit.

A charger accepts 0 or ``min_a``..``max_a`` (continuous, or in ``step_a``
steps from ``min_a``). Each (vehicle, slot) power becomes amps (kW / kW-per-amp)
and is rounded *down* to an accepted value (below ``min_a`` -> 0). A line
current can grow when another load on a line at more than 90° is lowered, so
every slot is then checked against the tree rows and the site cap, and loads
of a violated row are stepped down until it holds. Finally, in the first
``config.fine_slots`` slots (the part executed before the next re-plan), the
energy lost to rounding is handed back greedily: vehicles that lost the most
are stepped up one accepted value at a time while every row, the site cap and
the vehicle's limit still hold. Later slots keep the rounded-down (valid,
safe) pilots; they are rounded again when a re-plan brings them near.

>>> import numpy as np
>>> floor_allowed(np.array([3.0, 6.4, 11.81, 40.0]), np.full(4, 6.0), np.full(4, 1.0))
array([ 0.,  6., 11., 40.])
"""

from __future__ import annotations

import numpy as np

from models.charging.problem import SiteProblem

__all__ = ["floor_allowed", "round_pilots"]

_TOL = 1e-7


def floor_allowed(amps: np.ndarray, min_a: np.ndarray, step_a: np.ndarray) -> np.ndarray:
    """The largest accepted pilot <= amps (0, or min_a + k * step_a; continuous above min_a when step_a is 0)."""
    safe_step = np.where(step_a > 0, step_a, 1.0)
    k = np.floor((amps - min_a) / safe_step + 1e-9)
    out = np.where(step_a > 0, min_a + k * step_a, amps)
    out = np.minimum(out, amps)
    return np.where(amps < min_a - 1e-9, 0.0, np.maximum(out, 0.0))


def _next_allowed(amps: np.ndarray, want: np.ndarray, min_a: np.ndarray, step_a: np.ndarray) -> np.ndarray:
    """The next accepted pilot above a rounded-down one (0 -> min_a, else + step; continuous: the wanted value)."""
    return np.where(amps <= 0.0, np.maximum(min_a, np.where(step_a > 0, step_a, want)),
                    np.where(step_a > 0, amps + step_a, want))


def _slot_state(problem: SiteProblem, amps: np.ndarray, kwpa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per slot: tree-row left-hand sides [T, R] and site load (kW) [T]."""
    net = problem.network
    assert net is not None and problem.group_v is not None
    n_t, n_e = problem.n_slots, net.rows.shape[1]
    g = problem.group_v[problem.pair_v]
    ga = np.bincount(problem.pair_t * n_e + g, weights=amps, minlength=n_t * n_e).reshape(n_t, n_e)
    return ga @ net.rows.T, np.bincount(problem.pair_t, weights=amps * kwpa, minlength=n_t)


def round_pilots(problem: SiteProblem, power: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(power kW, pilot amps) per pair after rounding (see module doc); (power, None) without a tree."""
    net = problem.network
    if net is None or not len(power):
        return power, None
    assert problem.kw_per_amp_v is not None and problem.pilot_min_a is not None
    assert problem.pilot_step_a is not None and problem.group_v is not None
    pv, pt = problem.pair_v, problem.pair_t
    kwpa = problem.kw_per_amp_v[pv]
    lo, step = problem.pilot_min_a[pv], problem.pilot_step_a[pv]
    want = power / kwpa
    top = floor_allowed(problem.limit_kw[pv] / kwpa, lo, step)
    amps = np.minimum(floor_allowed(want, lo, step), top)
    lhs, load = _slot_state(problem, amps, kwpa)
    bad = np.flatnonzero(((lhs > net.bound + _TOL).any(axis=1)) | (load > problem.cap_kw + 1e-9))
    g = problem.group_v[pv]
    for t in bad:  # rare: lowering one load raised a line current; step loads of violated rows down
        idx = np.flatnonzero(pt == t)
        for _ in range(10 * idx.size + 1):
            over = lhs[t] - net.bound
            cap_over = load[t] - problem.cap_kw[t]
            if over.max(initial=-1.0) <= _TOL and cap_over <= 1e-9:
                break
            r = int(np.argmax(over))
            gain = net.rows[r, g[idx]] if over[r] > _TOL else kwpa[idx]
            cand = idx[(gain > 0) & (amps[idx] > 0)]
            if not cand.size:
                raise RuntimeError(f"site {problem.site.id!r}: slot {t} cannot be made feasible by lowering pilots")
            i = cand[np.argmax(amps[cand])]
            new = floor_allowed(np.array([amps[i] - max(step[i], 1.0)]), lo[i:i + 1], step[i:i + 1])[0]
            lhs[t] += net.rows[:, g[i]] * (new - amps[i])
            load[t] += kwpa[i] * (new - amps[i])
            amps[i] = new
    _hand_back(problem, amps, want, top, lhs, load, kwpa)
    return amps * kwpa, amps


def _hand_back(problem: SiteProblem, amps: np.ndarray, want: np.ndarray, top: np.ndarray, lhs: np.ndarray,
               load: np.ndarray, kwpa: np.ndarray) -> None:
    """Greedy step-up in the first ``fine_slots`` slots (in place), largest energy loss first."""
    net = problem.network
    assert net is not None and problem.group_v is not None
    assert problem.pilot_min_a is not None and problem.pilot_step_a is not None
    pv, pt = problem.pair_v, problem.pair_t
    eff = problem.config.efficiency
    lost_kwh = np.bincount(pv, weights=eff * (want - amps) * kwpa * problem.pair_h, minlength=problem.n_vehicles)
    near = np.flatnonzero((pt < problem.config.fine_slots) & (want - amps > 1e-6))
    if not near.size:
        return
    g = problem.group_v[pv]
    nxt = _next_allowed(amps[near], want[near], problem.pilot_min_a[pv[near]], problem.pilot_step_a[pv[near]])
    for k in np.lexsort((-(want[near] - amps[near]), pt[near])):
        i, t, v = near[k], pt[near[k]], pv[near[k]]
        new = min(nxt[k], top[i])
        if new <= amps[i] or lost_kwh[v] <= 1e-6:
            continue
        d = new - amps[i]
        if (np.any(lhs[t] + net.rows[:, g[i]] * d > net.bound + _TOL)
                or load[t] + kwpa[i] * d > problem.cap_kw[t] + 1e-9):
            continue
        lhs[t] += net.rows[:, g[i]] * d
        load[t] += kwpa[i] * d
        lost_kwh[v] -= eff * d * kwpa[i] * problem.pair_h[i]
        amps[i] = new
