"""Flat model features from a ``HistoryState``: stable names, documented units (``FEATURES``).

Unknown values (nothing observed yet: a peak, a wake voltage, a trend from < 2 days)
are ``NaN``. Time windows end at the day of the last applied reading (UTC days).

The math is written once, over columns of many rows (:func:`batch_features`, numpy; the
modules of each concept hold their part: ``inverter.cycle_summary``, ``daily.window_features``,
``dtc.sighting_features``): the risk model's batches (``models.risk.features``) call it with
their rows, :func:`features` with the one row of a state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from operator import attrgetter
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from twins.history.daily import N_COLS, N_DAYS, N_TOTALS, window_features
from twins.history.dtc import ONSET_TAU_DAYS, TRACKED, sighting_features
from twins.history.inverter import DT_LABELS, MEAN_LABELS, N_BINS, RESIDUE_MAX, cycle_summary
from twins.history.state import HistoryState


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

#: The inputs of :func:`batch_features`, by ``HistoryState`` attribute path: the shape of one row's value
#: (``()``: a number). ``inverter.rf.stack`` is padded to a common width; ``inverter.rf.stack_len`` (not an
#: attribute) says how many of its points are the stack.
INPUTS: dict[str, tuple[int, ...]] = {
    **dict.fromkeys(("last_ms", "n_updates", "observed_s", "inverter.peak_c", "inverter.above80_s",
                     "inverter.above100_s", "inverter.damage", "inverter.rf.cand", "inverter.rf.direction"), ()),
    "inverter.bins_half": (N_BINS,), "inverter.rf.stack": (RESIDUE_MAX,), "inverter.rf.stack_len": (),
    **dict.fromkeys([f"battery.{name}" for name in ("ah_as", "soc_swing_pct", "dc_sessions", "dc_kws", "soc_hi_s",
                                                    "soc_lo_s", "arr_eq_s", "arr_obs_s", "cell_peak_c", "soh")], ()),
    **dict.fromkeys(("motor.peak_c", "motor.above120_s", "motor.above150_s", "motor.load_s"), ()),
    **dict.fromkeys([f"lv.{name}" for name in ("wake_min_v", "wake_last_v", "wakes", "cold_wakes", "min_v",
                                               "below_s", "events")], ()),
    **dict.fromkeys(("usage.distance_km", "usage.driving_s", "usage.harsh_accel", "usage.harsh_brake"), ()),
    **dict.fromkeys(("daily.day", "daily.first_day", "daily.inv_max", "daily.pack_max"), ()),
    "daily.base": (N_TOTALS,), "daily.ring": (N_DAYS, N_COLS),
    **dict.fromkeys(("dtc.last_seen_ms", "dtc.onsets", "dtc.onset_ms"), (len(TRACKED),)),
}
#: The inputs that are numbers in a ``HistoryState`` (the others are its lists, and the stack's length).
NUMBER_INPUTS: tuple[str, ...] = tuple(name for name, shape in INPUTS.items()
                                       if not shape and name != "inverter.rf.stack_len")
_numbers_of = attrgetter(*NUMBER_INPUTS)
_NAN = math.nan


def _known(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """±inf (the sentinels of nothing seen yet) -> NaN."""
    return np.where(np.isfinite(x), x, _NAN)


def batch_features(inputs: Mapping[str, ArrayLike]) -> NDArray[np.float64]:
    """``FEATURES`` of many rows, ``(rows, len(FEATURES))``, from the rows' ``INPUTS`` (each an array of
    ``(rows, *shape)``; NaN = unknown). Windows end at each row's day, trouble-code ages at its ``last_ms``.

    >>> x = batch_features(state_inputs(HistoryState()))           # one row: an empty history
    >>> x.shape == (1, len(FEATURES)), float(x[0, FEATURE_NAMES.index("inv_cycles_total")])
    (True, 0.0)
    """
    missing = [name for name in INPUTS if name not in inputs]
    if missing:
        raise ValueError(f"inputs misses {missing}")
    x = {name: np.asarray(inputs[name], dtype=np.float64) for name in INPUTS if name != "daily.ring"}
    ring = np.asarray(inputs["daily.ring"])
    counts, damage = cycle_summary(x["inverter.bins_half"], x["inverter.damage"], x["inverter.rf.stack"],
                                   x["inverter.rf.stack_len"], x["inverter.rf.cand"], x["inverter.rf.direction"])
    dist, soh, arr_obs = x["usage.distance_km"], x["battery.soh"], x["battery.arr_obs_s"]
    harsh = x["usage.harsh_accel"] + x["usage.harsh_brake"]
    totals = (dist, x["usage.driving_s"], x["battery.ah_as"], x["battery.dc_sessions"], x["battery.dc_kws"], harsh)
    today = np.stack(totals, axis=1) - x["daily.base"]              # as state.totals
    days_since, onsets = sighting_features(x["dtc.last_seen_ms"], x["dtc.onsets"], x["dtc.onset_ms"], x["last_ms"])

    def hours(name: str) -> NDArray[np.float64]:
        return x[name] / 3600.0

    with np.errstate(divide="ignore", invalid="ignore"):
        cols: dict[str, NDArray[np.float64]] = {
            "history_observed_h": hours("observed_s"),
            "history_updates": x["n_updates"],
            "inv_temp_peak_c": _known(x["inverter.peak_c"]),
            "inv_hours_above_80c": hours("inverter.above80_s"),
            "inv_hours_above_100c": hours("inverter.above100_s"),
            "inv_cycles_total": counts.sum(axis=1),
            **{name: counts[:, k] for k, name in enumerate(_BIN_NAMES)},
            "inv_damage_cips08": damage,
            "batt_ah_throughput": hours("battery.ah_as"),
            "batt_efc": x["battery.soc_swing_pct"] / 200.0,
            "batt_dcfc_sessions": x["battery.dc_sessions"],
            "batt_dcfc_kwh": hours("battery.dc_kws"),
            "batt_hours_soc_above_90": hours("battery.soc_hi_s"),
            "batt_hours_soc_below_10": hours("battery.soc_lo_s"),
            "batt_arrhenius_eq_hours_25c": hours("battery.arr_eq_s"),
            "batt_arrhenius_mean_factor": np.where(arr_obs != 0, x["battery.arr_eq_s"] / arr_obs, _NAN),
            "batt_cell_temp_peak_c": _known(x["battery.cell_peak_c"]),
            "batt_soh_pct": np.where(soh >= 0.0, soh, _NAN),
            "motor_temp_peak_c": _known(x["motor.peak_c"]),
            "motor_hours_above_120c": hours("motor.above120_s"),
            "motor_hours_above_150c": hours("motor.above150_s"),
            "motor_load_hours": hours("motor.load_s"),
            "lv_wake_min_v": _known(x["lv.wake_min_v"]),
            "lv_wake_last_v": _known(x["lv.wake_last_v"]),
            "lv_wakes": x["lv.wakes"],
            "lv_cold_wakes": x["lv.cold_wakes"],
            "lv_min_v": _known(x["lv.min_v"]),
            "lv_hours_below_12v": hours("lv.below_s"),
            "lv_low_events": x["lv.events"],
            "usage_distance_km": dist,
            "usage_driving_hours": hours("usage.driving_s"),
            "usage_harsh_accel": x["usage.harsh_accel"],
            "usage_harsh_brake": x["usage.harsh_brake"],
            "usage_harsh_per_100km": np.where(dist >= 1.0, harsh / dist * 100.0, _NAN),
            **window_features(ring, x["daily.day"], x["daily.first_day"], today, x["daily.inv_max"],
                              x["daily.pack_max"], soh),
            **{f"dtc_days_since_{c}": days_since[:, k] for k, c in enumerate(TRACKED)},
            **{f"dtc_onsets_30d_{c}": onsets[:, k] for k, c in enumerate(TRACKED)},
        }
    return np.stack([cols[name] for name in FEATURE_NAMES], axis=1)


def state_inputs(state: HistoryState) -> dict[str, NDArray[np.float64]]:
    """The ``INPUTS`` of one row: ``state``'s."""
    numbers = np.array(_numbers_of(state), dtype=np.float64)
    inputs = {name: numbers[k:k + 1] for k, name in enumerate(NUMBER_INPUTS)}
    inv, d, dtc = state.inverter, state.daily, state.dtc
    stack = inv.rf.stack
    for name, values in (("inverter.bins_half", inv.bins_half), ("inverter.rf.stack", stack), ("daily.base", d.base),
                         ("dtc.last_seen_ms", dtc.last_seen_ms), ("dtc.onsets", dtc.onsets),
                         ("dtc.onset_ms", dtc.onset_ms)):
        inputs[name] = np.array([values], dtype=np.float64).reshape(1, len(values))
    inputs["inverter.rf.stack_len"] = np.array([len(stack)], dtype=np.float64)
    inputs["daily.ring"] = np.array(d.ring, dtype=np.float64).reshape(1, N_DAYS, N_COLS)
    return inputs


def features(state: HistoryState) -> dict[str, float]:
    """All features of ``FEATURES``, in that order (floats; NaN = unknown): :func:`batch_features` of one row."""
    return dict(zip(FEATURE_NAMES, batch_features(state_inputs(state))[0].tolist()))
