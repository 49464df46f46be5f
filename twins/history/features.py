"""Flat model features from a ``HistoryState``: stable names, documented units (``FEATURES``).

Unknown values (nothing observed yet: a peak, a wake voltage, a trend from < 2 days)
are ``NaN``. Time windows end at the day of the last applied reading (UTC days).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from twins.history.daily import soh_slope_per_day, window
from twins.history.dtc import ONSET_TAU_DAYS, TRACKED, days_since_seen, decayed_onsets
from twins.history.inverter import DT_LABELS, MEAN_LABELS, cycle_summary
from twins.history.state import HistoryState, totals


class FeatureDoc(NamedTuple):
    """One feature: its key in :func:`features`, unit and meaning."""

    name: str
    unit: str
    meaning: str


_BIN_NAMES = tuple(f"inv_cycles_dt_{d}_tm_{m}" for d in DT_LABELS for m in MEAN_LABELS)
_DT_TEXT = ("ΔT < 10 K", "10 ≤ ΔT < 20 K", "20 ≤ ΔT < 40 K", "40 ≤ ΔT < 60 K", "ΔT ≥ 60 K")
_MEAN_TEXT = ("< 40 °C", "40-70 °C", "≥ 70 °C")

FEATURES: tuple[FeatureDoc, ...] = (
    FeatureDoc("history_observed_h", "h", "Observed time: sum of update intervals, each capped at 3,900 s."),
    FeatureDoc("history_updates", "count", "Readings folded into the history."),
    # inverter
    FeatureDoc("inv_temp_peak_c", "°C", "Highest inverter temperature seen."),
    FeatureDoc("inv_hours_above_80c", "h", "Time with inverter temperature > 80 °C."),
    FeatureDoc("inv_hours_above_100c", "h", "Time with inverter temperature > 100 °C."),
    FeatureDoc("inv_cycles_total", "cycles", "Rainflow thermal cycles (ASTM E1049-85, 2 K hysteresis); "
               "half cycles and the open residue count 0.5."),
    *(FeatureDoc(n, "cycles", f"Inverter rainflow cycles with swing {dt} and mean temperature {tm}.")
      for n, (dt, tm) in zip(_BIN_NAMES, ((dt, tm) for dt in _DT_TEXT for tm in _MEAN_TEXT))),
    FeatureDoc("inv_damage_cips08", "1", "Miner damage sum Σ n/Nf with the CIPS08 power-cycling model "
               "(Bayerer et al. 2008; fixed t_on, I, V, D). Relative wear proxy; 1 = nominal end of life."),
    # traction battery
    FeatureDoc("batt_ah_throughput", "Ah", "∫|pack current| dt, charge and discharge."),
    FeatureDoc("batt_efc", "cycles", "Equivalent full cycles Σ|ΔSoC| / 200 % (full discharge + full charge = 1)."),
    FeatureDoc("batt_dcfc_sessions", "count", "DC fast-charge sessions (rising edges of DC charge current > 5 A)."),
    FeatureDoc("batt_dcfc_kwh", "kWh", "Energy delivered by DC fast charging (∫ I_dc · V_pack dt)."),
    FeatureDoc("batt_hours_soc_above_90", "h", "Time with SoC > 90 %."),
    FeatureDoc("batt_hours_soc_below_10", "h", "Time with SoC < 10 %."),
    FeatureDoc("batt_arrhenius_eq_hours_25c", "h", "Calendar-ageing proxy: Arrhenius-weighted time at the average "
               "cell temperature (Ea = 45 kJ/mol, ≈1.8× per +10 K), in equivalent hours at 25 °C."),
    FeatureDoc("batt_arrhenius_mean_factor", "1", "Mean Arrhenius acceleration vs 25 °C over the time with a known "
               "pack temperature (NaN if none)."),
    FeatureDoc("batt_cell_temp_peak_c", "°C", "Highest Temperature.Max (hottest cell) seen."),
    FeatureDoc("batt_soh_pct", "%", "Last known state of health (NaN if unknown)."),
    FeatureDoc("batt_soh_slope_pct_per_day", "%/day", "Least-squares slope of daily SoH over the last 30 days "
               "(NaN with < 2 days)."),
    # drive motor
    FeatureDoc("motor_temp_peak_c", "°C", "Highest drive-motor temperature seen."),
    FeatureDoc("motor_hours_above_120c", "h", "Time with motor temperature > 120 °C."),
    FeatureDoc("motor_hours_above_150c", "h", "Time with motor temperature > 150 °C."),
    FeatureDoc("motor_load_hours", "h", "Time with |motor power| > 1 kW (speed > 1 km/h if power unknown)."),
    # 12 V battery
    FeatureDoc("lv_wake_min_v", "V", "Lowest 12 V voltage within 10 s of any wake (OFF/LOCK -> ACC/ON/START)."),
    FeatureDoc("lv_wake_last_v", "V", "Lowest 12 V voltage within 10 s of the most recent wake."),
    FeatureDoc("lv_wakes", "count", "Wake events (OFF/LOCK -> ACC/ON/START)."),
    FeatureDoc("lv_cold_wakes", "count", "Wake events with outside air temperature < -10 °C."),
    FeatureDoc("lv_min_v", "V", "Lowest 12 V voltage seen."),
    FeatureDoc("lv_hours_below_12v", "h", "Time with 12 V voltage < 12.0 V."),
    FeatureDoc("lv_low_events", "count", "Drops below 11.8 V (edge-triggered, re-armed at 11.9 V)."),
    # usage
    FeatureDoc("usage_distance_km", "km", "Distance from odometer increases."),
    FeatureDoc("usage_driving_hours", "h", "Time with speed > 1 km/h."),
    FeatureDoc("usage_harsh_accel", "count", "Harsh accelerations (longitudinal > 3 m/s², edge-triggered)."),
    FeatureDoc("usage_harsh_brake", "count", "Harsh braking (longitudinal < -4 m/s², edge-triggered)."),
    FeatureDoc("usage_harsh_per_100km", "1/100 km", "Harsh events (accel + brake) per 100 km (NaN below 1 km)."),
    # daily windows
    FeatureDoc("daily_days_7d", "days", "Days covered by the 7-day window (today and up to 6 days before it, "
               "since first seen)."),
    FeatureDoc("daily_days_30d", "days", "Days covered by the 30-day window."),
    FeatureDoc("daily_km_7d", "km", "Distance in the 7-day window."),
    FeatureDoc("daily_km_30d", "km", "Distance in the 30-day window."),
    FeatureDoc("daily_km_per_day_7d", "km/day", "Mean distance per covered day, 7-day window."),
    FeatureDoc("daily_km_per_day_30d", "km/day", "Mean distance per covered day, 30-day window."),
    FeatureDoc("daily_driving_h_per_day_7d", "h/day", "Mean driving hours per covered day, 7-day window."),
    FeatureDoc("daily_driving_h_per_day_30d", "h/day", "Mean driving hours per covered day, 30-day window."),
    FeatureDoc("daily_ah_per_day_7d", "Ah/day", "Mean Ah throughput per covered day, 7-day window."),
    FeatureDoc("daily_ah_per_day_30d", "Ah/day", "Mean Ah throughput per covered day, 30-day window."),
    FeatureDoc("daily_dcfc_sessions_7d", "count", "DC fast-charge sessions in the 7-day window."),
    FeatureDoc("daily_dcfc_sessions_30d", "count", "DC fast-charge sessions in the 30-day window."),
    FeatureDoc("daily_dcfc_kwh_30d", "kWh", "DC fast-charge energy in the 30-day window."),
    FeatureDoc("daily_harsh_30d", "count", "Harsh accelerations + braking in the 30-day window."),
    FeatureDoc("daily_inv_temp_max_7d", "°C", "Highest inverter temperature in the 7-day window (NaN if none)."),
    FeatureDoc("daily_inv_temp_max_30d", "°C", "Highest inverter temperature in the 30-day window (NaN if none)."),
    FeatureDoc("daily_cell_temp_max_7d", "°C", "Highest cell temperature in the 7-day window (NaN if none)."),
    FeatureDoc("daily_cell_temp_max_30d", "°C", "Highest cell temperature in the 30-day window (NaN if none)."),
    # trouble-code sightings (precursors that clear quickly)
    *(FeatureDoc(f"dtc_days_since_{c}", "days", f"Days from the last reading with {c} active to the last reading "
                 "(NaN if never seen).") for c in TRACKED),
    *(FeatureDoc(f"dtc_onsets_30d_{c}", "count", f"Onsets of {c} (active, and not at the reading before), each "
                 f"weighted by exp(-age / {ONSET_TAU_DAYS:g} days) at the last reading.") for c in TRACKED),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
_NAN = math.nan


def _known(x: float) -> float:
    """±inf / negative sentinels -> NaN."""
    return x if -math.inf < x < math.inf else _NAN


def features(state: HistoryState) -> dict[str, float]:
    """All features of ``FEATURES``, in that order (floats; NaN = unknown)."""
    inv, b, m, lv, u, d = state.inverter, state.battery, state.motor, state.lv, state.usage, state.daily
    counts, damage = cycle_summary(inv)
    tot = totals(state)
    w7 = window(d, tot, 7)
    w30 = window(d, tot, 30)
    harsh = u.harsh_accel + u.harsh_brake

    def per_day(x: float, days: int) -> float:
        return x / days if days else _NAN

    out: dict[str, float] = {
        "history_observed_h": state.observed_s / 3600.0,
        "history_updates": float(state.n_updates),
        "inv_temp_peak_c": _known(inv.peak_c),
        "inv_hours_above_80c": inv.above80_s / 3600.0,
        "inv_hours_above_100c": inv.above100_s / 3600.0,
        "inv_cycles_total": sum(counts),
        **dict(zip(_BIN_NAMES, counts)),
        "inv_damage_cips08": damage,
        "batt_ah_throughput": b.ah_as / 3600.0,
        "batt_efc": b.soc_swing_pct / 200.0,
        "batt_dcfc_sessions": float(b.dc_sessions),
        "batt_dcfc_kwh": b.dc_kws / 3600.0,
        "batt_hours_soc_above_90": b.soc_hi_s / 3600.0,
        "batt_hours_soc_below_10": b.soc_lo_s / 3600.0,
        "batt_arrhenius_eq_hours_25c": b.arr_eq_s / 3600.0,
        "batt_arrhenius_mean_factor": b.arr_eq_s / b.arr_obs_s if b.arr_obs_s else _NAN,
        "batt_cell_temp_peak_c": _known(b.cell_peak_c),
        "batt_soh_pct": b.soh if b.soh >= 0.0 else _NAN,
        "batt_soh_slope_pct_per_day": soh_slope_per_day(d, b.soh),
        "motor_temp_peak_c": _known(m.peak_c),
        "motor_hours_above_120c": m.above120_s / 3600.0,
        "motor_hours_above_150c": m.above150_s / 3600.0,
        "motor_load_hours": m.load_s / 3600.0,
        "lv_wake_min_v": _known(lv.wake_min_v),
        "lv_wake_last_v": _known(lv.wake_last_v),
        "lv_wakes": float(lv.wakes),
        "lv_cold_wakes": float(lv.cold_wakes),
        "lv_min_v": _known(lv.min_v),
        "lv_hours_below_12v": lv.below_s / 3600.0,
        "lv_low_events": float(lv.events),
        "usage_distance_km": u.distance_km,
        "usage_driving_hours": u.driving_s / 3600.0,
        "usage_harsh_accel": float(u.harsh_accel),
        "usage_harsh_brake": float(u.harsh_brake),
        "usage_harsh_per_100km": harsh / u.distance_km * 100.0 if u.distance_km >= 1.0 else _NAN,
        "daily_days_7d": float(w7.days),
        "daily_days_30d": float(w30.days),
        "daily_km_7d": w7.distance_km,
        "daily_km_30d": w30.distance_km,
        "daily_km_per_day_7d": per_day(w7.distance_km, w7.days),
        "daily_km_per_day_30d": per_day(w30.distance_km, w30.days),
        "daily_driving_h_per_day_7d": per_day(w7.driving_h, w7.days),
        "daily_driving_h_per_day_30d": per_day(w30.driving_h, w30.days),
        "daily_ah_per_day_7d": per_day(w7.ah, w7.days),
        "daily_ah_per_day_30d": per_day(w30.ah, w30.days),
        "daily_dcfc_sessions_7d": w7.dc_sessions,
        "daily_dcfc_sessions_30d": w30.dc_sessions,
        "daily_dcfc_kwh_30d": w30.dc_kwh,
        "daily_harsh_30d": w30.harsh,
        "daily_inv_temp_max_7d": w7.inv_max_c,
        "daily_inv_temp_max_30d": w30.inv_max_c,
        "daily_cell_temp_max_7d": w7.pack_max_c,
        "daily_cell_temp_max_30d": w30.pack_max_c,
    }
    dtc, last = state.dtc, state.last_ms
    for k, c in enumerate(TRACKED):
        out[f"dtc_days_since_{c}"] = days_since_seen(dtc, k, last)
    for k, c in enumerate(TRACKED):
        out[f"dtc_onsets_30d_{c}"] = decayed_onsets(dtc, k, last)
    return out
