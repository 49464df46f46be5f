"""The 12 V system: battery voltage, the wake-up voltage dip and the low-voltage system state.

Parked, the 12 V battery rests at 12.4-12.8 V (lower when cold and as it
wears) and surface charge decays slowly after the car is switched off; with the
HV system awake the DC-DC converter holds it at a temperature-compensated
13.8-14.4 V within seconds.

Waking up (contactor pre-charge, ECUs booting, pumps) draws ``WAKE_CURRENT_A``
from the 12 V battery alone for a moment, before the DC-DC converter takes
over, so the terminal voltage dips by ``I·R_int``. The internal resistance of a
lead-acid battery rises steeply as it wears (sulphation, grid corrosion, loss of
active material) and in the cold (electrolyte conductivity and reaction
kinetics): roughly doubling from 25 °C to about -5 °C. See P. Ruetschi, "Aging
mechanisms and service life of lead-acid batteries", J. Power Sources 127
(2004) 33-44, and the BCI cold-cranking rating practice. A worn battery in the
cold therefore shows a deep wake dip before it finally fails to wake the car;
``models.simulation.reliability`` decides that failure, this module only gives
the voltages. ``wear`` is the battery's normalised wear (0 new, 1 nominal end of
life; see the reliability module).
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
REST_V_NEW = 12.72        # fully charged, 20 °C and above
REST_V_PER_K_COLD = 0.005
REST_V_PER_WEAR = 0.30    # a worn battery no longer reaches full charge
R_INT_NEW_OHM = 0.008     # ~60 Ah AGM/flooded 12 V battery, new, 25 °C
R_INT_WEAR_GAIN = 2.5     # R = R_new·(1 + 2.5·wear²): x3.5 at end of life
R_INT_COLD_PER_K = 0.025  # exp(0.025·(25 - T)): x2.1 at -5 °C
WAKE_CURRENT_A = 40.0
DEAD_REST_V = 10.5        # a battery with a shorted cell (five cells left)


def rest_voltage(t_amb: Array, wear: Array) -> Array:
    """Resting open-circuit voltage of the 12 V battery."""
    v = REST_V_NEW - REST_V_PER_K_COLD * np.maximum(20.0 - t_amb, 0.0) - REST_V_PER_WEAR * wear
    return np.clip(v, 11.4, 12.8)


def internal_resistance_ohm(t_amb: Array, wear: Array) -> Array:
    """Internal resistance: rises with wear (quadratically) and in the cold."""
    return (R_INT_NEW_OHM * (1.0 + R_INT_WEAR_GAIN * wear * wear)
            * np.exp(R_INT_COLD_PER_K * np.maximum(25.0 - t_amb, 0.0)))


def wake_voltage(t_amb: Array, wear: Array) -> Array:
    """Lowest terminal voltage while the car wakes up on the 12 V battery alone (noise-free)."""
    return rest_voltage(t_amb, wear) - WAKE_CURRENT_A * internal_resistance_ohm(t_amb, wear)


def charge_voltage(t_amb: Array) -> Array:
    """DC-DC output voltage with the HV system awake (temperature compensated)."""
    return np.clip(14.1 + 0.015 * (25.0 - t_amb), 13.8, 14.4)


def voltage_step(v: Array, t_amb: Array, wear: Array, awake: NDArray[np.bool_], dt_s: float,
                 dead: NDArray[np.bool_] | None = None) -> Array:
    """12 V terminal voltage after ``dt_s``: fast to the charge voltage when awake, slow to rest when off.

    ``dead`` marks batteries with an internal short: they rest at ``DEAD_REST_V``.
    """
    rest = rest_voltage(t_amb, wear)
    if dead is not None:
        rest = np.where(dead, DEAD_REST_V, rest)
    target = np.where(awake, charge_voltage(t_amb), rest)
    return relax(v, target, dt_s, np.where(awake, AWAKE_TAU_S, REST_TAU_S))


def system_state(started: NDArray[np.bool_], key_on: NDArray[np.bool_], driving: NDArray[np.bool_],
                 dc_charging: NDArray[np.bool_], parked_for_ms: NDArray[np.int64]) -> NDArray[np.int64]:
    """Index into ``telemetry.LV_STATES``: START on the step a shift begins, ON while driving with
    the key on, ACC at a fast charger, OFF at a key-off stop or just after parking, then LOCK."""
    state = np.where(started, LV_START, np.where(key_on, LV_ON, np.where(dc_charging, LV_ACC, LV_OFF)))
    return np.where(~driving & ~dc_charging & (parked_for_ms >= LOCK_AFTER_MS), LV_LOCK, state)
