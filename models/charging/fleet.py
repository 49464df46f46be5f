"""Fleet-wide planning by site decomposition: sites share no constraint, so each is its own small LP.

One HiGHS instance (``threads=1`` by default) is reused for all sites; every
site's model is built vectorised and passed in one call. To use more cores,
split ``sites`` over processes — the results are independent.

>>> from datetime import datetime, timedelta, timezone
>>> from models.charging.types import Charger, GridSignals, SessionRequest, Site
>>> t0 = datetime(2026, 3, 2, tzinfo=timezone.utc)
>>> sites = [Site(f"s{i}", "UTC", 20.0, (Charger("c", 11.0),)) for i in range(2)]
>>> reqs = [SessionRequest(f"V{i}", f"s{i}", t0, t0 + timedelta(hours=3), 11.0, energy_kwh=10.0, charger_id="c")
...         for i in range(2)]
>>> fp = plan_fleet(sites, reqs, [GridSignals(s.id, t0, (0.1,) * 96) for s in sites], t0)
>>> [p.site_id for p in fp.plans], round(fp.unmet_kwh, 3)
(['s0', 's1'], 0.0)
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime

import msgspec

from models.charging.heuristics import METHODS, plan_heuristic
from models.charging.lp import LpSolver, plan_site
from models.charging.results import SitePlan
from models.charging.types import GridSignals, PlanConfig, SessionRequest, Site

__all__ = ["FleetPlan", "plan_fleet", "group_by_site"]


class FleetPlan(msgspec.Struct, frozen=True):
    """Plans of all sites plus the wall time of the whole call (one core)."""

    plans: list[SitePlan]
    wall_time_s: float

    @property
    def unmet_kwh(self) -> float:
        return sum(p.metrics.unmet_kwh for p in self.plans)

    @property
    def n_vehicles(self) -> int:
        return sum(len(p.vehicles) for p in self.plans)


def group_by_site(sites: Sequence[Site], requests: Sequence[SessionRequest]) -> dict[str, list[SessionRequest]]:
    """Requests per site id (ValueError for a request naming an unknown site)."""
    groups: dict[str, list[SessionRequest]] = {s.id: [] for s in sites}
    if len(groups) != len(sites):
        raise ValueError("sites has duplicate ids")
    for r in requests:
        bucket = groups.get(r.site_id)
        if bucket is None:
            raise ValueError(f"SessionRequest.site_id {r.site_id!r} is not one of the sites (vin {r.vin})")
        bucket.append(r)
    return groups


def plan_fleet(sites: Sequence[Site], requests: Sequence[SessionRequest],
               signals: Mapping[str, GridSignals] | Sequence[GridSignals], start: datetime,
               config: PlanConfig = PlanConfig(), *, method: str = "lp",
               peak_floor_kw: Mapping[str, float] | None = None) -> FleetPlan:
    """Plan every site from ``start`` with ``method`` ("lp", "uncontrolled", "edf" or "llf")."""
    if method != "lp" and method not in METHODS:
        raise ValueError(f"method must be 'lp' or one of {METHODS}, got {method!r}")
    t0 = time.perf_counter()
    sig = signals if isinstance(signals, Mapping) else {g.site_id: g for g in signals}
    groups = group_by_site(sites, requests)
    floors = peak_floor_kw or {}
    solver = LpSolver(config.threads) if method == "lp" else None
    plans = []
    for site in sites:
        if site.id not in sig:
            raise ValueError(f"signals has no GridSignals for site {site.id!r}")
        floor = floors.get(site.id, 0.0)
        if method == "lp":
            plans.append(plan_site(site, groups[site.id], sig[site.id], start, config, peak_floor_kw=floor,
                                   solver=solver))
        else:
            plans.append(plan_heuristic(method, site, groups[site.id], sig[site.id], start, config,
                                        peak_floor_kw=floor))
    return FleetPlan(plans, time.perf_counter() - t0)
