"""Road load, motor/battery power, pack voltage and current (vectorised).

Per route second the wheel power is

    P_wheel = (m_eff·a + ½·ρ·Cd·A·v² + Crr·m·g·cos θ) · v

(routes are flat, θ = 0). Driving, the motor delivers ``P_wheel / η_trans``
and draws ``P_motor / η_motor`` from the pack; braking, the motor absorbs a
blended share of the braking power (fading out at walking pace, capped at the
regen limit) and returns ``P_motor · η_motor`` to the pack: about 65 % of the
braking energy overall. These per-second powers depend only on (route, model),
so they are precomputed once with cumulative integrals (see ``drive_cycles``).

Battery sign convention follows VSS: current and power are positive *into*
the battery (charging/regen), negative when discharging.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.simulation.drive_cycles import RouteSet, cumulate
from models.simulation.ev_models import EVModel

AIR_DENSITY = 1.2      # kg/m^3
GRAVITY = 9.81         # m/s^2
PAYLOAD_KG = 120.0     # driver plus a little cargo
REGEN_BLEND = 0.75     # share of braking power the motor (not the friction brakes) absorbs
REGEN_FADE_MPS = 3.0   # regen fades out linearly below this speed
REGEN_MAX_KW = 60.0
BATT_KJ, ABS_MOTOR_KJ, MOTOR_LOSS_KJ, BATT_SQ = 0, 1, 2, 3  # channels of RouteEnergy.cum

#: Cell open-circuit voltage (V) versus SoC 0, 10, ..., 100 %.
OCV_TABLE: dict[str, NDArray[np.float64]] = {
    "NMC": np.array([3.00, 3.45, 3.55, 3.62, 3.68, 3.74, 3.82, 3.90, 3.98, 4.07, 4.18]),
    "LFP": np.array([2.90, 3.20, 3.25, 3.28, 3.29, 3.30, 3.31, 3.32, 3.33, 3.35, 3.45]),
}


@dataclass(frozen=True)
class RouteEnergy:
    """Per (route, model) traction power traces; row = ``route * n_models + model``.

    ``motor_kw`` is shaft power and ``batt_kw`` the pack's traction draw
    (discharge positive) per route second (both negative regenerating).
    ``cum[row, k, c]`` integrates channel ``c`` up to route second ``k``:
    ``BATT_KJ`` the pack's traction draw, ``ABS_MOTOR_KJ`` ``|P_motor|``,
    ``MOTOR_LOSS_KJ`` the motor losses and ``BATT_SQ`` the squared pack draw
    (kW²·s, for I²R heating).
    """

    n_models: int
    motor_kw: NDArray[np.float64]
    batt_kw: NDArray[np.float64]
    cum: NDArray[np.float64]

    def row(self, route: NDArray[np.int64], model: NDArray[np.int64]) -> NDArray[np.int64]:
        """Row index for per-vehicle route and model indices."""
        return route * self.n_models + model


def wheel_power_kw(model: EVModel, v_mean: NDArray[np.float64], accel: NDArray[np.float64],
                   grade_rad: float = 0.0) -> NDArray[np.float64]:
    """Road-load power at the wheels (kW) for mean speed ``v_mean`` and acceleration ``accel``."""
    m = model.mass_kg + PAYLOAD_KG
    m_eff = model.effective_mass_kg + PAYLOAD_KG
    force = (m_eff * accel + 0.5 * AIR_DENSITY * model.drag_coef * model.frontal_area_m2 * v_mean**2
             + model.rolling_resistance_coef * m * GRAVITY * np.cos(grade_rad) * (v_mean > 0)
             + m * GRAVITY * np.sin(grade_rad))
    return force * v_mean / 1000.0


def motor_and_battery_kw(model: EVModel, p_wheel_kw: NDArray[np.float64], v_mean: NDArray[np.float64]
                         ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Shaft power, pack traction draw (discharge positive) and motor loss, all kW."""
    p_max = model.motor_max_power_kw
    regen_max = min(p_max, REGEN_MAX_KW)
    fade = np.clip(v_mean / REGEN_FADE_MPS, 0.0, 1.0)
    drive = p_wheel_kw > 0
    p_motor = np.where(drive, np.minimum(p_wheel_kw / model.transmission_eff, p_max),
                       np.maximum(p_wheel_kw * model.transmission_eff * REGEN_BLEND * fade, -regen_max))
    eta = model.motor_efficiency(p_motor / p_max)
    p_batt = np.where(drive, p_motor / eta, p_motor * eta)
    loss = np.abs(p_batt - p_motor)
    return p_motor, p_batt, loss


def route_energy(routes: RouteSet, models: tuple[EVModel, ...]) -> RouteEnergy:
    """Precompute traction power traces and their integrals for every (route, model)."""
    motor, batt, loss = [], [], []
    for r in range(routes.n_routes):
        for model in models:
            pw = wheel_power_kw(model, routes.v_mean[r], routes.accel_mps2[r])
            pm, pb, pl = motor_and_battery_kw(model, pw, routes.v_mean[r])
            motor.append(pm)
            batt.append(pb)
            loss.append(pl)
    pm, pb, pl = np.stack(motor), np.stack(batt), np.stack(loss)
    return RouteEnergy(len(models), pm, pb, cumulate(np.stack([pb, np.abs(pm), pl, pb * pb], axis=-1)))


def pack_ocv_table(chemistry: str, cells_series: int) -> NDArray[np.float64]:
    """Pack open-circuit voltage (V) at SoC 0, 10, ..., 100 % for a chemistry and series count."""
    if chemistry not in OCV_TABLE:
        raise ValueError(f"unknown cell chemistry {chemistry!r}; valid: {list(OCV_TABLE)}")
    return OCV_TABLE[chemistry] * cells_series


def open_circuit_voltage(soc: NDArray[np.float64], ocv_tables: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per-vehicle pack OCV (V) at SoC fraction ``soc``; ``ocv_tables`` has shape (n, 11)."""
    pos = np.clip(soc, 0.0, 1.0) * 10.0
    k = np.minimum(pos.astype(np.int64), 9)
    frac = pos - k
    rows = np.arange(len(soc))
    lo = ocv_tables[rows, k]
    return lo + frac * (ocv_tables[rows, k + 1] - lo)


def pack_resistance(r25_ohm: NDArray[np.float64], temp_c: NDArray[np.float64],
                    soh_pct: NDArray[np.float64]) -> NDArray[np.float64]:
    """Pack DC resistance: rises roughly 3 %/K below 25 °C (capped at x4) and as the pack ages."""
    cold = np.minimum(np.exp(0.03 * np.maximum(25.0 - temp_c, 0.0)), 4.0)
    ageing = 1.0 + 2.0 * np.maximum(100.0 - soh_pct, 0.0) / 100.0
    return r25_ohm * cold * ageing


def pack_current(power_in_w: NDArray[np.float64], ocv: NDArray[np.float64], r_ohm: NDArray[np.float64]
                 ) -> NDArray[np.float64]:
    """Current (A, positive into the pack) delivering ``power_in_w`` at the terminals.

    Solves ``P = (OCV + I·R)·I`` with the cancellation-free root; discharge is
    limited to the maximum-power point ``OCV² / 4R``.
    """
    p = np.maximum(power_in_w, -0.95 * ocv * ocv / (4.0 * r_ohm))
    disc = np.sqrt(ocv * ocv + 4.0 * r_ohm * p)
    return 2.0 * p / (ocv + disc)


def charge_taper(soc: NDArray[np.float64], dc: bool) -> NDArray[np.float64]:
    """Fraction of rated charge power accepted at SoC fraction ``soc`` (CC then CV-like taper)."""
    if dc:
        return np.interp(soc, [0.0, 0.5, 0.8, 1.0], [1.0, 1.0, 0.45, 0.08])
    return np.interp(soc, [0.0, 0.9, 1.0], [1.0, 1.0, 0.25])


def dc_thermal_derate(pack_temp_c: NDArray[np.float64]) -> NDArray[np.float64]:
    """Fraction of DC fast-charge power the BMS allows at a pack temperature (cold and hot limits)."""
    return np.interp(pack_temp_c, [-10.0, 0.0, 10.0, 45.0, 52.0, 58.0], [0.15, 0.35, 1.0, 1.0, 0.4, 0.1])


def hvac_power_w(temp_amb_c: NDArray[np.float64], heat_pump: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Cabin HVAC electrical draw (W): heating below 18 °C, cooling above 24 °C, 5 kW cap."""
    heat_load = 350.0 * np.maximum(18.0 - temp_amb_c, 0.0)
    cop = np.where(heat_pump & (temp_amb_c > -10.0), 2.5, 1.0)
    cool = 180.0 * np.maximum(temp_amb_c - 24.0, 0.0)
    return np.minimum(heat_load / cop + cool, 5000.0)
