"""Receding-horizon planner for one site (pure: every call is given ``now``).

It holds the plugged-in sessions, the grid signals and the current plan. On each
trigger (plug-in, plug-out, new grid signals, demand-response event, elapsed
time) it first *advances* to ``now`` — the energy the previous plan delivered
between the last call and ``now`` is added to each session's
``delivered_kwh`` and the realised in-scope peak is remembered — and then
re-plans from ``now`` (the first slot runs from ``now`` to the next slot
boundary). The realised peak is the demand-charge floor of later plans, so only
increases above it cost money. Meter readings replace the integrated energy
(``record_delivery``); a vehicle that took clearly less than the plan offered
(> 0.2 % short) gets its ``max_kw`` lowered to the rate it actually took
(offered peak x taken / offered energy since the previous reading), and later
plans use it. ``update`` applies all events of one period (plug-ins,
plug-outs, readings, signals, DR events) and re-plans once. At a site with an
electrical tree a request without ``charger_id`` is given the first free charger.

>>> from datetime import datetime, timedelta, timezone
>>> from models.charging.types import Charger, GridSignals, SessionRequest, Site
>>> t0 = datetime(2026, 3, 2, 12, tzinfo=timezone.utc)
>>> site = Site("s1", "UTC", 10.0, (Charger("c1", 11.0), Charger("c2", 11.0)))
>>> pl = Planner(site, GridSignals("s1", t0, (0.2,) * 96))
>>> plan = pl.plug_in(SessionRequest("V1", "s1", t0, t0 + timedelta(hours=4), 11.0, energy_kwh=9.2,
...                                   charger_id="c1"), now=t0)
>>> round(pl.plug_in(SessionRequest("V2", "s1", t0, t0 + timedelta(hours=2), 11.0, energy_kwh=9.2,
...                                  charger_id="c2"), now=t0 + timedelta(minutes=30)).metrics.unmet_kwh, 3)
0.0
>>> round(pl.delivered_kwh("V1"), 2)  # flat price: 10 kWh spread flat over 4 h = 2.5 kW x 0.5 h x 0.92
1.15
"""

from __future__ import annotations

import logging
import time
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import msgspec
import numpy as np

from models.charging.errors import UnknownSession
from models.charging.heuristics import METHODS, heuristic_power
from models.charging.lp import LpSolver
from models.charging.outcome import assemble, site_load
from models.charging.pilots import round_pilots
from models.charging.problem import SiteProblem, build_problem
from models.charging.results import SitePlan
from models.charging.types import (MAX_SESSION_KWH, DemandResponseEvent, GridSignals, PlanConfig, SessionRequest,
                                   Site)

__all__ = ["Planner", "PlannerState"]

_UNDER_DRAW = 2e-3  # a reading this much (relative) below the planned energy means the car took less



log = logging.getLogger(__name__)

class PlannerState(msgspec.Struct):
    """Everything a ``Planner`` needs to resume (store it in a table/changelog)."""

    site: Site
    signals: GridSignals
    config: PlanConfig
    sessions: list[SessionRequest]
    clock: datetime | None
    realized_peak_kw: float
    method: str = "lp"
    replan_every_min: int = 15
    last_plan_at: datetime | None = None


class Planner:
    """Holds one site's state and re-plans on events; see module docstring."""

    def __init__(self, site: Site, signals: GridSignals, config: PlanConfig = PlanConfig(), *,
                 method: str = "lp", replan_every_min: int | None = None, solver: LpSolver | None = None) -> None:
        if method != "lp" and method not in METHODS:
            raise ValueError(f"method must be 'lp' or one of {METHODS}, got {method!r}")
        if signals.site_id != site.id:
            raise ValueError(f"GridSignals.site_id {signals.site_id!r} does not match site {site.id!r}")
        self.site, self.signals, self.config, self.method = site, signals, config, method
        self.replan_every = timedelta(minutes=replan_every_min or config.slot_minutes)
        self._solver = solver if solver is not None else (LpSolver(config.threads) if method == "lp" else None)
        self._sessions: dict[str, SessionRequest] = {}
        self._closed: list[SessionRequest] = []
        self._clock: datetime | None = None
        self._last_plan_at: datetime | None = None
        self.realized_peak_kw = 0.0
        self.plan: SitePlan | None = None
        self._problem: SiteProblem | None = None
        self._power: np.ndarray | None = None
        self._offered: dict[str, tuple[float, float]] = {}  # vin -> (planned kWh, top kW) since last reading

    # ----------------------------------------------------------------- state
    @property
    def sessions(self) -> tuple[SessionRequest, ...]:
        """Current sessions (``delivered_kwh`` up to the last call)."""
        return tuple(self._sessions.values())

    def delivered_kwh(self, vin: str) -> float:
        """Battery-side energy delivered to ``vin`` in its session so far."""
        if vin not in self._sessions:
            raise UnknownSession(vin, self.site.id, "Planner.delivered_kwh")
        return self._sessions[vin].delivered_kwh

    def pop_closed(self) -> list[SessionRequest]:
        """Sessions that ended (plug-out or departure time passed) since the last call, with final
        ``delivered_kwh``; e.g. to publish session summaries."""
        out, self._closed = self._closed, []
        return out

    def state(self) -> PlannerState:
        """A serialisable snapshot (the plan itself is recomputed on the next trigger)."""
        return PlannerState(self.site, self.signals, self.config, list(self._sessions.values()), self._clock,
                            self.realized_peak_kw, self.method, int(self.replan_every.total_seconds() // 60),
                            self._last_plan_at)

    @classmethod
    def from_state(cls, state: PlannerState, solver: LpSolver | None = None) -> Planner:
        """Rebuild a planner from ``state()``."""
        p = cls(state.site, state.signals, state.config, method=state.method,
                replan_every_min=state.replan_every_min, solver=solver)
        p._sessions = {s.vin: s for s in state.sessions}
        p._clock, p.realized_peak_kw, p._last_plan_at = state.clock, state.realized_peak_kw, state.last_plan_at
        return p

    def checkpoint(self) -> dict[str, object]:
        """The planner's in-memory state (plan included) for ``rollback``, e.g. to undo a refused batch."""
        return {k: (v.copy() if isinstance(v, (dict, list)) else v) for k, v in vars(self).items()}

    def rollback(self, checkpoint: dict[str, object]) -> None:
        """Return to a ``checkpoint()``."""
        vars(self).clear()
        vars(self).update({k: (v.copy() if isinstance(v, (dict, list)) else v) for k, v in checkpoint.items()})

    def reset_billing_peak(self) -> None:
        """Start a new demand-charge billing period (forget the realised peak)."""
        self.realized_peak_kw = 0.0

    # ---------------------------------------------------------------- events
    def plug_in(self, request: SessionRequest, now: datetime) -> SitePlan:
        """A vehicle plugged in (or announced a session): add it and re-plan."""
        return self.update(now, plug_ins=(request,))

    def plug_out(self, vin: str, now: datetime) -> SitePlan:
        """A vehicle left: drop it and re-plan (unknown vins are ignored)."""
        return self.update(now, plug_outs=(vin,))

    def update_signals(self, signals: GridSignals, now: datetime) -> SitePlan:
        """New prices / peak windows / DR events for this site: re-plan."""
        return self.update(now, signals=signals)

    def demand_response(self, event: DemandResponseEvent, now: datetime) -> SitePlan:
        """Add (or replace, by id) a demand-response event and re-plan."""
        return self.update(now, dr_events=(event,))

    def update(self, now: datetime, *, plug_ins: Sequence[SessionRequest] = (), plug_outs: Sequence[str] = (),
               deliveries: Mapping[str, float] | None = None, signals: GridSignals | None = None,
               dr_events: Sequence[DemandResponseEvent] = ()) -> SitePlan:
        """Apply every event of one period (plug-ins, plug-outs, meter readings, new signals, DR events)
        and re-plan once. Checks all inputs before changing anything."""
        for r in plug_ins:
            if r.site_id != self.site.id:
                raise ValueError(f"SessionRequest.site_id {r.site_id!r} does not match site {self.site.id!r}")
        if signals is not None and signals.site_id != self.site.id:
            raise ValueError(f"GridSignals.site_id {signals.site_id!r} does not match site {self.site.id!r}")
        readings = dict(deliveries or {})
        new_vins = {r.vin for r in plug_ins}
        for vin, kwh in readings.items():
            if vin not in self._sessions and vin not in new_vins:
                raise UnknownSession(vin, self.site.id, "Planner.update(deliveries=...)")
            _check_delivery(vin, kwh)
        self.advance(now)
        for vin in plug_outs:
            gone = self._sessions.pop(vin, None)
            self._offered.pop(vin, None)
            if gone is not None:
                self._closed.append(gone)
        for r in plug_ins:
            self._add(r)
        for vin, kwh in readings.items():
            self._reading(vin, float(kwh))
        if signals is not None:
            self.signals = signals
        if dr_events:
            ids = {e.id for e in dr_events}
            kept = tuple(e for e in self.signals.dr_events if e.id not in ids)
            self.signals = msgspec.structs.replace(self.signals, dr_events=kept + tuple(dr_events))
        parts = ([f"plug_in:{r.vin}" for r in plug_ins] + [f"plug_out:{v}" for v in plug_outs]
                 + [f"delivery:{v}" for v in readings] + (["grid"] if signals is not None else [])
                 + [f"dr_event:{e.id}" for e in dr_events])
        trigger = parts[0] if len(parts) == 1 else (f"batch:{len(parts)}" if parts else "tick")
        return self.replan(now, trigger)

    def tick(self, now: datetime) -> SitePlan | None:
        """Elapsed time: re-plan if ``replan_every`` has passed since the last plan, else None."""
        self._check_clock(now)
        if (self._last_plan_at is not None
                and now.timestamp() - self._last_plan_at.timestamp() < self.replan_every.total_seconds()):
            return None
        self.advance(now)
        return self.replan(now, "tick")

    def record_delivery(self, vin: str, delivered_kwh: float, now: datetime) -> None:
        """Replace the integrated energy of ``vin`` by a meter reading (battery-side kWh) taken at ``now``;
        a vehicle that took less than the plan offered gets its ``max_kw`` lowered to what it took."""
        if vin not in self._sessions:
            raise UnknownSession(vin, self.site.id, "Planner.record_delivery")
        _check_delivery(vin, delivered_kwh)
        self.advance(now)
        self._reading(vin, float(delivered_kwh))

    def _add(self, request: SessionRequest) -> None:
        old = self._sessions.get(request.vin)
        if request.charger_id is None and self.site.nodes:  # a wired site must know the phases: pick a charger
            if old is not None and old.plug_in == request.plug_in and old.charger_id is not None:
                free = old.charger_id
            else:
                busy = {r.charger_id for r in self._sessions.values() if r.vin != request.vin}
                free = next((c.id for c in self.site.chargers if c.id not in busy), None)
            if free is None:
                raise ValueError(f"SessionRequest.charger_id: no free charger at site {self.site.id!r} "
                                 f"(vin {request.vin})")
            request = msgspec.structs.replace(request, charger_id=free)
        if old is not None and old.plug_in == request.plug_in:
            if request.delivered_kwh == 0.0:  # an update of the same session: keep its energy
                request = msgspec.structs.replace(request, delivered_kwh=old.delivered_kwh)
        elif old is not None:  # a new session of the same vehicle: the old one is over
            self._closed.append(old)
            self._offered.pop(request.vin, None)
        self._sessions[request.vin] = request

    def _reading(self, vin: str, measured: float) -> None:
        """Meter reading: learn the acceptance rate when the vehicle took clearly less than offered."""
        cur = self._sessions[vin]
        planned, top_kw = self._offered.pop(vin, (0.0, 0.0))
        took = measured - (cur.delivered_kwh - planned)  # energy since the previous reading
        if planned > 1e-3 and took < planned * (1.0 - _UNDER_DRAW) and top_kw > 0:
            learned = max(1e-3, top_kw * max(0.0, took) / planned)
            if learned < cur.max_kw:
                cur = msgspec.structs.replace(cur, max_kw=learned)
        self._sessions[vin] = msgspec.structs.replace(cur, delivered_kwh=measured)

    # ------------------------------------------------------------- mechanics
    def _check_clock(self, now: datetime) -> None:
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(f"now must be a timezone-aware datetime, got {now!r}")
        if self._clock is not None and now < self._clock:
            # Clocks disagree (a message stamped ahead of this worker, a worker whose clock went back): take
            # ``now`` as the new clock; no energy is credited for the interval that never happened.
            log.warning("site %s: %s is before the planner clock %s; re-anchoring the clock", self.site.id,
                        now.isoformat(), self._clock.isoformat())

    def advance(self, now: datetime) -> None:
        """Credit the energy the current plan delivered between the last call and ``now``."""
        self._check_clock(now)
        prob, power = self._problem, self._power
        if self._clock is not None and prob is not None and power is not None and len(power):
            lo, hi = self._clock.timestamp(), now.timestamp()
            a = np.maximum(np.maximum(prob.slot_start_s[prob.pair_t], prob.arrival_s[prob.pair_v]), lo)
            b = np.minimum(np.minimum(prob.slot_end_s[prob.pair_t], prob.departure_s[prob.pair_v]), hi)
            hours = np.maximum(0.0, b - a) / 3600.0
            energy = np.bincount(prob.pair_v, weights=prob.config.efficiency * power * hours,
                                 minlength=prob.n_vehicles)
            top = np.zeros(prob.n_vehicles)
            np.maximum.at(top, prob.pair_v, np.where(hours > 0, power, 0.0))
            for v in np.flatnonzero(energy > 0):
                req = prob.requests[v]
                cur = self._sessions.get(req.vin)
                if cur is not None and cur.plug_in == req.plug_in:
                    self._sessions[req.vin] = msgspec.structs.replace(
                        cur, delivered_kwh=cur.delivered_kwh + float(energy[v]))
                    e0, k0 = self._offered.get(req.vin, (0.0, 0.0))
                    self._offered[req.vin] = (e0 + float(energy[v]), max(k0, float(top[v])))
            touched = (prob.slot_start_s < hi) & (prob.slot_end_s > lo) & prob.in_scope
            if touched.any():
                load = site_load(prob, power)
                self.realized_peak_kw = max(self.realized_peak_kw, float(load[touched].max()))
        self._clock = now

    def replan(self, now: datetime, trigger: str = "manual") -> SitePlan:
        """Re-plan from ``now`` (call ``advance(now)`` first; the event methods do)."""
        if self._clock is None or now != self._clock:
            self.advance(now)
        start_s = now.timestamp()
        for vin in [v for v, r in self._sessions.items() if r.departure.timestamp() <= start_s]:
            self._closed.append(self._sessions.pop(vin))
        t0 = time.perf_counter()
        prob = build_problem(self.site, list(self._sessions.values()), self.signals, now, self.config,
                             self.realized_peak_kw)
        if self.method == "lp":
            assert self._solver is not None
            power, status = self._solver.solve(prob)
        else:
            power, status = heuristic_power(prob, self.method), "heuristic"
        power, amps = round_pilots(prob, np.clip(power, 0.0, prob.limit_kw[prob.pair_v]))
        plan = assemble(prob, power, method=self.method, solve_time_s=time.perf_counter() - t0, status=status,
                        trigger=trigger, amps=amps)
        self._problem, self._power, self.plan, self._last_plan_at = prob, power, plan, now
        return plan


def _check_delivery(vin: str, kwh: float) -> None:
    """A meter reading must be a plausible session energy (``MAX_SESSION_KWH``); ValueError names it."""
    if not (isinstance(kwh, (int, float)) and math.isfinite(kwh) and 0 <= kwh <= MAX_SESSION_KWH):
        raise ValueError(f"delivered_kwh of {vin!r} must be a finite number in [0, {MAX_SESSION_KWH:g}], "
                         f"got {kwh!r}")
