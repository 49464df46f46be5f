"""Shared scenario builders and plan checks for the charging tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from models.charging import Charger, GridSignals, SessionRequest, Site, SitePlan, Window

TZ = ZoneInfo("America/Los_Angeles")
T0 = datetime(2026, 3, 3, 12, 0, tzinfo=TZ)  # a Tuesday, plan from noon local
EPS = 1e-6


def hours(h: float) -> datetime:
    """T0 + h hours."""
    return T0 + timedelta(hours=h)


def depot(cap_kw: float, n_ac: int = 4, n_dc: int = 0, ac_kw: float = 11.0, dc_kw: float = 50.0) -> Site:
    chargers = tuple(Charger(f"ac{i}", ac_kw, "AC") for i in range(n_ac)) + tuple(
        Charger(f"dc{i}", dc_kw, "DC") for i in range(n_dc))
    return Site("depot", "America/Los_Angeles", cap_kw, chargers)


def evening_tou(site_id: str = "depot", demand_charge: float = 15.0, flat: float | None = None,
                **kw: object) -> GridSignals:
    """Prices for 24 h from T0 (noon): $0.30 in the 16:00-21:00 evening peak, $0.12 otherwise."""
    prices = tuple(flat if flat is not None else (0.30 if 16 <= (12 + i / 4) % 24 < 21 else 0.12)
                   for i in range(96))
    return GridSignals(site_id, T0, prices, demand_charge_per_kw=demand_charge,
                       peak_windows=(Window(hours(4), hours(9)),), **kw)  # type: ignore[arg-type]


def request(vin: str, arrive_h: float, depart_h: float, max_kw: float = 11.0, charger: str | None = None,
            **kw: object) -> SessionRequest:
    if "energy_kwh" not in kw and "target_soc_pct" not in kw:
        kw["energy_kwh"] = 20.0
    return SessionRequest(vin, "depot", hours(arrive_h), hours(depart_h), max_kw, charger_id=charger,
                          **kw)  # type: ignore[arg-type]


def slot_index(plan: SitePlan) -> dict[datetime, int]:
    return {s: i for i, s in enumerate(plan.slot_starts())}


def per_slot_matrix(plan: SitePlan) -> np.ndarray:
    """Vehicles x slots power matrix rebuilt from the per-vehicle schedules."""
    idx = slot_index(plan)
    m = np.zeros((len(plan.vehicles), len(plan.site_load_kw)))
    for v, sched in enumerate(plan.vehicles):
        for start, kw in sched.slots():
            m[v, idx[start]] = kw
    return m


def assert_caps(plan: SitePlan, site: Site, requests: list[SessionRequest], *, site_cap: bool = True) -> None:
    """Every vehicle within min(charger, vehicle, health) limit, every slot within the (DR-lowered) site cap,
    and the site load equals the sum of the vehicle schedules."""
    by_vin = {r.vin: r for r in requests}
    kw = {c.id: c.max_kw for c in site.chargers}
    for sched in plan.vehicles:
        req = by_vin[sched.vin]
        charger_kw = kw[req.charger_id] if req.charger_id else max(kw.values())
        assert sched.power_limit_kw <= min(charger_kw, req.max_kw) + EPS
        assert max(sched.kw, default=0.0) <= sched.power_limit_kw + EPS, sched.vin
        assert min(sched.kw, default=0.0) >= 0.0
        for start, p in sched.slots():  # no power outside the plugged-in window
            if p > EPS:
                assert req.plug_in - timedelta(minutes=sched.slot_minutes) < start < req.departure
    load = per_slot_matrix(plan).sum(axis=0)
    np.testing.assert_allclose(load, plan.site_load_kw, atol=1e-6)
    if site_cap:
        assert np.all(load <= np.asarray(plan.cap_kw) + EPS), float(np.max(load - np.asarray(plan.cap_kw)))
