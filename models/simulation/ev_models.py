"""Battery-electric vehicle models from the shipped ``models/data/ev_models.json``.

The JSON is extracted from fastsim's vehicle resources (see
``models/data/extract_data.py``); this module only reads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from models.simulation.resources import read_text


@dataclass(frozen=True)
class EVModel:
    """Physical parameters of one EV model (SI units unless the name says otherwise)."""

    id: str
    name: str
    make: str
    model: str
    variant: str
    year: int
    wmi: str
    mass_kg: float
    drag_coef: float
    frontal_area_m2: float
    rolling_resistance_coef: float
    wheel_radius_m: float
    wheel_inertia_kg_m2: float
    num_wheels: int
    battery_kwh: float
    battery_min_soc: float
    battery_max_soc: float
    battery_max_power_kw: float
    motor_max_power_kw: float
    motor_eff_power_frac: tuple[float, ...]
    motor_eff: tuple[float, ...]
    transmission_eff: float
    aux_base_w: float
    cabin_heat_source: str
    battery_heat_capacitance_j_per_k: float
    battery_conductance_to_amb_w_per_k: float
    chemistry: str
    cells_series: int
    pack_resistance_ohm: float
    onboard_charger_kw: float
    max_dc_charge_kw: float
    battery_cooling: str
    software_prefix: str

    @property
    def effective_mass_kg(self) -> float:
        """Mass plus the translational equivalent of the wheels' rotational inertia."""
        return self.mass_kg + self.num_wheels * self.wheel_inertia_kg_m2 / self.wheel_radius_m**2

    def motor_efficiency(self, power_frac: NDArray[np.float64]) -> NDArray[np.float64]:
        """Motor efficiency at ``|P| / P_max`` (fastsim's achieved-efficiency table, clamped)."""
        frac = np.clip(np.abs(power_frac), 0.0, 1.0)
        return np.interp(frac, self.motor_eff_power_frac, self.motor_eff)


@lru_cache(maxsize=1)
def load_ev_models() -> tuple[EVModel, ...]:
    """All shipped EV models, in file order."""
    doc = json.loads(read_text("ev_models.json"))
    fields = set(EVModel.__dataclass_fields__)
    models = []
    for raw in doc["models"]:
        kwargs = {k: v for k, v in raw.items() if k in fields}
        kwargs["motor_eff_power_frac"] = tuple(raw["motor_eff_power_frac"])
        kwargs["motor_eff"] = tuple(raw["motor_eff"])
        models.append(EVModel(**kwargs))
    return tuple(models)


def model_array(models: tuple[EVModel, ...], attr: str) -> NDArray[np.float64]:
    """One numeric attribute of every model as a float array (for per-vehicle fancy indexing)."""
    return np.array([float(getattr(m, attr)) for m in models], dtype=np.float64)
