"""Shared helpers for the simulator tests: run a simulator and rebuild each vehicle's full state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from models.simulation import SIGNAL_PATHS, FleetSimulator

TB = "Vehicle.Powertrain.TractionBattery"
SPEED = "Vehicle.Speed"
SOC = f"{TB}.StateOfCharge.Current"
ODO = "Vehicle.TraveledDistance"
INVERTER = "Vehicle.Powertrain.TractionInverter.Temperature"
AIR = "Vehicle.Exterior.AirTemperature"
CHARGING = f"{TB}.Charging.IsCharging"
DC_CURRENT = f"{TB}.Charging.ChargeCurrent.DC"
PACK_CURRENT = f"{TB}.CurrentCurrent"
LV_STATE = "Vehicle.LowVoltageSystemState"
LAT, LON = "Vehicle.CurrentLocation.Latitude", "Vehicle.CurrentLocation.Longitude"
MODEL = "Vehicle.VehicleIdentification.Model"
NUMERIC = tuple(p for p in SIGNAL_PATHS if p not in (
    LV_STATE, "Vehicle.Diagnostics.DTCList", "Vehicle.Software.Version", MODEL,
    "Vehicle.VehicleIdentification.Variant"))


@dataclass
class Run:
    """Reconstructed per-step full state of every vehicle: ``values[path]`` has shape (steps, n)."""

    vins: list[str]
    regions: list[str]
    models: list[str]
    ts: np.ndarray
    values: dict[str, np.ndarray]
    lv_state: np.ndarray


def run_states(sim: FleetSimulator, dt_s: float, steps: int) -> Run:
    """Step ``sim`` and apply each partial update to a per-vehicle state dict, sampling every step."""
    n = len(sim.vins)
    state: list[dict[str, Any]] = [{} for _ in range(n)]
    ts = np.empty(steps, dtype=np.int64)
    values = {p: np.empty((steps, n)) for p in NUMERIC}
    lv = np.empty((steps, n), dtype=object)
    for s in range(steps):
        batch = sim.step(dt_s)
        ts[s] = batch[0]["ts"]
        for i, msg in enumerate(batch):
            state[i].update(msg["signals"])
        for p in NUMERIC:
            values[p][s] = [st[p] for st in state]
        lv[s] = [st[LV_STATE] for st in state]
    return Run(sim.vins, [sim.region_of(v) for v in sim.vins], [st[MODEL] for st in state], ts, values, lv)
