"""Synthetic but plausible depot/home fleet sessions for scale tests (deterministic per seed).

Each site has one charger per vehicle (50 % AC 7.4 kW, 25 % AC 11 kW, 10 % AC
22 kW, 15 % DC 50 kW), a feeder cap of ``cap_share`` x the chargers' total, the
real SCE TOU-EV-8 tariff (evening peak 16:00-21:00) with a $``demand_charge``/kW
charge on the evening peak, and every tenth site a 2-hour demand-response
event at 18:00 halving the cap. 75 % of vehicles arrive in the evening
(~18:00 +- 1.5 h local) and leave the next morning (06:00-09:00), SoC 10-60 %
to 80-100 %; 25 % are daytime top-ups of 2-6 h from 40-70 % to 80 %. Capacity
40-100 kWh; 70 % of requests are SoC-based, the rest energy-only; ~10 % have a
battery risk >= 0.5. ``tree=True`` wires every site (see ``_wired``).

>>> sites, reqs, sigs, start = synthetic_fleet(2, 10, seed=1)
>>> len(sites), len(reqs), len(sigs), start.isoformat()
(2, 20, 2, '2026-03-03T20:00:00+00:00')
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec
import numpy as np

from models.charging.tariff import load_tariff, tariff_signals
from models.charging.network import Node
from models.charging.types import Charger, DemandResponseEvent, GridSignals, SessionRequest, Site

__all__ = ["synthetic_fleet"]

_VOLTS = 208.0


def _wired(sid: str, tz: str, cap: float, chargers: tuple[Charger, ...]) -> Site:
    """The site with an electrical tree: a 208 V transformer rated at 1.2 x the feeder cap (kVA) feeding two
    panels with half their chargers each; 7.4 kW chargers on phase pairs in turn (0 or >= 6 A), the others
    three-phase; each panel's lines limited to 60 % of the current its chargers could draw per line."""
    wired, load = [], {"p0": np.zeros(3), "p1": np.zeros(3)}
    for i, c in enumerate(chargers):
        panel = f"p{i % 2}"
        phases = ("AB", "BC", "CA")[(i // 2) % 3] if c.max_kw < 8 else "ABC"
        kwpa = (_VOLTS if phases != "ABC" else 3 ** 0.5 * _VOLTS) / 1000
        amps = c.max_kw / kwpa
        lines = [("ABC".index(p)) for p in phases]
        load[panel][lines] += amps
        wired.append(msgspec.structs.replace(c, panel=panel, phases=phases, voltage_v=_VOLTS, max_a=amps,
                                             min_a=6.0 if c.kind == "AC" else 0.0))
    nodes = (Node("tx", "transformer", kva=round(1.2 * cap, 1), voltage_v=_VOLTS),
             *(Node(p, "panel", parent="tx", limit_a=round(0.6 * float(a.max()), 1)) for p, a in load.items()))
    return Site(sid, tz, cap, tuple(wired), nodes)

_ZONES = ("America/Los_Angeles", "America/Denver", "America/Chicago", "America/New_York")
_KINDS = ((7.4, "AC", 0.50), (11.0, "AC", 0.25), (22.0, "AC", 0.10), (50.0, "DC", 0.15))


def synthetic_fleet(n_sites: int = 100, vehicles_per_site: int = 100, *, seed: int = 7,
                    start: datetime = datetime(2026, 3, 3, 20, tzinfo=timezone.utc), cap_share: float = 0.35,
                    demand_charge: float = 10.0, slot_minutes: int = 15, tree: bool = False,
                    ) -> tuple[list[Site], list[SessionRequest], list[GridSignals], datetime]:
    """(sites, requests, signals, horizon start) for ``n_sites`` x ``vehicles_per_site`` sessions."""
    rng = np.random.default_rng(seed)
    tariff = load_tariff("sce_tou_ev_8_june_2019")
    end = start + timedelta(hours=24)
    kinds = np.array([k for k in range(len(_KINDS))])
    probs = np.array([k[2] for k in _KINDS])
    sites, requests, signals = [], [], []
    for s in range(n_sites):
        tz = _ZONES[s % len(_ZONES)]
        sid = f"site-{s:03d}"
        kind = rng.choice(kinds, size=vehicles_per_site, p=probs)
        chargers = tuple(Charger(f"{sid}-c{i:03d}", _KINDS[k][0], _KINDS[k][1])  # type: ignore[arg-type]
                         for i, k in enumerate(kind))
        cap = round(cap_share * sum(c.max_kw for c in chargers), 1)
        site = _wired(sid, tz, cap, chargers) if tree else Site(sid, tz, cap, chargers)
        local_day = start.astimezone(site.tz).date()
        evening = datetime.combine(local_day, datetime.min.time(), site.tz).astimezone(timezone.utc)
        evening = evening + timedelta(hours=18)
        sig = tariff_signals(sid, tariff, tz, local_day, days=2, slot_minutes=slot_minutes,
                             demand_charge_per_kw=demand_charge)
        if s % 10 == 0:
            sig = msgspec.structs.replace(sig, dr_events=(DemandResponseEvent(
                f"{sid}-dr", evening, evening + timedelta(hours=2), round(cap / 2, 1)),))
        sites.append(site)
        signals.append(sig)

        day = rng.random(vehicles_per_site) < 0.25
        arr_h = np.where(day, rng.uniform(-4.0, 2.0, vehicles_per_site), rng.normal(0.0, 1.5, vehicles_per_site))
        dwell_h = np.where(day, rng.uniform(2.0, 6.0, vehicles_per_site), 0.0)
        dep_h = np.where(day, arr_h + dwell_h, rng.uniform(12.0, 15.0, vehicles_per_site))
        cap_kwh = rng.uniform(40.0, 100.0, vehicles_per_site).round(1)
        soc = np.where(day, rng.uniform(40.0, 70.0, vehicles_per_site),
                       rng.uniform(10.0, 60.0, vehicles_per_site)).round(1)
        target = np.where(day, 80.0, rng.uniform(80.0, 100.0, vehicles_per_site)).round(0)
        risk = rng.beta(1.2, 6.0, vehicles_per_site).round(3)
        soc_based = rng.random(vehicles_per_site) < 0.7
        for i in range(vehicles_per_site):
            a = max(start, evening + timedelta(hours=float(arr_h[i])))
            d = min(end, evening + timedelta(hours=float(dep_h[i])))
            if d <= a + timedelta(minutes=30):
                d = a + timedelta(minutes=30)
            k = _KINDS[int(kind[i])]
            vmax = k[0] if k[1] == "AC" else float(rng.choice([50.0, 100.0, 150.0]))
            common = dict(vin=f"{sid}-V{i:03d}", site_id=sid, plug_in=a, departure=d, max_kw=vmax,
                          battery_risk=float(risk[i]), charger_id=chargers[i].id)
            if soc_based[i]:
                requests.append(SessionRequest(**common, soc_pct=float(soc[i]), target_soc_pct=float(target[i]),
                                               capacity_kwh=float(cap_kwh[i])))
            else:
                energy = float(((target[i] - soc[i]) / 100 * cap_kwh[i]).round(1))
                requests.append(SessionRequest(**common, energy_kwh=energy))
    return sites, requests, signals, start
