"""``HistoryState`` and the per-reading entry points ``update_history``.

Integration rules (all accumulators):

* ``update_history`` is called once per applied in-order reading with the twin's
  merged values (``values[SLOT[path]]``, ``None`` = unknown). A reading with
  ``ts_ms <= last_ms`` (older than or as old as the last update) is **ignored** and
  only counted in ``n_ignored``: accumulators are integrals over time and cannot
  be re-ordered after the fact.
* Time integrals hold each interval ``(last_ms, ts_ms]`` at the values known at
  its start (zero-order hold, which is what the partial-update contract means: a
  signal keeps its value until a message changes it), and the interval is capped
  at ``MAX_STEP_S`` = 3,900 s — a vehicle offline for a day adds at most 65 minutes
  "at 90 °C", not 24 hours, while hourly telemetry (training histories) still
  integrates fully, so features mean the same at 1 Hz and at 1/h. ``observed_s`` sums the capped intervals. The first
  reading only sets the starting point.
* Counts (edges, wakes, sessions) and deltas of cumulative signals (odometer, SoC)
  are not capped: they are real events/changes even across a gap.
* Memory is bounded: fixed-size fields, a 64-point rainflow residue and a 30-day ring.
"""

from __future__ import annotations

from collections.abc import Sequence
from copy import copy
from typing import Any

import msgspec
from msgspec.structs import replace

from twins.history.battery import BatteryState, update_battery
from twins.history.daily import DAY_MS, DailyState, roll_day
from twins.history.dtc import DtcState, update_dtc
from twins.history.inverter import InverterState, update_inverter
from twins.history.lv_battery import LvState, update_lv
from twins.history.motor import MotorState, update_motor
from twins.history.usage import UsageState, update_usage
from twins.signals import SLOT

MAX_STEP_S = 3900.0
_TB = "Vehicle.Powertrain.TractionBattery"
_SPEED = SLOT["Vehicle.Speed"]
_ODO = SLOT["Vehicle.TraveledDistance"]
_ACCEL = SLOT["Vehicle.Acceleration.Longitudinal"]
_SOC = SLOT[f"{_TB}.StateOfCharge.Current"]
_SOH = SLOT[f"{_TB}.StateOfHealth"]
_PACK_V = SLOT[f"{_TB}.CurrentVoltage"]
_PACK_I = SLOT[f"{_TB}.CurrentCurrent"]
_PACK_T_AVG = SLOT[f"{_TB}.Temperature.Average"]
_PACK_T_MAX = SLOT[f"{_TB}.Temperature.Max"]
_DC_I = SLOT[f"{_TB}.Charging.ChargeCurrent.DC"]
_MOTOR_T = SLOT["Vehicle.Powertrain.ElectricMotor.Temperature"]
_MOTOR_P = SLOT["Vehicle.Powertrain.ElectricMotor.Power"]
_AIR_T = SLOT["Vehicle.Exterior.AirTemperature"]
_LV_V = SLOT["Vehicle.LowVoltageBattery.CurrentVoltage"]
_LV_STATE = SLOT["Vehicle.LowVoltageSystemState"]
_INV_T = SLOT["Vehicle.Powertrain.TractionInverter.Temperature"]
_DTC = SLOT["Vehicle.Diagnostics.DTCList"]

#: The signal slots ``update_history`` reads (for integrators and tests).
SLOTS_READ: tuple[str, ...] = tuple(
    p for p, i in SLOT.items()
    if i in (_SPEED, _ODO, _ACCEL, _SOC, _SOH, _PACK_V, _PACK_I, _PACK_T_AVG, _PACK_T_MAX, _DC_I, _MOTOR_T,
             _MOTOR_P, _AIR_T, _LV_V, _LV_STATE, _INV_T, _DTC)
)


class HistoryState(msgspec.Struct, array_like=True, gc=False):
    """Operating history of one vehicle (positional msgpack; append new fields at the end, with defaults)."""

    last_ms: int = 0                 # event time of the last applied update (epoch ms); 0 = none yet
    n_updates: int = 0
    n_ignored: int = 0               # out-of-order / duplicate-time readings skipped
    observed_s: float = 0.0          # Σ capped intervals
    inverter: InverterState = msgspec.field(default_factory=InverterState)
    battery: BatteryState = msgspec.field(default_factory=BatteryState)
    motor: MotorState = msgspec.field(default_factory=MotorState)
    lv: LvState = msgspec.field(default_factory=LvState)
    usage: UsageState = msgspec.field(default_factory=UsageState)
    daily: DailyState = msgspec.field(default_factory=DailyState)
    dtc: DtcState = msgspec.field(default_factory=DtcState)


def totals(state: HistoryState) -> tuple[float, float, float, float, float, float]:
    """Cumulative totals the daily ring differences: km, driving s, A·s, DC sessions, DC kW·s, harsh events."""
    u = state.usage
    b = state.battery
    return (u.distance_km, u.driving_s, b.ah_as, b.dc_sessions, b.dc_kws, u.harsh_accel + u.harsh_brake)


def update_history(state: HistoryState, ts_ms: int, values: Sequence[Any]) -> None:
    """Fold one in-order reading (the twin's merged values at ``ts_ms``) into ``state``, in place."""
    last = state.last_ms
    if ts_ms <= last:
        state.n_ignored += 1
        return
    if last:
        dt = (ts_ms - last) * 0.001
        if dt > MAX_STEP_S:
            dt = MAX_STEP_S
        state.observed_s += dt
    else:
        dt = 0.0
    state.last_ms = ts_ms
    state.n_updates += 1

    daily = state.daily
    day = ts_ms // DAY_MS
    if day != daily.day:
        roll_day(daily, day, totals(state), state.battery.soh)
    inv_t = values[_INV_T]
    pack_t_max = values[_PACK_T_MAX]
    if inv_t is not None and inv_t > daily.inv_max:
        daily.inv_max = inv_t
    if pack_t_max is not None and pack_t_max > daily.pack_max:
        daily.pack_max = pack_t_max

    speed = values[_SPEED]
    update_inverter(state.inverter, dt, inv_t)
    update_battery(state.battery, dt, values[_PACK_I], values[_SOC], values[_PACK_V], values[_DC_I],
                   values[_PACK_T_AVG], pack_t_max, values[_SOH])
    update_motor(state.motor, dt, values[_MOTOR_T], values[_MOTOR_P], speed)
    update_lv(state.lv, dt, ts_ms, values[_LV_V], values[_LV_STATE], values[_AIR_T])
    update_usage(state.usage, dt, values[_ODO], speed, values[_ACCEL])
    dtcs = values[_DTC]
    if dtcs or state.dtc.active:
        update_dtc(state.dtc, ts_ms, dtcs)


def copy_history(state: HistoryState) -> HistoryState:
    """A deep copy that shares no mutable part with ``state`` (~3 µs; for ``twins.twin.copy_twin``).

    Sub-structs holding only scalars are copied shallowly; every list is copied. A test walks the
    struct tree, so a new list field that is not copied here fails it.
    """
    inv = state.inverter
    rf = inv.rf
    d = state.daily
    return replace(
        state,
        inverter=replace(inv, bins_half=list(inv.bins_half), rf=replace(rf, stack=list(rf.stack))),
        battery=copy(state.battery), motor=copy(state.motor), lv=copy(state.lv), usage=copy(state.usage),
        daily=replace(d, base=list(d.base), ring=list(d.ring)),
        dtc=replace(state.dtc, last_seen_ms=list(state.dtc.last_seen_ms), onsets=list(state.dtc.onsets),
                    onset_ms=list(state.dtc.onset_ms)),
    )


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(HistoryState)


def encode_history(state: HistoryState) -> bytes:
    """Compact msgpack form (positional arrays)."""
    return _encoder.encode(state)


def decode_history(data: bytes) -> HistoryState:
    """Inverse of :func:`encode_history`."""
    return _decoder.decode(data)
