"""Completing a charging request from the vehicle's twin: SoC, usable capacity, learnt energy need.

Pure: the stream layer passes the twin's last SoC, its model name and its history features.
Policy when the request omits them (documented in the README):

* ``soc_pct`` ← the twin's last ``StateOfCharge.Current``;
* ``capacity_kwh`` ← the usable capacity of the twin's model (``models/data/ev_models.json``:
  pack kWh × (max SoC − min SoC));
* ``max_kw`` ← the model's on-board AC charger (or DC limit for a DC charger);
* neither ``energy_kwh`` nor ``target_soc_pct``: energy for the vehicle's learnt daily use,
  ``1.25 × daily Ah over 30 days × nominal pack voltage``, at least what reaches 60 % SoC,
  at most what reaches 90 % SoC; 90 % SoC when the twin has no usage history yet.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

from models.simulation.ev_models import load_ev_models

DEFAULT_TARGET_SOC = 90.0
MIN_TARGET_SOC = 60.0
DAILY_MARGIN = 1.25
NOMINAL_CELL_V = 3.65


@lru_cache(maxsize=1)
def _models() -> dict[str, Any]:
    return {m.model: m for m in load_ev_models()}


def usable_capacity_kwh(model: str | None) -> float | None:
    """Usable kWh of a model by its ``Vehicle.VehicleIdentification.Model`` name (None if unknown)."""
    m = _models().get(model or "")
    return None if m is None else round(m.battery_kwh * (m.battery_max_soc - m.battery_min_soc), 2)


def charger_limit_kw(model: str | None, dc: bool) -> float | None:
    """The model's acceptance limit on AC (on-board charger) or DC."""
    m = _models().get(model or "")
    return None if m is None else float(m.max_dc_charge_kw if dc else m.onboard_charger_kw)


def learnt_energy_kwh(history: dict[str, float], model: str | None, soc_pct: float, capacity_kwh: float) -> float | None:
    """Energy (kWh) for a typical day of this vehicle, or None without usage history."""
    ah_per_day = history.get("daily_ah_per_day_30d", math.nan)
    m = _models().get(model or "")
    if m is None or not ah_per_day == ah_per_day or ah_per_day <= 0:
        return None
    pack_v = m.cells_series * NOMINAL_CELL_V
    need = DAILY_MARGIN * ah_per_day * pack_v / 1000.0
    low = max(0.0, (MIN_TARGET_SOC - soc_pct) / 100.0 * capacity_kwh)
    high = max(0.0, (DEFAULT_TARGET_SOC - soc_pct) / 100.0 * capacity_kwh)
    return round(min(max(need, low), high), 3)


def complete_request(request: dict[str, Any], soc_pct: float | None, model: str | None,
                     history: dict[str, float], dc_charger: bool = False) -> dict[str, Any]:
    """A copy of a ``SessionRequest``-shaped dict with missing fields filled from the twin.

    Raises ``ValueError`` naming what is missing when neither the request nor the twin has it.
    """
    out = dict(request)
    vin = out.get("vin")
    if out.get("max_kw") is None:
        out["max_kw"] = charger_limit_kw(model, dc_charger)
        if out["max_kw"] is None:
            raise ValueError(f"request for {vin} has no max_kw and the twin's model {model!r} is unknown")
    if out.get("energy_kwh") is not None:
        return out
    if out.get("soc_pct") is None:
        if soc_pct is None:
            raise ValueError(f"request for {vin} has no soc_pct or energy_kwh and its twin has no SoC yet")
        out["soc_pct"] = soc_pct
    if out.get("capacity_kwh") is None:
        out["capacity_kwh"] = usable_capacity_kwh(model)
        if out["capacity_kwh"] is None:
            raise ValueError(f"request for {vin} has no capacity_kwh and the twin's model {model!r} is unknown")
    if out.get("target_soc_pct") is None:
        energy = learnt_energy_kwh(history, model, out["soc_pct"], out["capacity_kwh"])
        if energy is None:
            out["target_soc_pct"] = max(DEFAULT_TARGET_SOC, out["soc_pct"])
        else:
            out["energy_kwh"] = energy
    return out
