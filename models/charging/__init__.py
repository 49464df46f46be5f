"""Fleet charging schedules: meet every departure, ease the grid at peak hours (pure, no I/O).

Inputs are validated msgspec Structs (``types.py``), outputs are JSON-serialisable
``SitePlan`` Structs (``results.py``). One LP per site solved with HiGHS
(``lp.py``), heuristics with the same interface (``heuristics.py``), a
receding-horizon ``Planner`` (``planner.py``), the battery-health policy
(``policy.py``), TOU tariffs (``tariff.py``), the real Caltech ACN sessions
(``acn.py``), the site's electrical tree with per-line limits (``network.py``), EVSE pilot
rounding (``pilots.py``) and the proposed stream message contract (``messages.py``). Energies are battery-side kWh unless called grid/energy_kwh in
metrics; powers are grid-side kW at the charger.

>>> from datetime import datetime, timedelta
>>> from zoneinfo import ZoneInfo
>>> from models.charging import (Charger, GridSignals, PlanConfig, SessionRequest, Site, Window,
...                              plan_heuristic, plan_site)
>>> tz = ZoneInfo("America/Los_Angeles")
>>> t0 = datetime(2026, 3, 3, 12, tzinfo=tz)                                   # plan from noon
>>> site = Site("depot-1", "America/Los_Angeles", 30.0, (Charger("c1", 11.0), Charger("c2", 11.0),
...                                                        Charger("c3", 11.0)))
>>> evening = [SessionRequest(f"V{i}", "depot-1", t0 + timedelta(hours=5), t0 + timedelta(hours=19), 11.0,
...                           soc_pct=20.0, target_soc_pct=80.0, capacity_kwh=60.0, charger_id=f"c{i}")
...            for i in (1, 2, 3)]
>>> prices = tuple(0.30 if 16 <= (12 + i / 4) % 24 < 21 else 0.12 for i in range(96))  # 16:00-21:00 peak
>>> grid = GridSignals("depot-1", t0, prices, demand_charge_per_kw=15.0,
...                    peak_windows=(Window(t0 + timedelta(hours=4), t0 + timedelta(hours=9)),))
>>> plan = plan_site(site, evening, grid, t0)
>>> round(plan.metrics.peak_in_scope_kw, 1), round(plan.metrics.unmet_kwh, 3)      # nothing in the peak
(0.0, 0.0)
>>> dumb = plan_heuristic("uncontrolled", site, evening, grid, t0)
>>> round(dumb.metrics.peak_in_scope_kw, 1)                                       # 3 x 11 kW at 17:00
33.0
>>> v = plan.vehicle("V1")                        # 36 kWh / 0.92 spread flat over 21:00-07:00
>>> round(v.expected_soc_pct), [(s.strftime("%H:%M"), round(kw, 2)) for s, kw in v.slots()[15:17]]
(80, [('20:45', 0.0), ('21:00', 3.91)])
"""

from models.charging.acn import AcnSession, acn_requests, acn_site, caltech_site, load_acn_sessions
from models.charging.errors import ChargingError, InfeasibleNetwork, UnknownSession
from models.charging.fleet import FleetPlan, plan_fleet
from models.charging.heuristics import METHODS, plan_heuristic
from models.charging.lp import LpSolver, plan_site
from models.charging.network import Node
from models.charging.messages import (ChargingMessage, DemandResponse, GridUpdate, PlugIn, PlugOut, Tick, apply,
                                      decode_message)
from models.charging.planner import Planner, PlannerState
from models.charging.policy import HealthDecision, HealthPolicy, apply_health_policy
from models.charging.results import REASON_CODES, PlanMetrics, SitePlan, VehicleSchedule
from models.charging.tariff import Tariff, load_tariff, tariff_signals
from models.charging.types import (Charger, DemandResponseEvent, GridSignals, PlanConfig, SessionRequest, Site,
                                   Window)

__all__ = [
    "AcnSession", "ChargingMessage", "DemandResponse", "GridUpdate", "PlugIn", "PlugOut", "Tick", "apply",
    "decode_message", "Charger", "DemandResponseEvent", "FleetPlan", "GridSignals", "HealthDecision", "HealthPolicy",
    "LpSolver", "METHODS", "PlanConfig", "PlanMetrics", "Planner", "PlannerState", "REASON_CODES",
    "SessionRequest", "Site", "SitePlan", "Tariff", "VehicleSchedule", "Window", "acn_requests", "acn_site",
    "apply_health_policy", "caltech_site", "ChargingError", "InfeasibleNetwork", "Node", "UnknownSession",
    "load_acn_sessions", "load_tariff", "plan_fleet", "plan_heuristic", "plan_site",
    "tariff_signals",
]
