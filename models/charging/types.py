"""Validated, JSON-serialisable inputs of the charging scheduler (msgspec Structs).

Every Struct checks itself in ``__post_init__`` and raises ``ValueError`` naming
the field and the offending value (``msgspec.ValidationError``, a ``ValueError``
subclass, when decoding JSON). All datetimes must be timezone-aware.

>>> from datetime import datetime, timezone
>>> Charger("c1", 11.0, "AC").max_kw
11.0
>>> Charger("c1", -1.0)
Traceback (most recent call last):
...
ValueError: Charger.max_kw must be > 0, got -1.0
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from models.charging.errors import InfeasibleNetwork
from models.charging.network import PHASES, Node, check_tree
from models.charging.policy import HealthPolicy

__all__ = ["Charger", "Node", "Site", "SessionRequest", "Window", "DemandResponseEvent", "GridSignals", "PlanConfig"]


#: Plausible energy prices: the European day-ahead market's floor (-500 per MWh) to 10x its usual peaks.
PRICE_BOUNDS_PER_KWH = (-0.5, 5.0)
#: Longest grid-signal series (two billing months: offline month-long simulations and their horizon) and most
#: peak windows / demand-response events in one message.
MAX_SIGNAL_MINUTES = 62 * 1440
MAX_WINDOWS = 200
MAX_DEMAND_CHARGE_PER_KW = 1_000.0
#: Dirtiest grids emit ~1,000 g CO2/kWh (lignite); twice that is certainly a unit error.
MAX_CARBON_G_PER_KWH = 2_000.0
#: Largest plausible session energy or battery capacity: a heavy battery-electric truck carries ~1,000 kWh,
#: so twice that is a unit error (Wh for kWh), not a vehicle. Bounds energy_kwh, capacity_kwh, delivered_kwh.
MAX_SESSION_KWH = 2_000.0
#: Largest plausible charging power: a megawatt charger (MCS) delivers up to 3.75 MW.
MAX_CHARGE_KW = 4_000.0


def _positive(owner: str, name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{owner}.{name} must be > 0, got {value!r}")


def _non_negative(owner: str, name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{owner}.{name} must be >= 0, got {value!r}")


def _in_range(owner: str, name: str, value: float, lo: float, hi: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
        raise ValueError(f"{owner}.{name} must be in [{lo:g}, {hi:g}], got {value!r}")


def _aware(owner: str, name: str, value: datetime) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{owner}.{name} must be a timezone-aware datetime, got {value!r}")


def _non_empty(owner: str, name: str, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{owner}.{name} must be a non-empty string, got {value!r}")


class Charger(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One charge point: id, maximum power (kW), kind (AC or DC) and, on a site with an electrical tree,
    where it is wired and which pilot signals it accepts.

    ``panel``: the node it hangs on; ``phases``: ``AB``/``BC``/``CA`` (single-phase on a phase pair) or
    ``ABC`` (three-phase); ``voltage_v``: line-to-line volts (default: the nearest node above that gives
    one). Pilots: 0 or ``min_a``..``max_a`` amps, continuous when ``step_a`` is 0, else in ``step_a``
    steps from ``min_a`` (e.g. 6..32 A in 1 A steps). ``max_a`` None = ``max_kw`` / kW-per-amp.
    """

    id: str
    max_kw: float
    kind: Literal["AC", "DC"] = "AC"
    panel: str | None = None
    phases: str | None = None
    voltage_v: float | None = None
    min_a: float = 0.0
    max_a: float | None = None
    step_a: float = 0.0

    def __post_init__(self) -> None:
        _non_empty("Charger", "id", self.id)
        _positive("Charger", "max_kw", self.max_kw)
        if self.kind not in ("AC", "DC"):
            raise ValueError(f"Charger.kind must be 'AC' or 'DC', got {self.kind!r}")
        if self.phases is not None and self.phases not in PHASES:
            raise InfeasibleNetwork(f"Charger {self.id!r}.phases must be one of {PHASES}, got {self.phases!r}")
        if self.voltage_v is not None:
            _positive(f"Charger {self.id!r}", "voltage_v", self.voltage_v)
        _non_negative(f"Charger {self.id!r}", "min_a", self.min_a)
        _non_negative(f"Charger {self.id!r}", "step_a", self.step_a)
        if self.max_a is not None:
            _positive(f"Charger {self.id!r}", "max_a", self.max_a)
            if self.max_a < self.min_a:
                raise ValueError(f"Charger {self.id!r}.max_a {self.max_a!r} must be >= min_a {self.min_a!r}")


class Site(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A charging site: IANA time zone, site/feeder cap (kW), its chargers and, optionally, its electrical
    tree (``nodes``: transformers/panels/feeders with per-line limits, see ``network.py``).

    ``cap_kw`` alone is the simplest case (one aggregate limit); with ``nodes`` every charger names its
    ``panel`` and ``phases`` and the planner keeps every line of every node within its limit too.
    """

    id: str
    timezone: str
    cap_kw: float
    chargers: tuple[Charger, ...]
    nodes: tuple[Node, ...] = ()

    def __post_init__(self) -> None:
        _non_empty("Site", "id", self.id)
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError(f"Site.timezone must be an IANA time zone, got {self.timezone!r}") from None
        _non_negative("Site", "cap_kw", self.cap_kw)
        if not self.chargers:
            raise ValueError(f"Site.chargers must not be empty (site {self.id!r})")
        ids = [c.id for c in self.chargers]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"Site.chargers has duplicate ids {dup}")
        check_tree(self)

    @property
    def tz(self) -> ZoneInfo:
        """The site's time zone."""
        return ZoneInfo(self.timezone)

    def charger(self, charger_id: str) -> Charger:
        """The charger with this id (ValueError if the site has none)."""
        for c in self.chargers:
            if c.id == charger_id:
                return c
        raise ValueError(f"SessionRequest.charger_id {charger_id!r} is not a charger of site {self.id!r}")


class SessionRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A plugged-in (or announced) vehicle and what it needs by departure.

    Give either ``energy_kwh`` (battery-side energy still needed; optionally with
    ``soc_pct`` and ``capacity_kwh`` so the SoC ceiling and the departure SoC can
    be computed) or ``soc_pct`` + ``target_soc_pct`` + ``capacity_kwh``.
    ``max_kw`` is the vehicle's acceptance limit for the kind of charger it uses.
    ``delivered_kwh`` is battery-side energy already received in this session
    (e.g. when a planner is rebuilt); it is subtracted from the need.
    ``charger_id`` None means "any charger": the site's most powerful one bounds it.
    """

    vin: str
    site_id: str
    plug_in: datetime
    departure: datetime
    max_kw: float
    energy_kwh: float | None = None
    soc_pct: float | None = None
    target_soc_pct: float | None = None
    capacity_kwh: float | None = None
    battery_risk: float | None = None
    charger_id: str | None = None
    delivered_kwh: float = 0.0

    def __post_init__(self) -> None:
        o = "SessionRequest"
        _non_empty(o, "vin", self.vin)
        _non_empty(o, "site_id", self.site_id)
        _aware(o, "plug_in", self.plug_in)
        _aware(o, "departure", self.departure)
        if self.departure <= self.plug_in:
            raise ValueError(f"{o}.departure {self.departure.isoformat()} must be after plug_in "
                             f"{self.plug_in.isoformat()} (vin {self.vin})")
        _positive(o, "max_kw", self.max_kw)
        _in_range(o, "max_kw", self.max_kw, 0.0, MAX_CHARGE_KW)
        _non_negative(o, "delivered_kwh", self.delivered_kwh)
        _in_range(o, "delivered_kwh", self.delivered_kwh, 0.0, MAX_SESSION_KWH)
        if self.battery_risk is not None:
            _in_range(o, "battery_risk", self.battery_risk, 0.0, 1.0)
        if self.soc_pct is not None:
            _in_range(o, "soc_pct", self.soc_pct, 0.0, 100.0)
        if self.capacity_kwh is not None:
            _positive(o, "capacity_kwh", self.capacity_kwh)
            _in_range(o, "capacity_kwh", self.capacity_kwh, 0.0, MAX_SESSION_KWH)
        if self.target_soc_pct is not None:
            _in_range(o, "target_soc_pct", self.target_soc_pct, 0.0, 100.0)
            if self.energy_kwh is not None:
                raise ValueError(f"{o}: give energy_kwh or target_soc_pct, not both (vin {self.vin})")
            if self.soc_pct is None or self.capacity_kwh is None:
                raise ValueError(f"{o}.target_soc_pct needs soc_pct and capacity_kwh (vin {self.vin}, "
                                 f"soc_pct={self.soc_pct!r}, capacity_kwh={self.capacity_kwh!r})")
        else:
            if self.energy_kwh is None:
                raise ValueError(f"{o}.energy_kwh is required when target_soc_pct is not given (vin {self.vin})")
            _non_negative(o, "energy_kwh", self.energy_kwh)
            _in_range(o, "energy_kwh", self.energy_kwh, 0.0, MAX_SESSION_KWH)
            if (self.soc_pct is None) != (self.capacity_kwh is None):
                raise ValueError(f"{o}: soc_pct and capacity_kwh go together (vin {self.vin}, "
                                 f"soc_pct={self.soc_pct!r}, capacity_kwh={self.capacity_kwh!r})")

    @property
    def requested_kwh(self) -> float:
        """Battery-side energy requested for the whole session (before any health policy)."""
        if self.target_soc_pct is not None:
            assert self.soc_pct is not None and self.capacity_kwh is not None
            return max(0.0, (self.target_soc_pct - self.soc_pct) / 100.0 * self.capacity_kwh)
        assert self.energy_kwh is not None
        return self.energy_kwh


class Window(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A half-open time interval [start, end)."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _aware("Window", "start", self.start)
        _aware("Window", "end", self.end)
        if self.end <= self.start:
            raise ValueError(f"Window.end {self.end.isoformat()} must be after start {self.start.isoformat()}")


class DemandResponseEvent(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A demand-response event: the site cap is lowered to ``cap_kw`` during [start, end)."""

    id: str
    start: datetime
    end: datetime
    cap_kw: float

    def __post_init__(self) -> None:
        _non_empty("DemandResponseEvent", "id", self.id)
        _aware("DemandResponseEvent", "start", self.start)
        _aware("DemandResponseEvent", "end", self.end)
        if self.end <= self.start:
            raise ValueError(f"DemandResponseEvent.end {self.end.isoformat()} must be after start "
                             f"{self.start.isoformat()} (event {self.id})")
        _non_negative("DemandResponseEvent", "cap_kw", self.cap_kw)


class GridSignals(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Per-site grid signals on their own regular grid starting at ``start``.

    ``prices_per_kwh[i]`` ($/kWh) and ``carbon_g_per_kwh[i]`` hold for
    [start + i*slot_minutes, start + (i+1)*slot_minutes); planning slots take the
    value at their start; the first value holds before ``start`` and the last
    beyond the series' end (send a series covering the horizon).
    ``demand_charge_per_kw`` ($/kW) is charged once on the plan's peak: the peak
    inside ``peak_windows`` (scope "peak_windows"; no windows means no demand
    charge) or the peak over the whole horizon (scope "all"). It is applied per
    planning horizon as given: prorate a monthly charge yourself, or pass the
    billing-period-to-date peak as ``plan_site(..., peak_floor_kw=...)`` (the
    Planner does this) so only increases above it are charged.
    """

    site_id: str
    start: datetime
    prices_per_kwh: tuple[float, ...]
    slot_minutes: int = 15
    peak_windows: tuple[Window, ...] = ()
    demand_charge_per_kw: float = 0.0
    demand_charge_scope: Literal["peak_windows", "all"] = "peak_windows"
    carbon_g_per_kwh: tuple[float, ...] | None = None
    dr_events: tuple[DemandResponseEvent, ...] = ()

    def __post_init__(self) -> None:
        o = "GridSignals"
        _non_empty(o, "site_id", self.site_id)
        _aware(o, "start", self.start)
        if not isinstance(self.slot_minutes, int) or not 1 <= self.slot_minutes <= 1440 or 1440 % self.slot_minutes:
            raise ValueError(f"{o}.slot_minutes must be a divisor of 1440 (1 to 1440 minutes), "
                             f"got {self.slot_minutes!r}")
        if not self.prices_per_kwh:
            raise ValueError(f"{o}.prices_per_kwh must not be empty (site {self.site_id})")
        if len(self.prices_per_kwh) * self.slot_minutes > MAX_SIGNAL_MINUTES:
            raise ValueError(f"{o}.prices_per_kwh has {len(self.prices_per_kwh)} slots of {self.slot_minutes} min; "
                             f"at most {MAX_SIGNAL_MINUTES // 1440} days are accepted")
        lo, hi = PRICE_BOUNDS_PER_KWH
        bad = [(i, p) for i, p in enumerate(self.prices_per_kwh) if not (math.isfinite(p) and lo <= p <= hi)]
        if bad:
            raise ValueError(f"{o}.prices_per_kwh[{bad[0][0]}] must be in [{lo:g}, {hi:g}] per kWh, got {bad[0][1]!r}")
        _in_range(o, "demand_charge_per_kw", self.demand_charge_per_kw, 0.0, MAX_DEMAND_CHARGE_PER_KW)
        if len(self.peak_windows) > MAX_WINDOWS or len(self.dr_events) > MAX_WINDOWS:
            raise ValueError(f"{o}: at most {MAX_WINDOWS} peak_windows and dr_events each, got "
                             f"{len(self.peak_windows)} and {len(self.dr_events)}")
        if self.demand_charge_scope not in ("peak_windows", "all"):
            raise ValueError(f"{o}.demand_charge_scope must be 'peak_windows' or 'all', "
                             f"got {self.demand_charge_scope!r}")
        if self.carbon_g_per_kwh is not None:
            if len(self.carbon_g_per_kwh) != len(self.prices_per_kwh):
                raise ValueError(f"{o}.carbon_g_per_kwh has {len(self.carbon_g_per_kwh)} values, "
                                 f"prices_per_kwh has {len(self.prices_per_kwh)}")
            neg = [c for c in self.carbon_g_per_kwh if not (math.isfinite(c) and 0 <= c <= MAX_CARBON_G_PER_KWH)]
            if neg:
                raise ValueError(f"{o}.carbon_g_per_kwh must be in [0, {MAX_CARBON_G_PER_KWH:g}], got {neg[0]!r}")
        ids = [e.id for e in self.dr_events]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{o}.dr_events has duplicate ids {sorted(ids)}")


class PlanConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Planning knobs.

    - ``slot_minutes``/``n_slots``: horizon grid (default 15 min x 96 = 24 h);
      slots are aligned to multiples of ``slot_minutes`` since the Unix epoch
      (= local wall-clock quarter hours in every whole-quarter-hour time zone);
      a plan starting between boundaries gets a shorter first slot.
    - ``efficiency``: battery energy = grid energy x efficiency (AC on-board
      charger + battery losses; 0.92 default, 1.0 = energy metered at the EVSE).
    - ``unmet_penalty_per_kwh``: $/kWh for undelivered energy; None = automatic,
      100 x (max price + demand charge per kWh of a full-slot peak + carbon), at least $10/kWh,
      so meeting departures always dominates cost.
    - ``terminal_value_per_kwh``: $/kWh credited for energy a vehicle departing
      after the horizon could still get later; None = the horizon's max price.
    - ``carbon_price_per_kg``: optional $/kg CO2 on carbon intensity (tiny term).
    - ``rebound_peak_weight_per_kw``: small $/kW on the overall peak so cheap
      off-peak hours are filled flat instead of creating a rebound peak
      (grid-easing; trades at most a few cents per kW of peak for energy cost).
    - ``early_bias_per_kwh_h``: tiny $/kWh per hour of delay ("quick charge"):
      among (nearly) equal-cost options deliver earlier, which keeps a receding
      horizon robust to unknown future arrivals and early plug-outs. Kept well
      below the rebound weight so it does not front-load off-peak hours.
    - ``fine_slots``: the first slots the LP never merges into blocks (see
      ``lp.py``); the rest is solved per block of identical conditions.
    - ``threads``: HiGHS threads (1 = one core).
    - ``phase_facet_deg``: widest chord of the linear inner approximation of per-line current limits
      (``network.py``): at most 1 - cos(deg / 2) of a line's limit is given away (0.86 % at 15°).
    - ``headroom``: share of a vehicle's power limit the plan leaves unused when the vehicle can still get
      its energy without it, so a car that takes a little less than offered still finishes (0 = off).
    - ``fill_when_congested``: when the LP's first block (the slot executed before the next re-plan, with
      ``fine_slots`` >= 1) meets a tree row or the site cap, deliver all the plugged-in vehicles can take in
      it instead of postponing energy for price (``lp.py``, ``pilots.py``); False = the plain cost-optimal
      plan (e.g. an offline optimum with perfect foresight).
    """

    slot_minutes: int = 15
    n_slots: int = 96
    efficiency: float = 0.92
    unmet_penalty_per_kwh: float | None = None
    terminal_value_per_kwh: float | None = None
    carbon_price_per_kg: float = 0.0
    rebound_peak_weight_per_kw: float = 0.05
    early_bias_per_kwh_h: float = 1e-4
    fine_slots: int = 12
    threads: int = 1
    tol_kwh: float = 1e-3
    phase_facet_deg: float = 15.0
    headroom: float = 0.02
    fill_when_congested: bool = True
    health: HealthPolicy = HealthPolicy()

    def __post_init__(self) -> None:
        o = "PlanConfig"
        if not isinstance(self.slot_minutes, int) or self.slot_minutes <= 0 or 1440 % self.slot_minutes:
            raise ValueError(f"{o}.slot_minutes must be a positive divisor of 1440, got {self.slot_minutes!r}")
        if not isinstance(self.n_slots, int) or self.n_slots <= 0:
            raise ValueError(f"{o}.n_slots must be a positive integer, got {self.n_slots!r}")
        if not (isinstance(self.efficiency, (int, float)) and 0 < self.efficiency <= 1):
            raise ValueError(f"{o}.efficiency must be in (0, 1], got {self.efficiency!r}")
        if self.unmet_penalty_per_kwh is not None:
            _positive(o, "unmet_penalty_per_kwh", self.unmet_penalty_per_kwh)
        if self.terminal_value_per_kwh is not None and not math.isfinite(self.terminal_value_per_kwh):
            raise ValueError(f"{o}.terminal_value_per_kwh must be finite, got {self.terminal_value_per_kwh!r}")
        _non_negative(o, "carbon_price_per_kg", self.carbon_price_per_kg)
        _non_negative(o, "rebound_peak_weight_per_kw", self.rebound_peak_weight_per_kw)
        _non_negative(o, "early_bias_per_kwh_h", self.early_bias_per_kwh_h)
        _positive(o, "tol_kwh", self.tol_kwh)
        _in_range(o, "phase_facet_deg", self.phase_facet_deg, 1.0, 60.0)
        _in_range(o, "headroom", self.headroom, 0.0, 0.5)
        if not isinstance(self.fill_when_congested, bool):
            raise ValueError(f"{o}.fill_when_congested must be true or false, got {self.fill_when_congested!r}")
        if not isinstance(self.fine_slots, int) or self.fine_slots < 0:
            raise ValueError(f"{o}.fine_slots must be an integer >= 0, got {self.fine_slots!r}")
        if not isinstance(self.threads, int) or self.threads < 1:
            raise ValueError(f"{o}.threads must be a positive integer, got {self.threads!r}")
