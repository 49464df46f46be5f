"""Lumped-capacitance thermal models, integrated exactly for any time step.

Each node obeys ``C·dT/dt = Q + Σ G_i·(T_i − T)`` with the inputs held over
the step, whose exact solution relaxes toward the steady state
``T_ss = (Q + Σ G_i·T_i) / Σ G_i`` with ``τ = C / Σ G_i``:

    T_next = T_ss + (T − T_ss)·exp(−dt/τ)

so large steps (60 s, 1 h) simply land on the steady state instead of
overshooting. Nodes are updated in order coolant -> motor/inverter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]

# Coolant loop (motor + inverter), radiator to ambient.
COOLANT_C_J_PER_K = 25_000.0
RADIATOR_G_W_PER_K = 120.0          # pump on, vehicle stopped
RADIATOR_G_PER_MPS = 15.0           # ram air
RADIATOR_FAN_G_W_PER_K = 300.0      # fan above 45 °C
COOLANT_PARKED_G_W_PER_K = 25.0     # natural convection, pump off
# Motor windings relative to coolant.
MOTOR_RTH_K_PER_W = 0.040
MOTOR_TAU_ON_S = 900.0
MOTOR_TAU_OFF_S = 2400.0
# Inverter power module (junction side) relative to coolant.
INVERTER_RTH_K_PER_W = 0.055
INVERTER_TAU_ON_S = 30.0
INVERTER_TAU_OFF_S = 600.0
# Battery thermal management.
BATT_PARKED_AIRFLOW = 0.35          # share of the fastsim ambient conductance with no airflow
BATT_COOL_G_W_PER_K = {"liquid": 400.0, "air": 80.0, "passive": 0.0}
BATT_COOL_SETPOINT_C = 25.0
BATT_COOL_ON_C, BATT_COOL_OFF_C = 35.0, 30.0
BATT_HEAT_G_W_PER_K = 150.0
BATT_HEAT_SETPOINT_C = 20.0
BATT_HEAT_ON_C, BATT_HEAT_OFF_C = 5.0, 10.0
BTMS_COP = 2.5


def relax(temp: Array, t_ss: Array, dt_s: float, tau_s: Array | float) -> Array:
    """Exact first-order step toward ``t_ss`` with time constant ``tau_s``."""
    return t_ss + (temp - t_ss) * np.exp(-dt_s / tau_s)


def inverter_loss_w(motor_abs_kw: Array) -> Array:
    """Inverter switching + conduction loss (W) at mean |motor power| (kW)."""
    return 20.0 * motor_abs_kw + 0.25 * motor_abs_kw**2


def coolant_step(t_cool: Array, t_amb: Array, heat_w: Array, speed_mps: Array, pump_on: NDArray[np.bool_],
                 dt_s: float) -> Array:
    """Coolant loop temperature after ``dt_s`` given heat picked up from motor and inverter."""
    g_on = (RADIATOR_G_W_PER_K + RADIATOR_G_PER_MPS * speed_mps
            + RADIATOR_FAN_G_W_PER_K * (t_cool > 45.0))
    g = np.where(pump_on, g_on, COOLANT_PARKED_G_W_PER_K)
    t_ss = t_amb + np.where(pump_on, heat_w, 0.0) / g
    return relax(t_cool, t_ss, dt_s, COOLANT_C_J_PER_K / g)


def motor_step(t_motor: Array, t_cool: Array, loss_w: Array, on: NDArray[np.bool_], dt_s: float) -> Array:
    """Motor winding temperature: coolant plus loss·R_th, slow time constant."""
    t_ss = t_cool + np.where(on, loss_w * MOTOR_RTH_K_PER_W, 0.0)
    return relax(t_motor, t_ss, dt_s, np.where(on, MOTOR_TAU_ON_S, MOTOR_TAU_OFF_S))


def inverter_step(t_inv: Array, t_cool: Array, loss_w: Array, rth_scale: Array, on: NDArray[np.bool_],
                  dt_s: float) -> Array:
    """Inverter power-module temperature: fast response to load, decays to coolant when off."""
    t_ss = t_cool + np.where(on, loss_w * INVERTER_RTH_K_PER_W * rth_scale, 0.0)
    return relax(t_inv, t_ss, dt_s, np.where(on, INVERTER_TAU_ON_S, INVERTER_TAU_OFF_S))


@dataclass
class BatteryThermalResult:
    """Battery node update: new temperature, BTMS electrical draw (W) and hysteresis states."""

    temp_c: Array
    btms_w: Array
    cooling: NDArray[np.bool_]
    heating: NDArray[np.bool_]


def battery_step(temp: Array, t_amb: Array, heat_w: Array, capacitance: Array, g_amb: Array,
                 cool_g: Array, speed_mps: Array, active: NDArray[np.bool_], cooling: NDArray[np.bool_],
                 heating: NDArray[np.bool_], dt_s: float) -> BatteryThermalResult:
    """Pack temperature with I²R heat, ambient exchange and active cooling/heating.

    ``active`` marks vehicles whose HV system is awake (driving or charging);
    only those run the battery thermal management, with hysteresis.
    """
    cooling = active & (cool_g > 0) & ((temp > BATT_COOL_ON_C) | (cooling & (temp > BATT_COOL_OFF_C)))
    heating = active & ((temp < BATT_HEAT_ON_C) | (heating & (temp < BATT_HEAT_OFF_C)))
    g_a = g_amb * (BATT_PARKED_AIRFLOW + (1.0 - BATT_PARKED_AIRFLOW) * np.minimum(speed_mps / 25.0, 1.0))
    g_c = np.where(cooling, cool_g, 0.0)
    g_h = np.where(heating, BATT_HEAT_G_W_PER_K, 0.0)
    g = g_a + g_c + g_h
    t_ss = (heat_w + g_a * t_amb + g_c * BATT_COOL_SETPOINT_C + g_h * BATT_HEAT_SETPOINT_C) / g
    new = relax(temp, t_ss, dt_s, capacitance / g)
    # Electrical draw of the chiller / heater, at the mean heat flow over the step.
    mid = 0.5 * (temp + new)
    btms = (g_c * np.maximum(mid - BATT_COOL_SETPOINT_C, 0.0) / BTMS_COP
            + g_h * np.maximum(BATT_HEAT_SETPOINT_C - mid, 0.0))
    return BatteryThermalResult(new, btms, cooling, heating)
