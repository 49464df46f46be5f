"""Static per-vehicle parameters of a fleet: region, model, depot, VIN and individual spread.

Everything here is drawn once at construction from the simulator's seeded
generator, in a fixed order, so a seed fully determines the fleet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.simulation.ev_models import EVModel, model_array
from models.simulation.gps import KM_PER_DEG_LAT
from models.simulation.powertrain import pack_ocv_table
from models.simulation.regions import Region
from models.simulation.schedule import DutyProfile, draw_profiles
from models.simulation.thermal import BATT_COOL_G_W_PER_K
from models.simulation.vin import make_vins

#: Depot offsets (east km, north km) from a region's home; scaled down for small regions.
DEPOT_OFFSETS_KM = ((0.0, 0.0), (4.0, -2.5), (-3.0, 3.5))
SOFTWARE_RELEASES = 3
#: Floor on pack heat capacity: ~6.5 kg of pack per kWh at ~1 kJ/(kg·K). fastsim's lumped
#: values (tuned for its cabin/HVAC coupling) are about half that, which would let
#: I²R heat during fast charging warm a pack implausibly fast.
PACK_HEAT_CAPACITY_J_PER_K_PER_KWH = 6_500.0


def software_versions(prefix: str) -> tuple[str, ...]:
    """Three successive release strings for a model's software line (oldest first)."""
    if prefix.isdigit():  # calendar-style releases, e.g. 2025.38.4
        year = int(prefix)
        return (f"{year}.32.6", f"{year}.38.4", f"{year + 1}.2.3")
    return (f"{prefix}-3.2.1", f"{prefix}-3.3.0", f"{prefix}-3.4.2")


@dataclass(frozen=True)
class FleetParams:
    """Per-vehicle static arrays (length n) plus the lookup tables they index."""

    n: int
    region_ids: tuple[str, ...]
    timezones: list[str]
    region_idx: NDArray[np.int64]
    model_idx: NDArray[np.int64]
    vins: list[str]
    depot_lat: NDArray[np.float64]
    depot_lon: NDArray[np.float64]
    roam_km: NDArray[np.float64]
    ocv_table: NDArray[np.float64]
    r25_ohm: NDArray[np.float64]
    capacity_kwh: NDArray[np.float64]
    nominal_v: NDArray[np.float64]
    batt_c_j_per_k: NDArray[np.float64]
    batt_g_w_per_k: NDArray[np.float64]
    batt_cool_g: NDArray[np.float64]
    heat_pump: NDArray[np.bool_]
    aux_base_w: NDArray[np.float64]
    ac_kw: NDArray[np.float64]
    dc_max_kw: NDArray[np.float64]
    efficiency_factor: NDArray[np.float64]
    inverter_rth_scale: NDArray[np.float64]
    cell_imbalance_k: NDArray[np.float64]
    sensor_bias_c: NDArray[np.float64]
    software_table: tuple[str, ...]
    software_base: NDArray[np.int64]
    model_names: tuple[str, ...]
    variant_names: tuple[str, ...]
    profile: DutyProfile


def build_fleet(rng: np.random.Generator, n: int, regions: Sequence[Region], models: tuple[EVModel, ...]
                ) -> FleetParams:
    """Assign regions round-robin and models pseudo-randomly, and draw each vehicle's spread."""
    region_ids = tuple(dict.fromkeys(r.id for r in regions))
    by_id = {r.id: r for r in regions}
    region_idx = np.array([region_ids.index(regions[i % len(regions)].id) for i in range(n)], dtype=np.int64)
    model_idx = rng.integers(0, len(models), size=n).astype(np.int64)
    vins = make_vins(rng, [models[m].wmi for m in model_idx], [models[m].year for m in model_idx])

    home_lat = np.array([by_id[r].lat for r in region_ids])[region_idx]
    home_lon = np.array([by_id[r].lon for r in region_ids])[region_idx]
    roam = np.array([by_id[r].roam_km for r in region_ids])[region_idx]
    depot = np.asarray(DEPOT_OFFSETS_KM)[rng.integers(0, len(DEPOT_OFFSETS_KM), size=n)]
    scale = np.minimum(roam / 30.0, 1.0)
    depot_lat = home_lat + depot[:, 1] * scale / KM_PER_DEG_LAT
    depot_lon = home_lon + depot[:, 0] * scale / (KM_PER_DEG_LAT * np.cos(np.radians(home_lat)))

    ocv_tables = np.stack([pack_ocv_table(m.chemistry, m.cells_series) for m in models])
    cooling = np.array([BATT_COOL_G_W_PER_K[m.battery_cooling] for m in models])
    sw_lines = [software_versions(m.software_prefix) for m in models]
    sw_base = np.arange(len(models), dtype=np.int64) * SOFTWARE_RELEASES
    kwh = model_array(models, "battery_kwh")[model_idx]
    return FleetParams(
        n=n, region_ids=region_ids, timezones=[by_id[r].timezone for r in region_ids],
        region_idx=region_idx, model_idx=model_idx, vins=vins,
        depot_lat=depot_lat, depot_lon=depot_lon, roam_km=roam,
        ocv_table=ocv_tables[model_idx],
        r25_ohm=model_array(models, "pack_resistance_ohm")[model_idx] * rng.uniform(0.9, 1.15, n),
        capacity_kwh=kwh,
        nominal_v=ocv_tables[model_idx, 5],
        batt_c_j_per_k=np.maximum(model_array(models, "battery_heat_capacitance_j_per_k")[model_idx],
                                  PACK_HEAT_CAPACITY_J_PER_K_PER_KWH * kwh),
        batt_g_w_per_k=model_array(models, "battery_conductance_to_amb_w_per_k")[model_idx],
        batt_cool_g=cooling[model_idx],
        heat_pump=np.array([m.cabin_heat_source == "HeatPump" for m in models])[model_idx],
        aux_base_w=model_array(models, "aux_base_w")[model_idx] * rng.uniform(0.8, 1.6, n),
        ac_kw=model_array(models, "onboard_charger_kw")[model_idx],
        dc_max_kw=model_array(models, "max_dc_charge_kw")[model_idx],
        efficiency_factor=rng.uniform(0.95, 1.12, n),
        inverter_rth_scale=rng.uniform(0.9, 1.15, n),
        cell_imbalance_k=rng.uniform(0.3, 1.5, n),
        sensor_bias_c=rng.normal(0.0, 0.3, n),
        software_table=tuple(v for line in sw_lines for v in line),
        software_base=sw_base[model_idx],
        model_names=tuple(m.model for m in models),
        variant_names=tuple(m.variant for m in models),
        profile=draw_profiles(rng, n),
    )
