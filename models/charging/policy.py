"""Battery-health-aware charging policy: risky traction batteries charge gentler and less full.

A vehicle's traction-battery risk probability (0..1, e.g. from the failure-risk
model) selects a tier:

- ``risk >= high_risk`` (0.5): power limited to ``high_power_factor`` (50 %) of the
  vehicle's own maximum and SoC ceiling ``high_soc_ceiling_pct`` (80 %);
- ``medium_risk <= risk < high_risk`` (0.2..0.5): ``medium_power_factor`` (75 %)
  and ``medium_soc_ceiling_pct`` (90 %);
- otherwise (or unknown risk): no change.

The power limit is relative to the *vehicle's* maximum (a C-rate limit), so slow
AC charging that is already below it is unaffected. The SoC ceiling lowers the
target (SoC requests) or caps the energy to ``(ceiling - soc) x capacity``
(energy requests with ``soc_pct``/``capacity_kwh``); an energy-only request
without SoC data cannot be capped and says so in the note.

>>> p = HealthPolicy()
>>> p.tier(0.7), p.tier(0.3), p.tier(0.1), p.tier(None)
('high', 'medium', 'none', 'none')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import msgspec

if TYPE_CHECKING:
    from models.charging.types import SessionRequest

Tier = Literal["none", "medium", "high"]


class HealthPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Thresholds and limits of the battery-health policy (see module docstring)."""

    medium_risk: float = 0.2
    high_risk: float = 0.5
    medium_power_factor: float = 0.75
    high_power_factor: float = 0.5
    medium_soc_ceiling_pct: float = 90.0
    high_soc_ceiling_pct: float = 80.0

    def __post_init__(self) -> None:
        o = "HealthPolicy"
        for name in ("medium_risk", "high_risk"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 <= v <= 1):
                raise ValueError(f"{o}.{name} must be in [0, 1], got {v!r}")
        if self.medium_risk > self.high_risk:
            raise ValueError(f"{o}.medium_risk {self.medium_risk} must be <= high_risk {self.high_risk}")
        for name in ("medium_power_factor", "high_power_factor"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 < v <= 1):
                raise ValueError(f"{o}.{name} must be in (0, 1], got {v!r}")
        for name in ("medium_soc_ceiling_pct", "high_soc_ceiling_pct"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 < v <= 100):
                raise ValueError(f"{o}.{name} must be in (0, 100], got {v!r}")

    def tier(self, risk: float | None) -> Tier:
        """Risk tier of a battery-risk probability (None = unknown = no restriction)."""
        if risk is None:
            return "none"
        if risk >= self.high_risk:
            return "high"
        if risk >= self.medium_risk:
            return "medium"
        return "none"


@dataclass(frozen=True)
class HealthDecision:
    """What the policy did to one request."""

    tier: Tier
    power_limit_kw: float  # vehicle-side health limit (inf when unrestricted)
    soc_ceiling_pct: float | None
    session_need_kwh: float  # battery-side energy for the whole session after the ceiling
    target_soc_pct: float | None  # effective target SoC, when SoC data is known
    note: str


def apply_health_policy(req: SessionRequest, policy: HealthPolicy) -> HealthDecision:
    """Effective power limit and session energy need of a request under ``policy``."""
    tier = policy.tier(req.battery_risk)
    need = req.requested_kwh
    soc, cap = req.soc_pct, req.capacity_kwh
    target = (soc + need / cap * 100.0) if soc is not None and cap is not None else None
    if req.target_soc_pct is not None:
        target = req.target_soc_pct
    if tier == "none":
        return HealthDecision(tier, math.inf, None, need, target, "")
    factor = policy.high_power_factor if tier == "high" else policy.medium_power_factor
    ceiling = policy.high_soc_ceiling_pct if tier == "high" else policy.medium_soc_ceiling_pct
    limit = factor * req.max_kw
    note = f"battery risk {req.battery_risk:.2f} ({tier}): power <= {limit:.1f} kW"
    if soc is not None and cap is not None and target is not None:
        if target > ceiling:
            target = max(soc, ceiling)
            need = min(need, max(0.0, (ceiling - soc) / 100.0 * cap))
            note += f", target SoC lowered to {target:.0f} %"
        else:
            note += f", SoC ceiling {ceiling:.0f} % not binding"
    else:
        note += f", SoC ceiling {ceiling:.0f} % not applied (no soc_pct/capacity_kwh)"
    return HealthDecision(tier, limit, ceiling, need, target, note)
