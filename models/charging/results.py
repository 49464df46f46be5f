"""Plain, JSON-serialisable plan outputs (msgspec Structs), identical for the LP and the heuristics.

``msgspec.json.encode(plan)`` gives the message for a schedules topic;
``msgspec.json.decode(raw, type=SitePlan)`` reads it back.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec

__all__ = ["VehicleSchedule", "PlanMetrics", "SitePlan", "REASON_CODES", "aligned_starts"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def aligned_starts(first: datetime, n: int, slot_minutes: int) -> list[datetime]:
    """``first``, then the next n-1 epoch-aligned slot boundaries (absolute time, DST-safe)."""
    step = timedelta(minutes=slot_minutes)
    utc = first.astimezone(timezone.utc)
    aligned = utc - ((utc - _EPOCH) % step)
    return [first if i == 0 else (aligned + i * step).astimezone(first.tzinfo) for i in range(n)]

REASON_CODES = ("vehicle_limit", "dr_event", "site_cap", "network_limit", "schedule")
"""Why a vehicle gets less than it needs: its own power x plugged-in time is too small
(``vehicle_limit``), the site cap lowered by a demand-response event binds
(``dr_event``), the shared site cap binds (``site_cap``), a line limit of the
electrical tree binds (``network_limit``), or a heuristic's priority order left it
short while capacity existed (``schedule``)."""


class VehicleSchedule(msgspec.Struct, frozen=True):
    """One vehicle's set-points: ``kw[i]`` applies while plugged in during slot i; ``amps[i]`` is the
    pilot signal (A) to send to its EVSE for that slot (None at sites without an electrical tree).

    Slot 0 starts at ``first_slot_start`` (the plan start or the aligned slot
    start of the first plugged-in slot); slot i >= 1 starts at the aligned
    boundary ``floor(first_slot_start) + i * slot_minutes``. Energies are
    battery-side kWh unless named ``grid_kwh``.
    """

    vin: str
    charger_id: str | None
    first_slot_start: datetime | None
    slot_minutes: int
    kw: list[float]
    power_limit_kw: float
    requested_kwh: float
    need_kwh: float
    planned_kwh: float
    grid_kwh: float
    delivered_before_kwh: float
    expected_kwh_at_departure: float
    expected_soc_pct: float | None
    target_soc_pct: float | None
    departs_after_horizon: bool
    unmet_kwh: float
    reason_code: str | None = None
    reason: str | None = None
    health_note: str = ""
    amps: list[float] | None = None

    def slots(self) -> list[tuple[datetime, float]]:
        """The schedule as (slot start, kW) pairs."""
        if self.first_slot_start is None:
            return []
        return list(zip(aligned_starts(self.first_slot_start, len(self.kw), self.slot_minutes), self.kw))


class PlanMetrics(msgspec.Struct, frozen=True):
    """Site-level figures of one plan (grid-side energy and cost, battery-side needs)."""

    peak_kw: float
    peak_in_scope_kw: float
    energy_kwh: float
    delivered_kwh: float
    need_kwh: float
    unmet_kwh: float
    share_met: float
    energy_cost_usd: float
    demand_cost_usd: float
    cost_usd: float
    carbon_kg: float
    max_cap_excess_kw: float
    solve_time_s: float
    status: str


class SitePlan(msgspec.Struct, frozen=True):
    """A site's plan over the horizon: per-slot site load and cap, per-vehicle schedules, metrics."""

    site_id: str
    method: str
    trigger: str
    horizon_start: datetime
    horizon_end: datetime
    slot_minutes: int
    site_load_kw: list[float]
    cap_kw: list[float]
    price_per_kwh: list[float]
    vehicles: list[VehicleSchedule]
    metrics: PlanMetrics

    def slot_starts(self) -> list[datetime]:
        """Start of each slot (the first may be mid-slot, the rest are aligned)."""
        return aligned_starts(self.horizon_start, len(self.site_load_kw), self.slot_minutes)

    def vehicle(self, vin: str) -> VehicleSchedule:
        """The schedule of one vehicle (KeyError if absent)."""
        for v in self.vehicles:
            if v.vin == vin:
                return v
        raise KeyError(vin)
