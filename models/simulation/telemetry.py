"""Telemetry contract: signal encodings and the partial-update message encoder.

A message is ``{"schema": 1, "vin", "ts", "seq", "signals": {VSS path: value}}``.
A vehicle's first message, and every ``snapshot_every``-th one after it
(staggered across the fleet so snapshots do not all land on one step), carry
every signal; the others carry only the signals whose *encoded* value changed
since that vehicle's previous message. Values are rounded to a sensible
sensor resolution first, so slow drifts do not re-send a signal every step,
and clipped to the catalogue range (the simulator does not import ``twins``;
the tests check these specs against ``twins.signals``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

SCHEMA_VERSION = 1
TB = "Vehicle.Powertrain.TractionBattery"
LV_STATES: tuple[str, ...] = ("UNDEFINED", "LOCK", "OFF", "ACC", "ON", "START")
LV_LOCK, LV_OFF, LV_ACC, LV_ON, LV_START = 1, 2, 3, 4, 5

Encoding = Literal["float", "bool", "enum", "list"]


@dataclass(frozen=True)
class SignalSpec:
    """How one signal is encoded: kind, rounding decimals and the catalogue range."""

    path: str
    encoding: Encoding
    decimals: int = 1
    lo: float = float("-inf")
    hi: float = float("inf")


SPECS: tuple[SignalSpec, ...] = (
    SignalSpec("Vehicle.Speed", "float", 1, 0.0, 400.0),
    SignalSpec("Vehicle.CurrentLocation.Latitude", "float", 6, -90.0, 90.0),
    SignalSpec("Vehicle.CurrentLocation.Longitude", "float", 6, -180.0, 180.0),
    SignalSpec("Vehicle.TraveledDistance", "float", 2, 0.0, 5_000_000.0),
    SignalSpec("Vehicle.Acceleration.Longitudinal", "float", 2, -100.0, 100.0),
    SignalSpec(f"{TB}.StateOfCharge.Current", "float", 1, 0.0, 100.0),
    SignalSpec(f"{TB}.StateOfHealth", "float", 2, 0.0, 100.0),
    SignalSpec(f"{TB}.CurrentVoltage", "float", 1, 0.0, 1500.0),
    SignalSpec(f"{TB}.CurrentCurrent", "float", 1, -3000.0, 3000.0),
    SignalSpec(f"{TB}.Temperature.Average", "float", 1, -60.0, 120.0),
    SignalSpec(f"{TB}.Temperature.Max", "float", 1, -60.0, 120.0),
    SignalSpec(f"{TB}.Charging.IsCharging", "bool"),
    SignalSpec(f"{TB}.Charging.ChargeCurrent.DC", "float", 1, 0.0, 3000.0),
    SignalSpec("Vehicle.Powertrain.ElectricMotor.Temperature", "float", 1, -60.0, 250.0),
    SignalSpec("Vehicle.Powertrain.ElectricMotor.EngineCoolant.Temperature", "float", 1, -60.0, 200.0),
    SignalSpec("Vehicle.Powertrain.ElectricMotor.Power", "float", 1, -1000.0, 1000.0),
    SignalSpec("Vehicle.Exterior.AirTemperature", "float", 1, -80.0, 70.0),
    SignalSpec("Vehicle.LowVoltageBattery.CurrentVoltage", "float", 2, 0.0, 60.0),
    SignalSpec("Vehicle.LowVoltageSystemState", "enum"),
    SignalSpec("Vehicle.Diagnostics.DTCList", "list"),
    SignalSpec("Vehicle.Powertrain.TractionInverter.Temperature", "float", 1, -60.0, 250.0),
    SignalSpec("Vehicle.Software.Version", "enum"),
    SignalSpec("Vehicle.VehicleIdentification.Model", "enum"),
    SignalSpec("Vehicle.VehicleIdentification.Variant", "enum"),
)
SIGNAL_PATHS: tuple[str, ...] = tuple(s.path for s in SPECS)


def _canonical(spec: SignalSpec, raw: NDArray[Any]) -> NDArray[Any]:
    """The encoded value as a numeric array: rounded/clipped floats, bools, or table indices."""
    if spec.encoding == "float":
        return np.clip(np.round(np.asarray(raw, dtype=np.float64), spec.decimals), spec.lo, spec.hi) + 0.0
    if spec.encoding == "bool":
        return np.asarray(raw, dtype=bool)
    return np.asarray(raw, dtype=np.int64)


class TelemetryEncoder:
    """Turns per-step signal arrays into contract messages with per-vehicle partial updates.

    ``tables`` maps each ``enum`` signal to its value table and the ``list``
    signal to a table of tuples; the frame then carries integer indices.
    """

    def __init__(self, vins: Sequence[str], tables: Mapping[str, Sequence[Any]], snapshot_every: int = 300
                 ) -> None:
        if snapshot_every < 1:
            raise ValueError(f"snapshot_every must be >= 1, got {snapshot_every}")
        missing = [s.path for s in SPECS if s.encoding in ("enum", "list") and s.path not in tables]
        if missing:
            raise ValueError(f"missing value tables for {missing}")
        self._vins = list(vins)
        self._tables = {k: list(v) for k, v in tables.items()}
        self._every = snapshot_every
        self._phase = np.arange(len(self._vins), dtype=np.int64) % snapshot_every
        self._seq = np.zeros(len(self._vins), dtype=np.int64)
        self._last: dict[str, NDArray[Any]] = {}

    @property
    def seq(self) -> NDArray[np.int64]:
        """Sequence number each vehicle's *next* message will carry."""
        return self._seq

    def _values(self, spec: SignalSpec, key: NDArray[Any], idx: NDArray[np.int64]) -> list[Any]:
        picked = key[idx].tolist()
        if spec.encoding in ("float", "bool"):
            return picked
        table = self._tables[spec.path]
        if spec.encoding == "list":
            return [list(table[k]) for k in picked]
        return [table[k] for k in picked]

    def encode(self, ts_ms: int, frame: Mapping[str, NDArray[Any]]) -> list[dict[str, Any]]:
        """One message per vehicle (vehicle order) for the signal arrays in ``frame``."""
        seq = self._seq
        full = (seq == 0) | ((seq + self._phase) % self._every == 0)
        any_full = bool(full.any())
        signals: list[dict[str, Any]] = [{} for _ in self._vins]
        for spec in SPECS:
            key = _canonical(spec, frame[spec.path])
            last = self._last.get(spec.path)
            if last is None:
                changed = full
            else:
                changed = key != last
                if any_full:
                    changed |= full
            self._last[spec.path] = key
            idx = np.flatnonzero(changed)
            if idx.size == 0:
                continue
            path = spec.path
            for i, value in zip(idx.tolist(), self._values(spec, key, idx)):
                signals[i][path] = value
        ts = int(ts_ms)
        out = [{"schema": SCHEMA_VERSION, "vin": vin, "ts": ts, "seq": s, "signals": sig}
               for vin, s, sig in zip(self._vins, seq.tolist(), signals)]
        self._seq = seq + 1
        return out
