"""One site's planning problem as numpy arrays, shared by the LP and the heuristics.

The horizon is ``config.n_slots`` slots of ``config.slot_minutes`` aligned to the
Unix epoch; the first slot starts at the plan's ``start`` (possibly mid-slot, so
it is shorter). A vehicle may use slot t for ``overlap_h`` hours (the part of
the slot it is plugged in); its power p is what it draws during that time, and
the site/peak constraints count p for the whole slot (conservative).

Only plugged-in (vehicle, slot) pairs exist (``pair_v``, ``pair_t``,
``pair_h``; sorted by vehicle then slot), so memory and model size scale with
plugged-in time, not vehicles x slots.

A vehicle departing after the horizon end only needs, inside the horizon, what
it could not still get afterwards at full allowed power:
``need = max(0, session_need - efficiency * limit_kw * plugged_in_hours_after_horizon)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime

import numpy as np

from models.charging.network import Network, compile_network
from models.charging.policy import HealthDecision, apply_health_policy
from models.charging.types import GridSignals, PlanConfig, SessionRequest, Site

__all__ = ["SiteProblem", "build_problem"]


@dataclass(frozen=True)
class SiteProblem:
    """Arrays of one site's horizon (T slots), vehicles (V) and plugged-in pairs (P)."""

    site: Site
    requests: tuple[SessionRequest, ...]
    signals: GridSignals
    config: PlanConfig
    slot_start_s: np.ndarray  # [T] epoch seconds (first = plan start)
    slot_end_s: np.ndarray  # [T]
    dt_h: np.ndarray  # [T] slot length, hours
    price: np.ndarray  # [T] $/kWh
    carbon: np.ndarray  # [T] g CO2/kWh (zeros without a series)
    cap_kw: np.ndarray  # [T] site cap after demand-response events
    dr_event: np.ndarray  # [T] index into signals.dr_events that set the cap, -1 = none
    in_scope: np.ndarray  # [T] bool, slot counts for the demand charge
    pair_v: np.ndarray  # [P] vehicle index
    pair_t: np.ndarray  # [P] slot index
    pair_h: np.ndarray  # [P] plugged-in hours within the slot
    arrival_s: np.ndarray  # [V]
    departure_s: np.ndarray  # [V]
    charger_kw: np.ndarray  # [V]
    limit_kw: np.ndarray  # [V] min(charger, vehicle, health limit)
    session_need_kwh: np.ndarray  # [V] battery-side, whole session, after ceiling and delivered energy
    need_kwh: np.ndarray  # [V] battery-side, required inside the horizon
    after_h: np.ndarray  # [V] plugged-in hours after the horizon end
    decisions: tuple[HealthDecision, ...]
    peak_floor_kw: float
    plan_limit_kw: np.ndarray  # [V] limit_kw less the headroom where the vehicle still gets its need
    network: Network | None = None  # the site's tree rows (None: aggregate cap only)
    group_v: np.ndarray | None = None  # [V] network group of each vehicle's charger
    kw_per_amp_v: np.ndarray | None = None  # [V]
    pilot_min_a: np.ndarray | None = None  # [V]
    pilot_step_a: np.ndarray | None = None  # [V] 0 = continuous

    @property
    def n_slots(self) -> int:
        return int(self.slot_start_s.size)

    @property
    def n_vehicles(self) -> int:
        return len(self.requests)

    @property
    def start_s(self) -> float:
        return float(self.slot_start_s[0])

    @property
    def end_s(self) -> float:
        return float(self.slot_end_s[-1])

    def demand_charge(self) -> float:
        """$/kW on the in-scope peak."""
        return float(self.signals.demand_charge_per_kw) if self.in_scope.any() else 0.0


def _slot_grid(start: datetime, config: PlanConfig) -> tuple[np.ndarray, np.ndarray]:
    step = config.slot_minutes * 60
    start_s = start.timestamp()
    k0 = np.floor(start_s / step)
    bounds = (k0 + np.arange(config.n_slots + 1)) * step
    slot_start = bounds[:-1].copy()
    slot_start[0] = start_s
    return slot_start, bounds[1:].copy()


def _signal_arrays(signals: GridSignals, slot_start: np.ndarray, slot_end: np.ndarray,
                   site_cap: float) -> tuple[np.ndarray, ...]:
    step = signals.slot_minutes * 60
    n = len(signals.prices_per_kwh)
    idx = np.clip(np.floor((slot_start - signals.start.timestamp()) / step).astype(np.int64), 0, n - 1)
    price = np.asarray(signals.prices_per_kwh, dtype=float)[idx]
    carbon = (np.asarray(signals.carbon_g_per_kwh, dtype=float)[idx] if signals.carbon_g_per_kwh is not None
              else np.zeros_like(price))
    cap = np.full(slot_start.shape, float(site_cap))
    dr = np.full(slot_start.shape, -1, dtype=np.int64)
    for i, ev in enumerate(signals.dr_events):
        hit = (slot_start < ev.end.timestamp()) & (slot_end > ev.start.timestamp()) & (ev.cap_kw < cap)
        cap[hit] = ev.cap_kw
        dr[hit] = i
    if signals.demand_charge_scope == "all":
        scope = np.ones(slot_start.shape, dtype=bool)
    else:
        scope = np.zeros(slot_start.shape, dtype=bool)
        for w in signals.peak_windows:
            scope |= (slot_start < w.end.timestamp()) & (slot_end > w.start.timestamp())
    return price, carbon, cap, dr, scope


def _check_requests(site: Site, requests: Sequence[SessionRequest], start_s: float) -> None:
    seen: set[str] = set()
    by_charger: dict[str, list[tuple[float, float, str]]] = {}
    for r in requests:
        if r.site_id != site.id:
            raise ValueError(f"SessionRequest.site_id {r.site_id!r} does not match site {site.id!r} (vin {r.vin})")
        if r.vin in seen:
            raise ValueError(f"SessionRequest.vin {r.vin!r} appears twice for site {site.id!r}")
        seen.add(r.vin)
        if r.departure.timestamp() <= start_s:
            raise ValueError(f"SessionRequest.departure {r.departure.isoformat()} is not after the plan start "
                             f"(vin {r.vin})")
        if r.charger_id is None and site.nodes:
            raise ValueError(f"SessionRequest.charger_id is required at site {site.id!r}, which has an electrical "
                             f"tree (vin {r.vin})")
        if r.charger_id is not None:
            site.charger(r.charger_id)
            by_charger.setdefault(r.charger_id, []).append((r.plug_in.timestamp(), r.departure.timestamp(), r.vin))
    for cid, spans in by_charger.items():
        spans.sort()
        for (_, d0, v0), (a1, _, v1) in zip(spans, spans[1:]):
            if a1 < d0:
                raise ValueError(f"SessionRequest.charger_id {cid!r} has overlapping sessions {v0} and {v1}")


def build_problem(site: Site, requests: Sequence[SessionRequest], signals: GridSignals, start: datetime,
                  config: PlanConfig, peak_floor_kw: float = 0.0) -> SiteProblem:
    """Validate and vectorise one site's inputs for a horizon starting at ``start``."""
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError(f"start must be a timezone-aware datetime, got {start!r}")
    if signals.site_id != site.id:
        raise ValueError(f"GridSignals.site_id {signals.site_id!r} does not match site {site.id!r}")
    if not (peak_floor_kw >= 0):
        raise ValueError(f"peak_floor_kw must be >= 0, got {peak_floor_kw!r}")
    slot_start, slot_end = _slot_grid(start, config)
    _check_requests(site, requests, float(slot_start[0]))
    price, carbon, cap, dr, scope = _signal_arrays(signals, slot_start, slot_end, site.cap_kw)
    reqs = tuple(requests)
    n_v = len(reqs)
    net = _network(site, config.phase_facet_deg)
    kw = {c.id: c.max_kw if net is None or c.max_a is None else min(c.max_kw, c.max_a * net.kw_per_amp[c.id])
          for c in site.chargers}
    best_charger = max(kw.values())
    decisions = tuple(apply_health_policy(r, config.health) for r in reqs)
    arrival = np.fromiter((r.plug_in.timestamp() for r in reqs), float, n_v)
    departure = np.fromiter((r.departure.timestamp() for r in reqs), float, n_v)
    charger_kw = np.fromiter((kw[r.charger_id] if r.charger_id else best_charger for r in reqs), float, n_v)
    vehicle_kw = np.fromiter((r.max_kw for r in reqs), float, n_v)
    health_kw = np.fromiter((d.power_limit_kw for d in decisions), float, n_v)
    limit = np.minimum(np.minimum(charger_kw, vehicle_kw), health_kw)
    delivered = np.fromiter((r.delivered_kwh for r in reqs), float, n_v)
    session_need = np.maximum(0.0, np.fromiter((d.session_need_kwh for d in decisions), float, n_v) - delivered)
    h_after = np.maximum(0.0, departure - np.maximum(arrival, slot_end[-1])) / 3600.0
    need = np.maximum(0.0, session_need - config.efficiency * limit * h_after)
    h_in = np.maximum(0.0, np.minimum(departure, slot_end[-1]) - np.maximum(arrival, slot_start[0])) / 3600.0
    reduced = limit * (1.0 - config.headroom)
    plan_limit = np.where(need <= config.efficiency * reduced * h_in, reduced, limit)
    elec: dict[str, np.ndarray] = {}
    if net is not None:
        chargers = [site.charger(r.charger_id) for r in reqs]  # type: ignore[arg-type]
        elec = {"group_v": np.fromiter((net.group_of[c.id] for c in chargers), np.int64, n_v),
                "kw_per_amp_v": np.fromiter((net.kw_per_amp[c.id] for c in chargers), float, n_v),
                "pilot_min_a": np.fromiter((c.min_a for c in chargers), float, n_v),
                "pilot_step_a": np.fromiter((c.step_a for c in chargers), float, n_v)}

    a = np.maximum(arrival, slot_start[0])
    d = np.minimum(departure, slot_end[-1])
    i0 = np.searchsorted(slot_end, a, side="right")
    i1 = np.searchsorted(slot_start, d, side="left") - 1
    count = np.where(d > a, i1 - i0 + 1, 0).clip(min=0)
    total = int(count.sum())
    pair_v = np.repeat(np.arange(n_v), count)
    offsets = np.repeat(np.cumsum(count) - count, count)
    pair_t = np.repeat(i0, count) + (np.arange(total) - offsets)
    pair_h = (np.minimum(slot_end[pair_t], d[pair_v]) - np.maximum(slot_start[pair_t], a[pair_v])) / 3600.0
    keep = pair_h > 1e-4  # drop sub-second slivers (numerically tiny coefficients)
    if not keep.all():
        pair_v, pair_t, pair_h = pair_v[keep], pair_t[keep], pair_h[keep]
    return SiteProblem(site=site, requests=reqs, signals=signals, config=config, slot_start_s=slot_start,
                       slot_end_s=slot_end, dt_h=(slot_end - slot_start) / 3600.0, price=price, carbon=carbon,
                       cap_kw=cap, dr_event=dr, in_scope=scope, pair_v=pair_v, pair_t=pair_t, pair_h=pair_h,
                       arrival_s=arrival, departure_s=departure, charger_kw=charger_kw, limit_kw=limit,
                       session_need_kwh=session_need, need_kwh=need, after_h=h_after, decisions=decisions,
                       peak_floor_kw=float(peak_floor_kw), plan_limit_kw=plan_limit, network=net,
                       **elec)  # type: ignore[arg-type]


@lru_cache(maxsize=512)
def _network(site: Site, max_deg: float) -> Network | None:
    return compile_network(site, max_deg)
