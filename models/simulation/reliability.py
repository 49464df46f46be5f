"""Component wear, failures and the workshop log: ground truth for failure-risk models.

Four components wear out from each vehicle's *own* simulated stresses and local
weather, physics-of-failure style, with per-unit random strength so failures
are stochastic but concentrated in stressed vehicles. The forms and exponents
come from the literature cited below; the absolute life scales (``*_LIFE_*``
constants marked *calibrated*) are set so that a mixed fleet with vehicles 0-6
years old sees roughly 2-5 % inverter, 1-3 % traction-battery, 5-10 % 12 V and
0.5-1 % drive-motor failures a year (2,000-vehicle years, dt = 3600 s, three
seeds: 3.6-4.2 / 1.8-2.0 / 7.6-8.3 / ~0.9 %; checked in
``tests/simulation/test_reliability.py``). They are plausible, not calibrated to
any real fleet.

Traction inverter (power module)
    *Power cycling* (bond-wire lift-off, solder fatigue): Miner's rule
    (M. A. Miner, J. Appl. Mech. 12 (1945) A159) over the junction-temperature
    cycles, each with the CIPS08 life (R. Bayerer, T. Herrmann, T. Licht,
    J. Lutz, M. Feller, "Model for power cycling lifetime of IGBT modules -
    various factors influencing lifetime", CIPS 2008)::

        Nf = A·ΔTj^β1·exp(β2 / (Tj,min + 273.15))·t_on^β3·I^β4·V^β5·D^β6

    with the twin's coefficients and fixed t_on, I, V, D (``twins/history/inverter.py``).
    The cycles are counted once per (route, model) by ASTM E1049-85 rainflow on the
    1 Hz junction-rise trace above the coolant (the simulator's own inverter node:
    loss·R_th, τ = 30 s on / 600 s off) and stored as a cumulative per-route-second
    damage channel, so a step of any length adds an exact integral difference
    (like the energy channels in ``powertrain``). Per vehicle the damage scales with
    R_th^-β1 (ΔTj ∝ R_th) and with exp(β2/(Tj,min + 273.15)) at the step's coolant
    temperature (hot climates: higher Tj,min, shorter life). CIPS08 was fitted on
    45-150 K swings; the lumped node's 2-25 K swings understate chip-level swings,
    so ``INV_PC_LIFE_FACTOR`` (calibrated, 950) multiplies the damage: the same as
    chip swings ~4.7x the lumped ones under β1 = -4.416 (950^(1/4.416)).
    As solder fatigues the thermal resistance grows - the usual end-of-life
    criterion is +20 % R_th (ECPE AQG 324, 2019) - so R_th = R_th0·(1 + 0.2·(D/S)^3):
    the module runs visibly hotter in its last months (and wears faster).
    *Temperature-humidity-bias* (corrosion, passivation): while the HV bus is
    energised, damage at the Peck rate (D. S. Peck, "Comprehensive model for
    humidity testing correlation", IRPS 1986: TTF ∝ RH^-2.66·exp(0.79 eV / kT);
    for IGBT modules cf. C. Zorn, N. Kaminski, ISPSD 2015) relative to 25 °C /
    60 % RH, over ``INV_THB_LIFE_S`` (calibrated). This is what makes humid Miami
    inverters fail most.
    Failure when D ≥ S, S lognormal (median 1, σ 0.45) per unit.

Traction battery
    SoH fade (percent points) = calendar + cycle + fast-charge, times a knee:
    calendar ∝ exp(-Ea/R·(1/T - 1/298.15)), Ea = 50 kJ/mol, ×(0.6 + 0.8·SoC)
    (J. Schmalstieg et al., J. Power Sources 257 (2014) 325; P. Keil et al.,
    J. Electrochem. Soc. 163 (2016) A1872); cycle fade per equivalent full cycle,
    extra below 10 °C while charging (lithium plating); DC fast-charge energy adds
    fade per pack-equivalent, Arrhenius-hot and plating-cold (A. Tomaszewska et al.,
    "Lithium-ion battery fast charging: a review", eTransportation 1 (2019) 100011);
    knee: the rate grows linearly below 82 % SoH (P. M. Attia et al., "'Knees' in
    lithium-ion battery aging trajectories", J. Electrochem. Soc. 169 (2022) 060517).
    Per-pack ageing-rate spread lognormal σ 0.3 (T. Baumhöfer et al., J. Power
    Sources 247 (2014) 332). Field fade of ~1.5-2.5 %/year on average matches
    telematics studies (e.g. Geotab 2020/2024). *Failure* = the emitted
    StateOfHealth crossing the pack's end-of-life threshold (uniform 70-75 %),
    which gets a pack replacement. Separately an internal fault (cell short,
    module/contactor fault) with a Weibull (shape 2) hazard in Arrhenius- and
    fast-charge-weighted age gets a module *repair* (SoH unchanged).

12 V battery (lead-acid / AGM)
    Wear (0 new, 1 nominal) grows by grid corrosion - life halves per ~10 K above
    25 °C (IEEE Std 1188; P. Ruetschi, J. Power Sources 127 (2004) 33), no gain
    below 15 °C - and a little per wake, more for cold wakes. The wake dip
    (``low_voltage.wake_voltage``) deepens with wear and cold; a wake below
    10.5 V (ECU brown-out) fails: the car does not wake, i.e. the hazard rises with
    age and cold, and low wake voltages (emitted in the START message) precede it.
    A rare sudden internal short (10.5 V at rest) also fails the next wake.

Drive motor
    Insulation ageing, Arrhenius by the 10 K rule (V. M. Montsinger, AIEE Trans. 49
    (1930) 776; IEC 60034-18-21) on the winding hot spot (winding temperature
    + 10 K) while driving; inverter-fed windings also age by partial discharge
    (IEC 60034-18-41), which the calibrated ``MOTOR_LIFE_H_AT_REF`` absorbs. Plus
    bearing wear per km. Failure when D ≥ S, S lognormal (σ 0.6): rare, hot and
    hard-driven motors first.

Precursors (imperfect by design): a share of units of each component is
*symptomatic* once its projected time to failure - remaining strength over its
recent damage rate (30-day moving average) - falls below the unit's lead time
(lognormal, median 30 days): the inverter sets P0A3C (over-temperature), an
internal battery fault P0A7F and hotter cells, a failing motor insulation P0AA6
(isolation fault). Worn packs set P0A7F through ``dtc.condition_factor``; weak
12 V batteries set P0562 at low-voltage wakes. The other units fail without warning.

Vehicle ages: in-service dates spread over 0-6 years (not before the model
year); each component's state at start comes from a weekly "pre-history"
integration of the same models at the vehicle's expected duty and its region's
typical-year weather, with failures and renewals along the way.

Workshop log: a failure takes the vehicle out of service until the repair or
replacement (hours for a 12 V battery, days otherwise, in local business hours);
routine services about twice a year add ``inspection_ok`` records (and sometimes
a preventive 12 V replacement). Everything is drawn from the reliability
generator, so a seed fixes the log.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.simulation import low_voltage, thermal
from models.simulation.drive_cycles import DIST_M, KEY_ON_S, RouteSet, cumulate
from models.simulation.ev_models import EVModel
from models.simulation.powertrain import BATT_KJ, RouteEnergy, hvac_power_w
from models.simulation.schedule import DAY_OFF_PROB, MS_PER_DAY, utc_offset_ms
from models.simulation.vehicles import FleetParams
from models.simulation.weather import HOURS_PER_YEAR, SiteWeather

Array = NDArray[np.float64]
YEAR_S = 365.25 * 86_400.0
YEAR_MS = YEAR_S * 1000.0
NEVER_MS = np.iinfo(np.int64).max // 4

COMPONENTS: tuple[str, ...] = ("inverter", "traction_battery", "drive_motor", "lv_battery")
EVENTS: tuple[str, ...] = ("failure", "repair", "replacement", "inspection_ok")
INV, BATT, MOTOR, LV = range(4)
FAILURE, REPAIR, REPLACEMENT, INSPECTION_OK = range(4)

# ---------------------------------------------------------------- inverter
CIPS08_A, CIPS08_B1, CIPS08_B2 = 9.34e14, -4.416, 1285.0
CIPS08_B3, CIPS08_B4, CIPS08_B5, CIPS08_B6 = -0.463, -0.716, -0.761, -0.5
CIPS08_K = CIPS08_A * 15.0**CIPS08_B3 * 10.0**CIPS08_B4 * 6.5**CIPS08_B5 * 400.0**CIPS08_B6
INV_HYSTERESIS_K = 0.5            # reversals smaller than this are not cycles
INV_T_REF_C = 25.0                # coolant temperature at which the route channel is tabulated
INV_PC_LIFE_FACTOR = 950.0        # calibrated: damage multiplier on CIPS08 (see module doc)
INV_RTH_GROWTH = 0.20             # +20 % R_th at end of life (AQG 324 criterion)
INV_STRENGTH_SIGMA = 0.45
PECK_N, PECK_EA_EV, BOLTZMANN_EV = 2.66, 0.79, 8.617333e-5
THB_T_REF_C, THB_RH_REF = 25.0, 60.0
INV_THB_LIFE_S = 40_000.0 * 3600.0  # calibrated: energised time at 25 °C / 60 % RH for D = 1
INV_SYMPTOM_SHARE = 0.65          # bond-wire/solder wear-out shows heat first; gate-driver/THB deaths less so
# ---------------------------------------------------------------- traction battery
BATT_EA_J_PER_MOL, GAS_R = 50_000.0, 8.314462618
BATT_CAL_PCT_PER_YEAR = 1.3       # at 25 °C and 50 % SoC
BATT_CYC_PCT_PER_FEC = 0.003      # ~9 % after 3,000 full cycles
BATT_COLD_CHARGE_PER_K = 0.03     # cycle fade x(1 + 0.03·(10 - T)) when charging below 10 °C
BATT_DC_PCT_PER_PACK = 0.003      # extra fade per pack-equivalent of DC energy at 25 °C
BATT_DC_PLATING_PER_K = 0.04      # DC stress x exp(0.04·(20 - T)) below 20 °C
BATT_KNEE_PCT, BATT_KNEE_GAIN = 82.0, 0.15   # rate x(1 + 0.15·(82 - SoH)) below the knee
BATT_QUALITY_SIGMA = 0.30
BATT_EOL_PCT = (70.0, 75.0)
BATT_NEW_SOH = (99.0, 100.0)
BATT_FAULT_ETA_YEARS = 55.0       # calibrated Weibull scale (shape 2) in stress-years
BATT_FAULT_DC_YEARS_PER_PACK = 0.01  # one DC pack-equivalent ages the fault clock by ~3.7 days
BATT_FAULT_SYMPTOM_SHARE = 0.5
# ---------------------------------------------------------------- drive motor
MOTOR_HOTSPOT_K = 10.0
MOTOR_T_REF_C = 100.0
MOTOR_LIFE_H_AT_REF = 1_550.0     # calibrated (thermal + partial-discharge ageing of the windings)
MOTOR_BEARING_KM = 1.8e6          # km for D = 1 from bearing wear alone
MOTOR_STRENGTH_SIGMA = 0.6
MOTOR_SYMPTOM_SHARE = 0.4
# ---------------------------------------------------------------- 12 V battery
LV_LIFE_YEARS_25C = 8.5           # calibrated: corrosion wear 1 after this long at 25 °C
LV_CORROSION_FLOOR_C = 15.0
LV_WEAR_PER_WAKE = 1.5e-4
LV_COLD_WAKE_C = 0.0
LV_COLD_WAKE_WEAR = 3.0           # wear per wake x3 below 0 °C
LV_QUALITY_SIGMA = 0.30
LV_FAIL_V = 10.5
LV_WAKE_NOISE_V = 0.08
LV_DTC_V, LV_DTC_PROB = 10.8, 0.5
LV_SUDDEN_PER_YEAR = 0.006
LV_SERVICE_TEST_C = 0.0           # workshop load test judged at a cold-cranking-like reference
LV_SERVICE_REPLACE_V, LV_SERVICE_REPLACE_PROB = 10.9, 0.5
# ---------------------------------------------------------------- precursors and workshop
LEAD_MEDIAN_S, LEAD_SIGMA = 30 * 86_400.0, 0.6   # symptoms start ~1-12 weeks before the failure
RATE_TAU_S = 30 * 86_400.0                         # moving average of the damage rate
#: Onset-rate multipliers while symptomatic, on top of ``dtc.condition_factor`` (P0A3C's factor is 0.2
#: at normal temperatures): about 0.1-0.2 onsets per ten awake hours.
DTC_BOOST = {"inverter": 800.0, "battery_fault": 150.0, "motor": 60.0}
#: (median hours, lognormal σ) from failure to the repair/replacement record, and its event.
WORKSHOP = {INV: (60.0, 0.5, REPLACEMENT), BATT: (120.0, 0.5, REPLACEMENT), MOTOR: (96.0, 0.5, REPLACEMENT),
            LV: (4.0, 0.5, REPLACEMENT)}
BATT_FAULT_WORKSHOP = (72.0, 0.5, REPAIR)
SERVICE_INTERVAL_DAYS = (182.0, 20.0)  # mean, sd
MAX_AGE_YEARS = 6.0
EXPOSURES = ("keyon_h", "energised_h", "km", "dc_pack_eq", "inverter_damage", "motor_damage", "soh_fade_pct",
             "wakes", "cold_wakes")
PREHISTORY_STEP_DAYS = 7.0


# ============================================================================ physics
def cips08_cycles(delta_t_k: Array, tj_min_c: Array) -> Array:
    """CIPS08 cycles to failure (twin's fixed t_on, I, V, D)."""
    return CIPS08_K * np.maximum(delta_t_k, 1e-9) ** CIPS08_B1 * np.exp(CIPS08_B2 / (tj_min_c + 273.15))


def peck_factor(t_c: Array, rh_pct: Array) -> Array:
    """Humidity-temperature acceleration (Peck) relative to 25 °C / 60 % RH."""
    rh = np.clip(rh_pct, 1.0, 100.0) / THB_RH_REF
    return rh**PECK_N * np.exp(PECK_EA_EV / BOLTZMANN_EV * (1.0 / (THB_T_REF_C + 273.15) - 1.0 / (t_c + 273.15)))


def battery_arrhenius(t_c: Array) -> Array:
    """Calendar-ageing acceleration relative to 25 °C (Ea = 50 kJ/mol)."""
    return np.exp(BATT_EA_J_PER_MOL / GAS_R * (1.0 / 298.15 - 1.0 / (t_c + 273.15)))


def dc_stress(t_c: Array) -> Array:
    """Fast-charge degradation multiplier at pack temperature: Arrhenius hot, lithium plating cold."""
    return battery_arrhenius(t_c) + np.expm1(BATT_DC_PLATING_PER_K * np.maximum(20.0 - t_c, 0.0))


def knee(soh: Array) -> Array:
    """Fade-rate multiplier below the knee."""
    return 1.0 + BATT_KNEE_GAIN * np.maximum(BATT_KNEE_PCT - soh, 0.0)


def motor_weight(t_motor_c: Array) -> Array:
    """Insulation ageing rate relative to the reference hot-spot temperature (10 K rule)."""
    return np.exp2((t_motor_c + MOTOR_HOTSPOT_K - MOTOR_T_REF_C) / 10.0)


def lv_corrosion_per_s(t_c: Array) -> Array:
    """12 V wear per second from grid corrosion (life halves per +10 K above 25 °C, no gain below 15 °C)."""
    return np.exp2((np.maximum(t_c, LV_CORROSION_FLOOR_C) - 25.0) / 10.0) / (LV_LIFE_YEARS_25C * YEAR_S)


# ============================================================================ inverter route channel
def _first_order(x: Array, a: Array, block: int = 240) -> Array:
    """y[k] = a[k]·y[k-1] + x[k] along axis 1 (y[-1] = 0), vectorised in blocks."""
    rows, n = x.shape
    out = np.empty_like(x)
    y0 = np.zeros(rows)
    for s in range(0, n, block):
        aa, xx = a[:, s:s + block], x[:, s:s + block]
        prod = np.cumprod(aa, axis=1)                     # ≥ exp(-block/30) > 0: no underflow
        out[:, s:s + block] = prod * (y0[:, None] + np.cumsum(xx / prod, axis=1))
        y0 = out[:, s + aa.shape[1] - 1]
    return out


def _turning_points(x: Array, h: float) -> tuple[list[float], list[int]]:
    """Peaks and valleys of a cyclic trace rotated to start at its maximum, with hysteresis ``h``."""
    d = np.diff(x)
    nz = np.flatnonzero(d != 0.0)
    sign = np.sign(d[nz])
    cand = np.concatenate(([0], nz[np.flatnonzero(sign[1:] != sign[:-1]) + 1], [len(x) - 1]))
    vals, idx = x[cand].tolist(), cand.tolist()
    pts, pos = [vals[0]], [idx[0]]
    direction, c_v, c_i = 0, vals[0], idx[0]
    for v, i in zip(vals[1:], idx[1:]):
        if direction == 0:
            if abs(v - pts[0]) > h:
                direction, c_v, c_i = (1 if v > pts[0] else -1), v, i
        elif direction > 0:
            if v > c_v:
                c_v, c_i = v, i
            elif c_v - v > h:
                pts.append(c_v), pos.append(c_i)
                direction, c_v, c_i = -1, v, i
        elif v < c_v:
            c_v, c_i = v, i
        elif v - c_v > h:
            pts.append(c_v), pos.append(c_i)
            direction, c_v, c_i = 1, v, i
    if direction:
        pts.append(c_v), pos.append(c_i)
    return pts, pos


def _rainflow(pts: list[float], pos: list[int]) -> tuple[list[float], list[float], list[int]]:
    """ASTM E1049-85 three-point rainflow on a trace starting at its maximum (so every cycle closes).

    Returns each full cycle's range, minimum and the index where it closed.
    """
    stack_v: list[float] = []
    ranges, mins, at = [], [], []
    for v, i in zip(pts, pos):
        stack_v.append(v)
        while len(stack_v) >= 3:
            x = abs(stack_v[-1] - stack_v[-2])
            y = abs(stack_v[-2] - stack_v[-3])
            if x < y:
                break
            a, b = stack_v[-3], stack_v[-2]
            ranges.append(y)
            mins.append(a if a < b else b)
            at.append(i)
            del stack_v[-3:-1]
    return ranges, mins, at


@dataclass(frozen=True)
class InverterChannel:
    """Cumulative CIPS08 damage per route second, ``cum[row, k]`` (rows as ``RouteEnergy.row``).

    Tabulated at coolant ``INV_T_REF_C`` and R_th scale 1; ``tmin_rise_k`` is the
    damage-weighted mean junction rise above the coolant at the cycles' minima.
    """

    cum: Array
    tmin_rise_k: float
    per_keyon_s: Array       # damage per key-on second, per row


def inverter_channel(routes: RouteSet, energy: RouteEnergy) -> InverterChannel:
    """Rainflow the junction-rise trace of every (route, model) and tabulate its Miner damage."""
    n_models = energy.n_models
    key = np.repeat(routes.key_on, n_models, axis=0)
    loss_k = thermal.inverter_loss_w(np.abs(energy.motor_kw)) * thermal.INVERTER_RTH_K_PER_W
    a = np.where(key, math.exp(-1.0 / thermal.INVERTER_TAU_ON_S), math.exp(-1.0 / thermal.INVERTER_TAU_OFF_S))
    rise = _first_order(np.where(key, loss_k, 0.0) * (1.0 - a), a)
    length = rise.shape[1]
    per_s = np.zeros_like(rise)
    w_sum = w_min = 0.0
    for r in range(rise.shape[0]):
        j = int(np.argmax(rise[r]))
        trace = np.concatenate([rise[r, j:], rise[r, :j + 1]])
        ranges, mins, at = _rainflow(*_turning_points(trace, INV_HYSTERESIS_K))
        if not ranges:
            continue
        rng_a, min_a = np.asarray(ranges), np.asarray(mins)
        dmg = 1.0 / cips08_cycles(rng_a, INV_T_REF_C + min_a)
        np.add.at(per_s[r], (np.asarray(at) + j) % length, dmg)
        w_sum += float(dmg.sum())
        w_min += float((dmg * min_a).sum())
    cum = cumulate(per_s[:, :, None])
    keyon = np.repeat(routes.cum[:, -1, KEY_ON_S], n_models)
    return InverterChannel(cum, w_min / w_sum if w_sum > 0 else 0.0, cum[:, -1, 0] / keyon)


def tj_factor(t_cool_c: Array, tmin_rise_k: float) -> Array:
    """Damage multiplier of the CIPS08 Arrhenius term at the coolant temperature vs the tabulation temperature.

    Damage ∝ 1/Nf ∝ exp(-β2 / (Tj,min + 273.15)): hotter minima, shorter life (x1.4 from 5 °C to 30 °C).
    """
    return np.exp(CIPS08_B2 / (INV_T_REF_C + tmin_rise_k + 273.15) - CIPS08_B2 / (t_cool_c + tmin_rise_k + 273.15))


# ============================================================================ expected duty and climate
@dataclass(frozen=True)
class Duty:
    """Per-vehicle expected weekly duty (arrays of length n), for the pre-history."""

    keyon_s: Array
    km: Array
    energised_s: Array
    dc_pack_eq: Array          # DC energy / pack capacity
    fec: Array                 # equivalent full cycles (discharge energy / capacity)
    wakes: Array
    inv_pc_per_keyon_s: Array  # CIPS08 damage per key-on second at R_th 1 and the reference coolant


# Simulated / estimated duty, measured on 900-vehicle years at dt = 3600 s (key-on time and
# distance agree; DC energy and HV-on time come out ~10 % lower than estimated).
DUTY_CAL = {"keyon": 1.0, "km": 1.0, "dc": 0.9, "energised": 0.88}


def expected_duty(p: FleetParams, routes: RouteSet, energy: RouteEnergy, channel: InverterChannel,
                  models: Sequence[EVModel], mean_temp_c: Array) -> Duty:
    """Rough expected weekly duty of each vehicle from its standing profile, model and climate."""
    prof = p.profile
    days = (6.0 + prof.works_sunday) * (1.0 - DAY_OFF_PROB)
    drive_s = days * prof.shift_s
    keyon_share = float(np.mean(routes.cum[:, -1, KEY_ON_S])) / routes.length_s
    mps = float(np.mean(routes.cum[:, -1, DIST_M])) / routes.length_s
    km = drive_s * mps / 1000.0 * DUTY_CAL["km"]
    rows = np.arange(routes.n_routes)[:, None] * energy.n_models + np.arange(energy.n_models)[None, :]
    trac_kwh_per_km = (energy.cum[rows, -1, BATT_KJ].mean(axis=0) / 3600.0
                       / (float(np.mean(routes.cum[:, -1, DIST_M])) / 1000.0))[p.model_idx]
    hvac_kw = (p.aux_base_w + hvac_power_w(mean_temp_c, p.heat_pump)) / 1000.0
    kwh_shift = (trac_kwh_per_km * p.efficiency_factor * prof.shift_s * mps / 1000.0
                 + hvac_kw * prof.shift_s / 3600.0)
    cap = p.capacity_kwh
    usable = np.maximum(prof.ac_target - prof.dc_threshold, 0.05) * cap
    per_session = np.maximum(0.8 - prof.dc_threshold, 0.3) * cap
    dc_kwh = np.zeros(p.n)
    for q in (0.8, 0.9, 1.0, 1.1, 1.2):            # shift length spread U(0.75, 1.25)
        need = kwh_shift * q - usable
        dc_kwh += np.where(need > 0, np.ceil(need / per_session) * per_session, 0.0) / 5.0
    dc_wk = dc_kwh * days * DUTY_CAL["dc"]
    kwh_wk = kwh_shift * days
    charge_s = kwh_wk / np.minimum(prof.evse_kw, p.ac_kw) * 3600.0
    return Duty(keyon_s=drive_s * keyon_share * DUTY_CAL["keyon"], km=km,
                energised_s=(drive_s + charge_s) * DUTY_CAL["energised"],
                dc_pack_eq=dc_wk / cap, fec=kwh_wk / cap, wakes=days,
                inv_pc_per_keyon_s=channel.per_keyon_s.reshape(routes.n_routes, -1).mean(axis=0)[p.model_idx])


@dataclass(frozen=True)
class Climate:
    """Per region and typical-year week (52): means of the ageing weights over the hourly TMY data."""

    temp: Array
    peck: Array
    batt_arr: Array
    lv_corrosion: Array        # wear per week
    cold_wake_c: Array         # a cold morning of the week (10th percentile)
    tj: Array                  # CIPS08 Arrhenius term at the coolant (ambient + 4 K)
    motor: Array               # motor weight at ambient + typical driving rise


COOLANT_RISE_K = 4.0
MOTOR_RISE_K = 25.0            # typical winding rise over ambient while driving (pilot runs)
PACK_RISE_K = 3.0


def climate(sites: Sequence[SiteWeather], tmin_rise_k: float) -> Climate:
    """Weekly climate tables from each region's typical year."""
    out: dict[str, list[Array]] = {k: [] for k in Climate.__dataclass_fields__}
    week = np.minimum(np.arange(HOURS_PER_YEAR) // 168, 51)
    for s in sites:
        t, rh = s.temp_air_c, s.rh_pct
        series = {"temp": t, "peck": peck_factor(t, rh), "batt_arr": battery_arrhenius(t + PACK_RISE_K),
                  "lv_corrosion": lv_corrosion_per_s(t) * 7 * 86_400.0,
                  "tj": tj_factor(t + COOLANT_RISE_K, tmin_rise_k), "motor": motor_weight(t + MOTOR_RISE_K)}
        for k, v in series.items():
            out[k].append(np.bincount(week, v, 52) / np.bincount(week, None, 52))
        out["cold_wake_c"].append(np.array([np.percentile(t[week == w], 10) for w in range(52)]))
    return Climate(**{k: np.stack(v) for k, v in out.items()})


def week_of_year(site: SiteWeather, ts_ms: NDArray[np.int64]) -> NDArray[np.int64]:
    """Typical-year week (0-51) of UTC timestamps at ``site``."""
    return np.minimum(np.floor(site.hour_position(ts_ms)).astype(np.int64) % HOURS_PER_YEAR // 168, 51)


# ============================================================================ state
@dataclass
class StepStress:
    """What one simulator step did to each vehicle (arrays of length n unless noted)."""

    t0_ms: int
    t1_ms: int
    dt_s: float
    inv_cycles: Array        # CIPS08 damage at R_th 1 / reference coolant from the route channel
    t_cool0: Array
    t_cool1: Array
    energised_s: Array       # seconds with the HV bus live (key-on driving, charging)
    t_amb: Array
    rh: Array
    t_batt0: Array
    t_batt1: Array
    soc0: Array
    soc1: Array
    charging: NDArray[np.bool_]
    dc_pack_eq: Array        # DC energy into the pack / capacity
    t_motor0: Array
    t_motor1: Array
    keyon_s: Array
    odo0: Array
    odo1: Array
    parked: NDArray[np.bool_]


@dataclass
class StepOutcome:
    """Vehicles that failed (stop and stay parked) and vehicles back in service (with the time)."""

    soh: Array
    stopped: NDArray[np.int64]
    returned: NDArray[np.int64]
    returned_ms: NDArray[np.int64]


def iso_utc(ms: int) -> str:
    """ISO 8601 UTC with seconds, e.g. ``2026-03-04T10:15:00Z``."""
    return dt.datetime.fromtimestamp(ms // 1000, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Reliability:
    """Ages, wear, failures and the maintenance log of a fleet (all arrays length n)."""

    def __init__(self, rng: np.random.Generator, p: FleetParams, routes: RouteSet, energy: RouteEnergy,
                 channel: InverterChannel, models: Sequence[EVModel], sites: Sequence[SiteWeather],
                 start_ms: int) -> None:
        self._rng, self._p, self._sites = rng, p, list(sites)
        self.channel = channel
        n = p.n
        self.events: list[tuple[int, int, int, int, float]] = []
        self._drained = 0
        # ---- ages
        years = np.array([models[m].year for m in p.model_idx], dtype=np.float64)
        start_year = 1970.0 + start_ms / YEAR_MS
        max_age = np.clip(start_year - (years - 0.5), 0.25, MAX_AGE_YEARS)
        self.age_years = rng.uniform(0.0, 1.0, n) * max_age
        self.in_service_ms = (start_ms - self.age_years * YEAR_MS).astype(np.int64)
        # ---- per-unit draws for the first unit of every component
        self.inv_d, self.batt_fault_d, self.motor_d = np.zeros(n), np.zeros(n), np.zeros(n)
        self.inv_s, self.inv_sym, self.inv_lead = np.zeros(n), np.zeros(n, bool), np.zeros(n)
        self.bf_s, self.bf_sym, self.bf_lead = np.zeros(n), np.zeros(n, bool), np.zeros(n)
        self.motor_s, self.motor_sym, self.motor_lead = np.zeros(n), np.zeros(n, bool), np.zeros(n)
        self.batt_quality, self.batt_eol = np.ones(n), np.zeros(n)
        self.lv_wear, self.lv_quality, self.lv_sudden_d, self.lv_sudden_s = (np.zeros(n), np.ones(n), np.zeros(n),
                                                                            np.zeros(n))
        self.lv_dead = np.zeros(n, bool)
        self.soh0 = np.zeros(n)      # SoH at the start (after the pre-history); later: a new pack's SoH
        everyone = np.arange(n)
        for c in range(4):
            self._new_unit(c, everyone)
        self._new_fault_unit(everyone)
        # ---- pre-history
        self._climate = climate(self._sites, channel.tmin_rise_k)
        mean_t = self._climate.temp.mean(axis=1)[p.region_idx]
        self.duty = expected_duty(p, routes, energy, channel, models, mean_t)
        self.odo0 = (self.age_years * 52.18 * self.duty.km * rng.lognormal(0.0, 0.1, n)
                     + rng.uniform(50.0, 500.0, n))
        self.prehistory_failures = np.zeros((n, 4), dtype=np.int64)
        self.inv_rate, self.bf_rate, self.motor_rate = np.zeros(n), np.zeros(n), np.zeros(n)   # damage per s
        self._prehistory(start_ms)
        # ---- workshop
        self.pending_ms = np.zeros((n, 4), dtype=np.int64)      # 0 = nothing pending
        self.pending_event = np.zeros((n, 4), dtype=np.int8)
        self.batt_fault_pending = np.zeros(n, bool)             # pending battery job is a fault repair
        first = start_ms + rng.uniform(0.0, SERVICE_INTERVAL_DAYS[0], n) * MS_PER_DAY
        self.next_service_ms = np.array([self._business_hours(i, int(t), start_ms) for i, t in enumerate(first)],
                                        dtype=np.int64)
        self.service_count = rng.integers(0, 2, n)
        #: Ground-truth stresses since the start, per vehicle (for inspection and tests; the twin
        #: only sees their traces in the telemetry).
        self.exposure: dict[str, Array] = {k: np.zeros(n) for k in EXPOSURES}

    # ------------------------------------------------------------------ units
    def _new_unit(self, c: int, idx: NDArray[np.int64]) -> None:
        rng, k = self._rng, len(idx)
        if k == 0:
            return
        if c == INV:
            self.inv_d[idx] = 0.0
            self.inv_s[idx] = rng.lognormal(0.0, INV_STRENGTH_SIGMA, k)
            self.inv_sym[idx] = rng.random(k) < INV_SYMPTOM_SHARE
            self.inv_lead[idx] = rng.lognormal(math.log(LEAD_MEDIAN_S), LEAD_SIGMA, k)
        elif c == BATT:
            self.soh0[idx] = rng.uniform(*BATT_NEW_SOH, k)
            self.batt_quality[idx] = rng.lognormal(0.0, BATT_QUALITY_SIGMA, k)
            self.batt_eol[idx] = rng.uniform(*BATT_EOL_PCT, k)
        elif c == MOTOR:
            self.motor_d[idx] = 0.0
            self.motor_s[idx] = rng.lognormal(0.0, MOTOR_STRENGTH_SIGMA, k)
            self.motor_sym[idx] = rng.random(k) < MOTOR_SYMPTOM_SHARE
            self.motor_lead[idx] = rng.lognormal(math.log(LEAD_MEDIAN_S), LEAD_SIGMA, k)
        else:
            self.lv_wear[idx] = 0.0
            self.lv_quality[idx] = rng.lognormal(0.0, LV_QUALITY_SIGMA, k)
            self.lv_sudden_d[idx] = 0.0
            self.lv_sudden_s[idx] = rng.exponential(1.0, k)
            self.lv_dead[idx] = False

    def _new_fault_unit(self, idx: NDArray[np.int64]) -> None:
        rng, k = self._rng, len(idx)
        if k == 0:
            return
        self.batt_fault_d[idx] = 0.0
        self.bf_s[idx] = BATT_FAULT_ETA_YEARS * np.sqrt(rng.exponential(1.0, k))   # Weibull(2, eta)
        self.bf_sym[idx] = rng.random(k) < BATT_FAULT_SYMPTOM_SHARE
        self.bf_lead[idx] = rng.lognormal(math.log(LEAD_MEDIAN_S), LEAD_SIGMA, k)

    # ------------------------------------------------------------------ pre-history
    def _prehistory(self, start_ms: int) -> None:
        """Integrate every component weekly from the in-service date to ``start_ms`` (renewing failures)."""
        p, cl, du, rng = self._p, self._climate, self.duty, self._rng
        n = p.n
        region = p.region_idx
        step_s = PREHISTORY_STEP_DAYS * 86_400.0
        weeks = np.ceil(self.age_years * YEAR_S / step_s).astype(np.int64)
        # remaining time of the vehicle's first (partial) week so every vehicle ends exactly at start_ms
        first = self.age_years * YEAR_S - (weeks - 1) * step_s
        rth = p.inverter_rth_scale
        soh = self.soh0                    # renewed packs are written into it by _new_unit
        for k in range(int(weeks.max(initial=0))):
            live = weeks > k
            if not live.any():
                break
            idx = np.flatnonzero(live)
            back = weeks[idx] - k          # weeks before start
            frac = first[idx] / step_s if k == 0 else np.ones(len(idx))   # the oldest week is partial
            t_ms = (start_ms - (back - 0.5) * step_s * 1000.0).astype(np.int64)
            wk = np.empty(len(idx), dtype=np.int64)
            for r, site in enumerate(self._sites):
                sel = region[idx] == r
                if sel.any():
                    wk[sel] = week_of_year(site, t_ms[sel])
            reg = region[idx]
            # inverter
            g = (1.0 + INV_RTH_GROWTH * np.minimum(self.inv_d[idx] / self.inv_s[idx], 1.0) ** 3) * rth[idx]
            d_inv = (du.keyon_s[idx] * du.inv_pc_per_keyon_s[idx] * cl.tj[reg, wk] * INV_PC_LIFE_FACTOR
                     * g ** -CIPS08_B1
                     + du.energised_s[idx] * cl.peck[reg, wk] / INV_THB_LIFE_S)
            self.inv_d[idx] += d_inv * frac
            self.inv_rate[idx] = d_inv / step_s
            # traction battery
            q = self.batt_quality[idx]
            t_pack = cl.temp[reg, wk] + PACK_RISE_K
            fade = q * knee(soh[idx]) * (
                BATT_CAL_PCT_PER_YEAR * cl.batt_arr[reg, wk] * 1.08 * step_s / YEAR_S
                + BATT_CYC_PCT_PER_FEC * du.fec[idx] * (1.0 + BATT_COLD_CHARGE_PER_K * np.maximum(10.0 - t_pack, 0)
                                                        * 0.5)
                + BATT_DC_PCT_PER_PACK * du.dc_pack_eq[idx] * dc_stress(t_pack + self._dc_rise(idx)))
            soh[idx] -= fade * frac
            d_bf = cl.batt_arr[reg, wk] * step_s / YEAR_S + BATT_FAULT_DC_YEARS_PER_PACK * du.dc_pack_eq[idx]
            self.batt_fault_d[idx] += frac * d_bf
            self.bf_rate[idx] = d_bf / step_s
            # motor
            d_mot = du.keyon_s[idx] * cl.motor[reg, wk] / (MOTOR_LIFE_H_AT_REF * 3600.0) + du.km[idx] / MOTOR_BEARING_KM
            self.motor_d[idx] += frac * d_mot
            self.motor_rate[idx] = d_mot / step_s
            # 12 V
            cold = cl.cold_wake_c[reg, wk]
            self.lv_wear[idx] += frac * self.lv_quality[idx] * (
                cl.lv_corrosion[reg, wk]
                + LV_WEAR_PER_WAKE * du.wakes[idx] * np.where(cold < LV_COLD_WAKE_C, LV_COLD_WAKE_WEAR, 1.0))
            self.lv_sudden_d[idx] += frac * LV_SUDDEN_PER_YEAR * step_s / YEAR_S * (1.0 + 2.0 * self.lv_wear[idx])
            # failures and renewals
            worst = low_voltage.wake_voltage(cold, self.lv_wear[idx]) - 1.3 * LV_WAKE_NOISE_V
            renew = {INV: idx[self.inv_d[idx] >= self.inv_s[idx]],
                     BATT: idx[soh[idx] <= self.batt_eol[idx]],
                     MOTOR: idx[self.motor_d[idx] >= self.motor_s[idx]],
                     LV: idx[(worst < LV_FAIL_V) | (self.lv_sudden_d[idx] >= self.lv_sudden_s[idx])]}
            for c, who in renew.items():
                self.prehistory_failures[who, c] += 1
                self._new_unit(c, who)
            fault = idx[self.batt_fault_d[idx] >= self.bf_s[idx]]
            self._new_fault_unit(fault)
        np.clip(soh, 0.0, 100.0, out=soh)
        self.lv_dead[:] = False

    def _dc_rise(self, idx: NDArray[np.int64]) -> Array:
        """Typical pack temperature rise over ambient during a fast charge, by cooling system."""
        g = self._p.batt_cool_g[idx]
        return np.where(g >= 300.0, 8.0, np.where(g > 0.0, 15.0, 25.0))

    # ------------------------------------------------------------------ signals the simulator emits
    def inverter_rth_factor(self) -> Array:
        """R_th multiplier from solder fatigue (grows as the cube of the consumed life)."""
        return 1.0 + INV_RTH_GROWTH * np.minimum(self.inv_d / self.inv_s, 1.0) ** 3

    def battery_imbalance_factor(self) -> Array:
        """Cell-temperature spread multiplier: a developing internal fault runs a cell hot."""
        return np.where(self._symptomatic_fault(), 3.0, 1.0)

    def _symptomatic_fault(self) -> NDArray[np.bool_]:
        return (self.bf_sym & (self.bf_s - self.batt_fault_d <= self.bf_rate * self.bf_lead)
                & (self.pending_ms[:, BATT] == 0))

    def dtc_boost(self, n_codes: int, codes: Sequence[str]) -> Array:
        """Per-vehicle, per-code multipliers on the DTC onset rates (precursors of failures)."""
        f = np.ones((self._p.n, n_codes))
        inv = self.inv_sym & (self.inv_s - self.inv_d <= self.inv_rate * self.inv_lead) & (self.pending_ms[:, INV] == 0)
        mot = (self.motor_sym & (self.motor_s - self.motor_d <= self.motor_rate * self.motor_lead)
               & (self.pending_ms[:, MOTOR] == 0))
        f[:, codes.index("P0A3C")] *= np.where(inv, DTC_BOOST["inverter"], 1.0)
        f[:, codes.index("P0A7F")] *= np.where(self._symptomatic_fault(), DTC_BOOST["battery_fault"], 1.0)
        f[:, codes.index("P0AA6")] *= np.where(mot, DTC_BOOST["motor"], 1.0)
        return f

    @property
    def out_of_service(self) -> NDArray[np.bool_]:
        """Vehicles waiting for a repair or replacement."""
        return (self.pending_ms > 0).any(axis=1)

    # ------------------------------------------------------------------ wake (12 V)
    def wake(self, idx: NDArray[np.int64], t_ms: int, t_amb: Array, odo: Array
             ) -> tuple[NDArray[np.bool_], Array, NDArray[np.bool_]]:
        """Vehicles ``idx`` try to wake at ``t_ms``: (woke, wake voltage, P0562 set) per vehicle of ``idx``.

        A wake below ``LV_FAIL_V`` - or with an internally shorted battery - fails: a
        12 V failure is recorded and the vehicle stays parked until the replacement.
        """
        rng = self._rng
        wear = self.lv_wear[idx]
        v = low_voltage.wake_voltage(t_amb, wear) + rng.normal(0.0, LV_WAKE_NOISE_V, len(idx))
        v = np.where(self.lv_dead[idx], low_voltage.DEAD_REST_V - 1.5, v)
        failed = v < LV_FAIL_V
        cold = t_amb < LV_COLD_WAKE_C
        self.lv_wear[idx] += LV_WEAR_PER_WAKE * self.lv_quality[idx] * np.where(cold, LV_COLD_WAKE_WEAR, 1.0)
        self.exposure["wakes"][idx] += 1.0
        self.exposure["cold_wakes"][idx] += cold
        dtc = (~failed) & (v < LV_DTC_V) & (rng.random(len(idx)) < LV_DTC_PROB)
        for i in np.flatnonzero(failed).tolist():
            self._fail(int(idx[i]), LV, t_ms, float(odo[i]))
        return ~failed, np.round(v, 2), dtc

    # ------------------------------------------------------------------ step
    def step(self, s: StepStress, soh: Array) -> StepOutcome:
        """Accumulate one step's wear, detect failures, complete due repairs and services."""
        p = self._p
        dt_s = s.dt_s
        busy = self.pending_ms > 0
        # inverter: power cycling (route channel) + humidity while energised
        g = self.inverter_rth_factor() * p.inverter_rth_scale
        d_inv = (s.inv_cycles * INV_PC_LIFE_FACTOR * g ** -CIPS08_B1
                 * tj_factor(0.5 * (s.t_cool0 + s.t_cool1), self.channel.tmin_rise_k)
                 + s.energised_s * peck_factor(s.t_amb, s.rh) / INV_THB_LIFE_S)
        inv0 = self.inv_d.copy()
        self.inv_d = np.where(busy[:, INV], self.inv_d, self.inv_d + d_inv)
        # traction battery
        w_cal = 0.5 * (battery_arrhenius(s.t_batt0) + battery_arrhenius(s.t_batt1))
        soc_mid = 0.5 * (s.soc0 + s.soc1)
        t_mid = 0.5 * (s.t_batt0 + s.t_batt1)
        fec = np.abs(s.soc1 - s.soc0) * 0.5
        cold = np.where(s.charging, BATT_COLD_CHARGE_PER_K * np.maximum(10.0 - t_mid, 0.0), 0.0)
        fade = self.batt_quality * knee(soh) * (
            BATT_CAL_PCT_PER_YEAR * w_cal * (0.6 + 0.8 * soc_mid) * dt_s / YEAR_S
            + BATT_CYC_PCT_PER_FEC * fec * (1.0 + cold)
            + BATT_DC_PCT_PER_PACK * s.dc_pack_eq * dc_stress(t_mid))
        soh0 = soh
        soh = np.maximum(soh - fade, 0.0)
        bf0 = self.batt_fault_d.copy()
        self.batt_fault_d = np.where(busy[:, BATT], self.batt_fault_d, self.batt_fault_d + (
            w_cal * dt_s / YEAR_S + BATT_FAULT_DC_YEARS_PER_PACK * s.dc_pack_eq))
        # motor: insulation while driving (trapezoid on the weight) + bearings per km
        km = s.odo1 - s.odo0
        d_mot = (s.keyon_s * 0.5 * (motor_weight(s.t_motor0) + motor_weight(s.t_motor1))
                 / (MOTOR_LIFE_H_AT_REF * 3600.0) + km / MOTOR_BEARING_KM)
        mot0 = self.motor_d.copy()
        self.motor_d = np.where(busy[:, MOTOR], self.motor_d, self.motor_d + d_mot)
        # 12 V: corrosion; sudden internal short (found at the next wake)
        self.lv_wear += self.lv_quality * lv_corrosion_per_s(s.t_amb) * dt_s
        self.lv_sudden_d += LV_SUDDEN_PER_YEAR * dt_s / YEAR_S * (1.0 + 2.0 * self.lv_wear)
        self.lv_dead |= (self.lv_sudden_d >= self.lv_sudden_s) & ~busy[:, LV]

        ex = self.exposure
        ex["keyon_h"] += s.keyon_s / 3600.0
        ex["energised_h"] += s.energised_s / 3600.0
        ex["km"] += km
        ex["dc_pack_eq"] += s.dc_pack_eq
        ex["inverter_damage"] += d_inv
        ex["motor_damage"] += d_mot
        ex["soh_fade_pct"] += fade
        # 30-day moving averages of the damage rates (for the symptom onset)
        keep = math.exp(-dt_s / RATE_TAU_S)
        self.inv_rate = keep * self.inv_rate + (1.0 - keep) * d_inv / dt_s
        self.bf_rate = keep * self.bf_rate + (1.0 - keep) * (self.batt_fault_d - bf0) / dt_s
        self.motor_rate = keep * self.motor_rate + (1.0 - keep) * d_mot / dt_s

        # failures, at the interpolated crossing time within the step
        def crossing(d0: Array, d1: Array, limit: Array) -> Array:
            return np.clip((limit - d0) / np.maximum(d1 - d0, 1e-300), 0.0, 1.0)

        stopped: list[int] = []
        checks = (
            (INV, (~busy[:, INV]) & (self.inv_d >= self.inv_s), crossing(inv0, self.inv_d, self.inv_s), False),
            (BATT, (~busy[:, BATT]) & (soh <= self.batt_eol), crossing(-soh0, -soh, -self.batt_eol), False),
            (BATT, (~busy[:, BATT]) & (self.batt_fault_d >= self.bf_s),
             crossing(bf0, self.batt_fault_d, self.bf_s), True),
            (MOTOR, (~busy[:, MOTOR]) & (self.motor_d >= self.motor_s), crossing(mot0, self.motor_d, self.motor_s),
             False),
        )
        span = s.t1_ms - s.t0_ms
        for c, hit, frac, fault in checks:
            for i in np.flatnonzero(hit).tolist():
                if self.pending_ms[i, c]:
                    continue                 # EOL and fault in the same step: one workshop job
                # A vehicle that moved during the step drove on to its end (the step is already
                # integrated): the failure stops it there. Otherwise it happened at the crossing.
                moved = s.odo1[i] > s.odo0[i]
                t_fail = s.t1_ms if moved else s.t0_ms + int(round(float(frac[i]) * span))
                self._fail(i, c, t_fail, float(s.odo1[i]), fault)
                stopped.append(i)
        # repairs and replacements that are due
        due_r, due_c = np.nonzero((self.pending_ms > 0) & (self.pending_ms <= s.t1_ms))
        returned: dict[int, int] = {}
        for i, c in zip(due_r.tolist(), due_c.tolist()):
            t = int(self.pending_ms[i, c])
            self._record(t, i, c, int(self.pending_event[i, c]), float(s.odo1[i]))
            self.pending_ms[i, c] = 0
            if c == BATT and self.batt_fault_pending[i]:
                self.batt_fault_pending[i] = False
                self._new_fault_unit(np.array([i]))
            else:
                self._new_unit(c, np.array([i]))
                if c == BATT:
                    soh[i] = self.soh0[i]
                    self._new_fault_unit(np.array([i]))
            if not self.pending_ms[i].any():
                returned[i] = max(returned.get(i, 0), t)
        self._services(s, soh)
        ret = np.array(sorted(returned), dtype=np.int64)
        return StepOutcome(soh, np.array(sorted(set(stopped)), dtype=np.int64), ret,
                           np.array([returned[i] for i in ret.tolist()], dtype=np.int64))

    def _services(self, s: StepStress, soh: Array) -> None:
        """Routine services booked by the step end: done if the vehicle is parked, else rebooked a day later."""
        due = self.next_service_ms <= s.t1_ms
        if not due.any():
            return
        rng = self._rng
        mean_d, sd_d = SERVICE_INTERVAL_DAYS
        for i in np.flatnonzero(due & ~(s.parked & ~self.out_of_service)).tolist():
            self.next_service_ms[i] = self._business_hours(i, int(self.next_service_ms[i]) + MS_PER_DAY, s.t1_ms)
        for i in np.flatnonzero(due & s.parked & ~self.out_of_service).tolist():
            t = max(int(self.next_service_ms[i]), s.t0_ms)
            odo = float(s.odo1[i])
            self.service_count[i] += 1
            v_test = float(low_voltage.wake_voltage(np.array([LV_SERVICE_TEST_C]), self.lv_wear[i:i + 1])[0])
            if (v_test < LV_SERVICE_REPLACE_V or self.lv_dead[i]) and rng.random() < LV_SERVICE_REPLACE_PROB:
                self._record(t, i, LV, REPLACEMENT, odo)
                self._new_unit(LV, np.array([i]))
            else:
                self._record(t, i, LV, INSPECTION_OK, odo)
            self._record(t, i, BATT, INSPECTION_OK, odo)
            if self.service_count[i] % 2 == 0:
                self._record(t, i, INV, INSPECTION_OK, odo)
                self._record(t, i, MOTOR, INSPECTION_OK, odo)
            self.next_service_ms[i] = self._business_hours(
                i, s.t1_ms + int(max(rng.normal(mean_d, sd_d), 60.0) * MS_PER_DAY), s.t1_ms)

    # ------------------------------------------------------------------ log
    def _fail(self, i: int, c: int, t_ms: int, odo: float, fault: bool = False) -> None:
        self._record(t_ms, i, c, FAILURE, odo)
        median_h, sigma, event = BATT_FAULT_WORKSHOP if fault else WORKSHOP[c]
        if fault:
            self.batt_fault_pending[i] = True
        self.pending_ms[i, c] = self._workshop_time(i, t_ms, float(self._rng.lognormal(math.log(median_h), sigma)))
        self.pending_event[i, c] = event

    def _business_hours(self, i: int, t_ms: int, after_ms: int | None = None) -> int:
        """A random 5-minute mark between 08:00 and 17:00 local time on vehicle ``i``'s local day of ``t_ms``
        (or the next day, if that would not be after ``after_ms``)."""
        tz = self._p.timezones[int(self._p.region_idx[i])]
        off = utc_offset_ms(tz, t_ms)
        day = (t_ms + off) // MS_PER_DAY
        local = int(self._rng.uniform(8.0, 17.0) * 3_600_000) // 300_000 * 300_000
        out = int(day * MS_PER_DAY + local - off)
        if after_ms is not None and out <= after_ms:
            out += MS_PER_DAY
        return out

    def _workshop_time(self, i: int, t_ms: int, delay_h: float) -> int:
        """Completion time: ``delay_h`` later; jobs over a day finish in local business hours (08-17)."""
        t = t_ms + int(delay_h * 3_600_000)
        if delay_h < 24.0:
            return (t // 300_000 + 1) * 300_000                 # next 5-minute mark
        return self._business_hours(i, t, t_ms)

    def _record(self, t_ms: int, i: int, c: int, event: int, odo: float) -> None:
        self.events.append((int(t_ms), i, c, event, round(odo, 1)))

    def event_dicts(self, vins: Sequence[str], since: int = 0) -> list[dict[str, Any]]:
        """Events from index ``since`` of the log as dicts, sorted by time (stable)."""
        rows = sorted(self.events[since:], key=lambda e: e[0])
        return [{"vin": vins[i], "component": COMPONENTS[c], "event": EVENTS[e], "time": iso_utc(t),
                 "odometer_km": odo} for t, i, c, e, odo in rows]
