"""The 12 V system: battery voltage and the low-voltage system state (OFF/ACC/ON/START/LOCK).

Parked, the 12 V battery rests at 12.4-12.8 V (lower when cold and as it
ages) and surface charge decays slowly after the car is switched off; with the
HV system awake the DC-DC converter holds it at a temperature-compensated
13.8-14.4 V within seconds.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from models.simulation.telemetry import LV_ACC, LV_LOCK, LV_OFF, LV_ON, LV_START
from models.simulation.thermal import relax

Array = NDArray[np.float64]
LOCK_AFTER_MS = 120_000   # a parked car locks itself two minutes after switch-off
AWAKE_TAU_S = 5.0
REST_TAU_S = 1800.0


def rest_voltage(t_amb: Array, age_years: Array) -> Array:
    """Resting open-circuit voltage of the 12 V battery."""
    v = 12.72 - 0.005 * np.maximum(20.0 - t_amb, 0.0) - 0.035 * age_years
    return np.clip(v, 11.9, 12.8)


def charge_voltage(t_amb: Array) -> Array:
    """DC-DC output voltage with the HV system awake (temperature compensated)."""
    return np.clip(14.1 + 0.015 * (25.0 - t_amb), 13.8, 14.4)


def voltage_step(v: Array, t_amb: Array, age_years: Array, awake: NDArray[np.bool_], dt_s: float) -> Array:
    """12 V terminal voltage after ``dt_s``: fast to the charge voltage when awake, slow to rest when off."""
    target = np.where(awake, charge_voltage(t_amb), rest_voltage(t_amb, age_years))
    return relax(v, target, dt_s, np.where(awake, AWAKE_TAU_S, REST_TAU_S))


def system_state(started: NDArray[np.bool_], key_on: NDArray[np.bool_], driving: NDArray[np.bool_],
                 dc_charging: NDArray[np.bool_], parked_for_ms: NDArray[np.int64]) -> NDArray[np.int64]:
    """Index into ``telemetry.LV_STATES``: START on the step a shift begins, ON while driving with
    the key on, ACC at a fast charger, OFF at a key-off stop or just after parking, then LOCK."""
    state = np.where(started, LV_START, np.where(key_on, LV_ON, np.where(dc_charging, LV_ACC, LV_OFF)))
    return np.where(~driving & ~dc_charging & (parked_for_ms >= LOCK_AFTER_MS), LV_LOCK, state)
