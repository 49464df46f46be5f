"""Pilot signals a real EVSE accepts: plan power (kW) -> whole-step pilot amps that keep every limit.

A charger accepts 0 or ``min_a``..``max_a`` (continuous, or in ``step_a``
steps from ``min_a``). Each (vehicle, slot) power becomes amps (kW / kW-per-amp)
and is rounded *down* to an accepted value (below ``min_a`` -> 0). A line
current can grow when another load on a line at more than 90° is lowered, so
every slot is then checked against the tree rows and the site cap, and loads
of a violated row are stepped down until it holds. Finally the energy lost to
rounding is handed back greedily (``_hand_back``): in every slot, by earliest
departure, pilots are raised to the highest accepted value that every row, the
site cap, the vehicle's limit and the energy still owed to it allow (so a
set-point below ``min_a`` becomes ``min_a`` in fewer slots, and capacity freed
by rounding goes to who needs it). When the executed slot is congested (a row
binds), the capacity left on the other lines goes to vehicles that still need
energy (``_hand_back``).

>>> import numpy as np
>>> floor_allowed(np.array([3.0, 6.4, 11.81, 40.0]), np.full(4, 6.0), np.full(4, 1.0))
array([ 0.,  6., 11., 40.])
"""

from __future__ import annotations

import numpy as np

from models.charging.problem import SiteProblem

__all__ = ["ceil_allowed", "floor_allowed", "round_pilots"]

_TOL = 1e-7


def floor_allowed(amps: np.ndarray, min_a: np.ndarray, step_a: np.ndarray) -> np.ndarray:
    """The largest accepted pilot <= amps (0, or min_a + k * step_a; continuous above min_a when step_a is 0)."""
    safe_step = np.where(step_a > 0, step_a, 1.0)
    k = np.floor((amps - min_a) / safe_step + 1e-9)
    out = np.where(step_a > 0, min_a + k * step_a, amps)
    out = np.minimum(out, amps)
    return np.where(amps < min_a - 1e-9, 0.0, np.maximum(out, 0.0))


def ceil_allowed(amps: np.ndarray, min_a: np.ndarray, step_a: np.ndarray) -> np.ndarray:
    """The smallest accepted pilot >= amps (0 stays 0)."""
    safe_step = np.where(step_a > 0, step_a, 1.0)
    k = np.ceil(np.maximum(amps - min_a, 0.0) / safe_step - 1e-9)
    out = np.where(step_a > 0, min_a + k * safe_step, np.maximum(amps, min_a))
    return np.where(amps <= 1e-12, 0.0, out)


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
    charger_a = floor_allowed(problem.charger_kw[pv] / kwpa, lo, step)
    # a pilot may offer more than the car takes: the smallest accepted pilot that lets it draw its own limit
    car_kw = np.fromiter((r.max_kw for r in problem.requests), float, problem.n_vehicles)[pv]
    health_kw = np.fromiter((d.power_limit_kw for d in problem.decisions), float, problem.n_vehicles)[pv]
    top = np.minimum(np.minimum(charger_a, ceil_allowed(car_kw / kwpa - 1e-9, lo, step)),
                     floor_allowed(np.minimum(health_kw / kwpa, 1e9), lo, step))  # health: the pilot enforces it
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
    return np.minimum(amps * kwpa, problem.limit_kw[pv]), amps


def _hand_back(problem: SiteProblem, amps: np.ndarray, want: np.ndarray, top: np.ndarray, lhs: np.ndarray,
               load: np.ndarray, kwpa: np.ndarray) -> None:
    """Greedy redistribution (in place), in two passes of ``_raise``.

    1. Rounding losses: a vehicle's budget is the energy rounding took from it, or its remaining need if
       larger. Beyond the first ``fine_slots`` slots only capacity freed by rounding is handed out (the slot's
       load stays at the LP's, give or take one pilot step), so the plan keeps the LP's cost trade-offs there.
    2. Congested near term (``PlanConfig.fill_when_congested``): in a near slot where the LP's plan already
       meets a tree row, capacity the LP left on the other lines is handed to plugged-in vehicles that still
       need energy this session (up to that need; the energy moved comes off their latest later slots). The
       LP postpones such energy only for price (it knows the vehicles that are here, not those that will
       come); capacity unused now is lost, and at a site whose tree binds later arrivals contend for the
       hours it postponed into. Slots where no row binds are left as the LP planned them.
    In a congested slot neither pass lets the cars draw more than both the LP's load and the realised peak
    (a new peak is the LP's decision), except for a car that needs its full power for all its time left.
    """
    net = problem.network
    assert net is not None
    pv, pt, ph = problem.pair_v, problem.pair_t, problem.pair_h
    eff = problem.config.efficiency
    n_v, n_t = problem.n_vehicles, problem.n_slots
    lim = problem.limit_kw[pv]
    lost = np.bincount(pv, weights=eff * (want - amps) * kwpa * ph, minlength=n_v)
    planned = np.bincount(pv, weights=eff * amps * kwpa * ph, minlength=n_v)
    lp_lhs = lhs + _slot_state(problem, want - amps, kwpa)[0]
    lp_load = np.bincount(pt, weights=want * kwpa, minlength=n_t)
    drawn = np.bincount(pt, weights=np.minimum(amps * kwpa, lim), minlength=n_t)  # what the cars take
    near = np.arange(n_t) < problem.config.fine_slots
    congested = near & (lp_lhs > net.bound - 1e-3).any(axis=1) & problem.config.fill_when_congested
    # In a congested slot the LP already filled the slot up to the realised peak (lp.py); there the cars may
    # not draw more than both the LP's load and that peak (the LP decides a new peak), except a car that
    # cannot get its energy later: it needs its full power for all the time it has left.
    peak = np.where(problem.in_scope & congested, np.maximum(lp_load, problem.peak_floor_kw), np.inf)
    left_h = (problem.departure_s - np.maximum(problem.arrival_s, problem.start_s)) / 3600.0
    free = (problem.session_need_kwh >= eff * problem.limit_kw * left_h - problem.config.tol_kwh)[pv]
    _raise(problem, amps, top, lhs, load, drawn, kwpa, np.maximum(lost, problem.need_kwh - planned),
           np.where(near, np.inf, lp_load - 1e-9), peak, free)
    if not congested.any():
        return
    in_near = congested[pt]
    got_near = np.bincount(pv[in_near], weights=eff * amps[in_near] * kwpa[in_near] * ph[in_near], minlength=n_v)
    before = amps.copy()
    _raise(problem, amps, top, lhs, load, drawn, kwpa, problem.session_need_kwh - got_near,
           np.where(congested, np.inf, -np.inf), peak, free)
    _take_back(problem, amps, kwpa, np.bincount(pv, weights=eff * (amps - before) * kwpa * ph, minlength=n_v),
               in_near)


def _take_back(problem: SiteProblem, amps: np.ndarray, kwpa: np.ndarray, moved: np.ndarray,
               fixed: np.ndarray) -> None:
    """Energy moved into the near term comes off each vehicle's latest other slots (pilots only go down, to an
    accepted value that keeps at least the rest), so the plan does not deliver it twice."""
    assert problem.pilot_min_a is not None and problem.pilot_step_a is not None
    pv, pt, ph = problem.pair_v, problem.pair_t, problem.pair_h
    eff = problem.config.efficiency
    for v in np.flatnonzero(moved > problem.config.tol_kwh):
        idx = np.flatnonzero((pv == v) & ~fixed)[::-1]  # latest first
        if not idx.size:
            continue
        per_amp = eff * kwpa[idx] * ph[idx]
        energy = amps[idx] * per_amp
        before = np.cumsum(energy) - energy  # taken from the later slots already
        cut = np.clip(moved[v] - before, 0.0, energy)
        rest = amps[idx] - cut / per_amp
        amps[idx] = np.minimum(amps[idx], ceil_allowed(np.maximum(rest, 0.0), problem.pilot_min_a[pv[idx]],
                                                       problem.pilot_step_a[pv[idx]]))


def _raise(problem: SiteProblem, amps: np.ndarray, top: np.ndarray, lhs: np.ndarray, load: np.ndarray,
           drawn: np.ndarray, kwpa: np.ndarray, budget: np.ndarray, gate: np.ndarray, peak: np.ndarray,
           free: np.ndarray) -> None:
    """Raise pilots in place, in rounds vectorised over slots: each round takes, in every slot whose pilot
    load is below ``gate`` and whose drawn load below ``peak``, the next plugged-in pair by earliest departure
    (at most one pair per vehicle per round) and raises it to the highest accepted pilot that every tree row,
    the site cap (pilot kW), ``peak`` (kW the cars draw: a pilot above a car's limit adds nothing; not for
    ``free`` pairs), its limit and its vehicle's ``budget`` (kWh, spent as it goes) allow."""
    net = problem.network
    assert net is not None and problem.group_v is not None
    assert problem.pilot_min_a is not None and problem.pilot_step_a is not None
    pv, pt, ph = problem.pair_v, problem.pair_t, problem.pair_h
    eff = problem.config.efficiency
    lim = problem.limit_kw[pv]
    budget = budget.copy()
    cand = np.flatnonzero((amps < top - 1e-9) & (budget[pv] > problem.config.tol_kwh) & (load < gate)[pt]
                          & ((drawn < peak - 1e-9)[pt] | free))
    if not cand.size:
        return
    cand = cand[np.lexsort((problem.departure_s[pv[cand]], pt[cand]))]  # by slot, earliest departure first
    todo = np.ones(cand.size, dtype=bool)
    g = problem.group_v[pv]
    lo, step = problem.pilot_min_a[pv], problem.pilot_step_a[pv]
    while todo.any():
        left = np.flatnonzero(todo)
        _, head = np.unique(pt[cand[left]], return_index=True)  # the first pair still to do in every slot
        pick = left[head]
        _, once = np.unique(pv[cand[pick]], return_index=True)  # one pair per vehicle per round
        pick = pick[once]
        todo[pick] = False
        i = cand[pick]
        t = pt[i]
        keep = (load[t] < gate[t]) & ((drawn[t] < peak[t] - 1e-9) | free[i])
        i, t = i[keep], t[keep]
        coef = net.rows[:, g[i]].T  # [n, R]
        slack = net.bound - lhs[t]
        room = np.where(coef > 1e-12, np.maximum(slack, 0.0) / np.where(coef > 1e-12, coef, 1.0), np.inf).min(
            axis=1, initial=np.inf)
        room = np.minimum(room, np.maximum(problem.cap_kw[t] - load[t], 0.0) / kwpa[i])
        now_kw = np.minimum(amps[i] * kwpa[i], lim[i])
        reach = now_kw + np.maximum(peak[t] - drawn[t], 0.0)  # the most this car may draw within ``peak``
        room = np.where((reach >= lim[i] - 1e-9) | free[i], room, np.minimum(room, reach / kwpa[i] - amps[i]))
        owed = np.maximum(budget[pv[i]], 0.0) / (eff * kwpa[i] * ph[i])  # may round up: a full car stops
        target = np.minimum(np.minimum(floor_allowed(amps[i] + np.maximum(room, 0.0) * (1 - 1e-9), lo[i], step[i]),
                                       ceil_allowed(amps[i] + owed, lo[i], step[i])), top[i])
        d = np.maximum(target - amps[i], 0.0)
        ok = d > 1e-9
        i, t, d, coef, now_kw = i[ok], t[ok], d[ok], coef[ok], now_kw[ok]
        lhs[t] += coef * d[:, None]  # one pair per slot per round: no repeated index
        load[t] += kwpa[i] * d
        drawn[t] += np.minimum((amps[i] + d) * kwpa[i], lim[i]) - now_kw
        budget[pv[i]] -= eff * d * kwpa[i] * ph[i]
        amps[i] += d
