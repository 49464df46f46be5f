"""Turn per-pair power into a ``SitePlan``: metrics, schedules and a reason for every shortfall.

Used by the LP and the heuristics alike, so their outputs are comparable.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from models.charging.problem import SiteProblem
from models.charging.results import PlanMetrics, SitePlan, VehicleSchedule

__all__ = ["assemble", "explain_shortfalls", "site_load"]

_BIND_KW = 1e-4


def _excess(load: np.ndarray, cap: np.ndarray) -> float:
    """Largest load above the cap (kW); float noise below 1e-9 kW counts as 0."""
    ex = float(np.max(load - cap)) if load.size else 0.0
    return ex if ex > 1e-9 else 0.0


def site_load(problem: SiteProblem, power: np.ndarray) -> np.ndarray:
    """Site load per slot (kW) from per-pair power."""
    return np.bincount(problem.pair_t, weights=power, minlength=problem.n_slots)


def _clock(problem: SiteProblem, ts: float) -> str:
    tz = problem.site.tz
    t = datetime.fromtimestamp(ts, tz)
    day0 = datetime.fromtimestamp(problem.start_s, tz).date()
    return t.strftime("%H:%M") if t.date() == day0 else t.strftime("%Y-%m-%d %H:%M")


def _limit_name(problem: SiteProblem, v: int) -> str:
    lim = problem.limit_kw[v]
    if problem.decisions[v].power_limit_kw <= lim + 1e-9:
        return "battery-health limit"
    if problem.requests[v].max_kw <= lim + 1e-9:
        return "vehicle limit"
    return "charger limit"


def _network_binding(problem: SiteProblem, power: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Per slot: is a tree row (nearly) binding [T], and the most loaded row [T]; None without a tree."""
    net = problem.network
    if net is None or not net.bound.size or problem.group_v is None or problem.kw_per_amp_v is None:
        return None
    n_t, n_e = problem.n_slots, net.rows.shape[1]
    amps = power / problem.kw_per_amp_v[problem.pair_v]
    ga = np.bincount(problem.pair_t * n_e + problem.group_v[problem.pair_v], weights=amps,
                     minlength=n_t * n_e).reshape(n_t, n_e)
    use = (ga @ net.rows.T) / net.bound
    return use.max(axis=1) >= 0.95, use.argmax(axis=1)  # 5 %: rounding to whole-step pilots leaves slack


def explain_shortfalls(problem: SiteProblem, power: np.ndarray, unmet: np.ndarray,
                       load: np.ndarray) -> list[tuple[str, str] | None]:
    """(reason_code, message) per vehicle with unmet energy, None for the others."""
    out: list[tuple[str, str] | None] = [None] * problem.n_vehicles
    tol = problem.config.tol_kwh
    eff = problem.config.efficiency
    bounds = np.searchsorted(problem.pair_v, np.arange(problem.n_vehicles + 1))
    occupancy = np.bincount(problem.pair_t, minlength=problem.n_slots)
    binding = load >= problem.cap_kw - _BIND_KW
    net_binding = _network_binding(problem, power)
    for v in np.flatnonzero(unmet > tol):
        sl = slice(bounds[v], bounds[v + 1])
        t, h = problem.pair_t[sl], problem.pair_h[sl]
        need, lim = problem.need_kwh[v], problem.limit_kw[v]
        got = float(eff * np.sum(power[sl] * h))
        dep = _clock(problem, problem.departure_s[v])
        alone = float(eff * lim * h.sum())
        if need > alone + tol:  # same as: session need > what its own limit delivers over the whole stay
            total = alone + float(eff * lim * problem.after_h[v])
            out[v] = ("vehicle_limit", f"needs {problem.session_need_kwh[v]:.1f} kWh but can receive at most "
                                       f"{total:.1f} kWh before departure {dep} at {lim:.1f} kW "
                                       f"({_limit_name(problem, v)})")
            continue
        dr_slots = t[(problem.dr_event[t] >= 0) & binding[t]]
        capped_alone = float(eff * np.sum(np.minimum(lim, problem.cap_kw[t]) * h))
        if dr_slots.size or (need > capped_alone + tol and (problem.dr_event[t] >= 0).any()):
            i = int(problem.dr_event[dr_slots[0]] if dr_slots.size else problem.dr_event[t][problem.dr_event[t] >= 0][0])
            ev = problem.signals.dr_events[i]
            s = _clock(problem, max(ev.start.timestamp(), problem.start_s))
            e = _clock(problem, ev.end.timestamp())
            out[v] = ("dr_event", f"site cap during DR window '{ev.id}' ({ev.cap_kw:.1f} kW {s}-{e}): receives "
                                  f"{got:.1f} of {need:.1f} kWh needed before departure {dep}")
        elif net_binding is not None and net_binding[0][t].any():
            rows = net_binding[1][t][net_binding[0][t]]
            element = problem.network.row_element[int(rows[0])]  # type: ignore[union-attr]
            out[v] = ("network_limit", f"line limit of {element} binds: receives {got:.1f} of {need:.1f} kWh "
                                       f"needed before departure {dep}")
        elif binding[t].any():
            others = int(occupancy[t].max()) - 1
            cap = float(problem.cap_kw[t][binding[t]].min())
            out[v] = ("site_cap", f"site cap {cap:.1f} kW shared with {others} other plugged-in vehicles: "
                                  f"receives {got:.1f} of {need:.1f} kWh needed before departure {dep}")
        else:
            out[v] = ("schedule", f"schedule delivers {got:.1f} of {need:.1f} kWh before departure {dep} "
                                  f"although capacity was left")
    return out


def assemble(problem: SiteProblem, power: np.ndarray, *, method: str, solve_time_s: float, status: str,
             trigger: str = "", amps: np.ndarray | None = None) -> SitePlan:
    """Build the ``SitePlan`` for per-pair power ``power`` (kW, aligned with ``problem.pair_*``)."""
    cfg = problem.config
    eff = cfg.efficiency
    n_v, n_t = problem.n_vehicles, problem.n_slots
    power = np.clip(power, 0.0, problem.limit_kw[problem.pair_v])
    power[power < 1e-9] = 0.0
    grid_e = power * problem.pair_h
    load = site_load(problem, power)
    grid_kwh = np.bincount(problem.pair_v, weights=grid_e, minlength=n_v)
    planned = eff * grid_kwh
    unmet = np.maximum(0.0, problem.need_kwh - planned)
    unmet[unmet <= cfg.tol_kwh] = 0.0
    reasons = explain_shortfalls(problem, power, unmet, load)
    h_after = problem.after_h
    deferred = np.minimum(np.maximum(0.0, problem.session_need_kwh - planned), eff * problem.limit_kw * h_after)

    tz = problem.site.tz
    counts = np.bincount(problem.pair_v, minlength=n_v)
    bounds = np.concatenate(([0], np.cumsum(counts)))
    first_t = np.zeros(n_v, dtype=np.int64)  # slot of each vehicle's first pair (pairs are consecutive slots)
    first_t[counts > 0] = problem.pair_t[bounds[:-1][counts > 0]]
    kw_lists = power.tolist()
    amp_lists = amps.tolist() if amps is not None else None
    vehicles = []
    for v, req in enumerate(problem.requests):
        dec = problem.decisions[v]
        before = req.delivered_kwh
        expected = before + float(planned[v] + deferred[v])
        soc = (req.soc_pct + expected / req.capacity_kwh * 100.0
               if req.soc_pct is not None and req.capacity_kwh is not None else None)
        first = (datetime.fromtimestamp(float(problem.slot_start_s[first_t[v]]), tz) if counts[v] else None)
        why = reasons[v]
        vehicles.append(VehicleSchedule(
            vin=req.vin, charger_id=req.charger_id, first_slot_start=first, slot_minutes=cfg.slot_minutes,
            kw=kw_lists[bounds[v]:bounds[v + 1]], power_limit_kw=float(problem.limit_kw[v]),
            requested_kwh=req.requested_kwh, need_kwh=float(problem.need_kwh[v]), planned_kwh=float(planned[v]),
            grid_kwh=float(grid_kwh[v]), delivered_before_kwh=before, expected_kwh_at_departure=expected,
            expected_soc_pct=None if soc is None else min(100.0, soc), target_soc_pct=dec.target_soc_pct,
            departs_after_horizon=bool(h_after[v] > 0), unmet_kwh=float(unmet[v]),
            reason_code=why[0] if why else None, reason=why[1] if why else None, health_note=dec.note,
            amps=amp_lists[bounds[v]:bounds[v + 1]] if amp_lists is not None else None))

    scope_load = load[problem.in_scope]
    peak_scope = float(scope_load.max()) if scope_load.size else 0.0
    energy_cost = float(np.sum(problem.price[problem.pair_t] * grid_e))
    demand_cost = problem.demand_charge() * max(peak_scope, problem.peak_floor_kw)
    need_total = float(problem.need_kwh.sum())
    metrics = PlanMetrics(
        peak_kw=float(load.max()) if n_t else 0.0, peak_in_scope_kw=peak_scope, energy_kwh=float(grid_e.sum()),
        delivered_kwh=float(planned.sum()), need_kwh=need_total, unmet_kwh=float(unmet.sum()),
        share_met=1.0 if need_total <= 0 else float(1.0 - unmet.sum() / need_total),
        energy_cost_usd=energy_cost, demand_cost_usd=demand_cost, cost_usd=energy_cost + demand_cost,
        carbon_kg=float(np.sum(problem.carbon[problem.pair_t] * grid_e) / 1000.0),
        max_cap_excess_kw=_excess(load, problem.cap_kw), solve_time_s=solve_time_s,
        status=status)
    return SitePlan(
        site_id=problem.site.id, method=method, trigger=trigger,
        horizon_start=datetime.fromtimestamp(problem.start_s, tz),
        horizon_end=datetime.fromtimestamp(problem.end_s, tz), slot_minutes=cfg.slot_minutes,
        site_load_kw=load.tolist(), cap_kw=problem.cap_kw.tolist(), price_per_kwh=problem.price.tolist(),
        vehicles=vehicles, metrics=metrics)
