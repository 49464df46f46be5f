"""The risk features of a batch of rows, computed row by row by one compiled loop (numba).

``models.risk.features.FeatureRows`` collects each twin's raw numbers (``INPUTS``: history
accumulators, the rainflow residue stack, its 30-day ring summary, trouble-code sightings,
exposures, ages) and :func:`fill` computes every feature of every row into the output
matrix in place, row-major: the inverter's residue cycles (ASTM E1049-85 step 6, as
``twins.history.rainflow.residue_cycles``) with their bins and CIPS08 damage, the 7/30-day
windows, the SoH slope, trouble-code recency and the rates of ``EXTRA_FEATURES``. Every
number is computed with the same operations in the same order as the per-twin definitions
(``twins.history.features``), so the rows equal the straightforward computation
(``tests/risk/reference_features.py``) and the rows training saw.

``INPUTS``/``HISTORY_OUTPUTS``/``EXTRA_OUTPUTS`` name the kernel's columns in the order its code
uses them; the caller maps them to its own layout (``fill``'s ``inputs``/``outputs``).
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

from twins.history.daily import N_TOTALS
from twins.history.dtc import ONSET_TAU_DAYS
from twins.history.dtc import TRACKED as DTC_TRACKED
from twins.history.inverter import _K_FIXED, CIPS08_B1, CIPS08_B2, DT_EDGES, MEAN_EDGES, N_BINS, RESIDUE_MAX

#: The raw numbers of a row the kernel reads, in the order of the indices below (``inputs[k]`` = where
#: ``INPUTS[k]`` sits in the caller's row).
INPUTS: tuple[str, ...] = (
    "observed_s", "n_updates", "inv_peak_c", "inv_above80_s", "inv_above100_s", "inv_damage", "rf_cand",
    "direction", "ah_as", "soc_swing_pct", "dc_sessions", "dc_kws", "soc_hi_s", "soc_lo_s", "arr_eq_s",
    "arr_obs_s", "cell_peak_c", "soh", "motor_peak_c", "above120_s", "above150_s", "load_s", "wake_min_v",
    "wake_last_v", "wakes", "cold_wakes", "lv_min_v", "below_s", "lv_events", "distance_km", "driving_s",
    "harsh_accel", "harsh_brake", "day", "first_day", "day_inv_max", "day_pack_max", "odo", "soh_now", "lv_now",
    "n_applied", "first_seen", "last_seen", "base_0", "bin_0")
(_OBS, _NUPD, _IPEAK, _I80, _I100, _IDMG, _CAND, _DIR, _AH, _SWING, _DCS, _DCKWS, _HI, _LO, _ARR_EQ, _ARR_OBS,
 _CPEAK, _SOH, _MPEAK, _M120, _M150, _MLOAD, _WMIN, _WLAST, _WAKES, _COLD, _LVMIN, _BELOW, _LVEV, _DIST, _DRIVE,
 _HACC, _HBRK, _DAY, _FIRST, _DINV, _DPACK, _ODO, _SOHNOW, _LVNOW, _NAPP, _FSEEN, _LSEEN, _BASE, _BIN0) = range(45)
#: The history features in the order the kernel computes them (``outputs[k]`` = their output columns).
HISTORY_OUTPUTS: tuple[str, ...] = (
    "history_observed_h", "history_updates", "inv_temp_peak_c", "inv_hours_above_80c", "inv_hours_above_100c",
    "inv_cycles_total", *(f"bin_{k}" for k in range(N_BINS)), "inv_damage_cips08", "batt_ah_throughput",
    "batt_efc", "batt_dcfc_sessions", "batt_dcfc_kwh", "batt_hours_soc_above_90", "batt_hours_soc_below_10",
    "batt_arrhenius_eq_hours_25c", "batt_arrhenius_mean_factor", "batt_cell_temp_peak_c", "batt_soh_pct",
    "motor_temp_peak_c", "motor_hours_above_120c", "motor_hours_above_150c", "motor_load_hours", "lv_wake_min_v",
    "lv_wake_last_v", "lv_wakes", "lv_cold_wakes", "lv_min_v", "lv_hours_below_12v", "lv_low_events",
    "usage_distance_km", "usage_driving_hours", "usage_harsh_accel", "usage_harsh_brake", "usage_harsh_per_100km",
    "daily_days_7d", "daily_km_7d", "daily_km_per_day_7d", "daily_driving_h_per_day_7d", "daily_ah_per_day_7d",
    "daily_dcfc_sessions_7d", "daily_inv_temp_max_7d", "daily_cell_temp_max_7d",
    "daily_days_30d", "daily_km_30d", "daily_km_per_day_30d", "daily_driving_h_per_day_30d",
    "daily_ah_per_day_30d", "daily_dcfc_sessions_30d", "daily_inv_temp_max_30d", "daily_cell_temp_max_30d",
    "daily_dcfc_kwh_30d", "daily_harsh_30d", "batt_soh_slope_pct_per_day",
    *(f"dtc_days_since_{c}" for c in DTC_TRACKED), *(f"dtc_onsets_30d_{c}" for c in DTC_TRACKED))
#: The extra features after the exposures, in the kernel's order (``EXTRA_FEATURES`` order).
EXTRA_OUTPUTS: tuple[str, ...] = (
    "odometer_km", "vehicle_age_days", "age_days_inverter", "age_days_traction_battery", "age_days_drive_motor",
    "age_days_lv_battery", "soh_pct", "lv_voltage_v", "dtc_active_count", "dtc_P0A7F", "dtc_P0AA6", "dtc_P0AFA",
    "dtc_P0A3C", "dtc_P0A2F", "dtc_P0562", "observed_span_days", "inv_frac_above_80c", "inv_damage_per_day",
    "motor_frac_above_120c", "batt_efc_per_day", "batt_dcfc_per_day", "batt_frac_soc_above_90",
    "lv_low_events_per_day", "lifetime_km_per_day", "inv_temp_trend_7d_30d", "cell_temp_trend_7d_30d",
    "inv_frac_above_100c", "inv_cycles_per_day", "inv_hot_cycles_per_day", "inv_large_cycles_per_day",
    "motor_frac_above_150c", "motor_load_frac", "driving_frac", "batt_ah_per_day", "batt_dcfc_kwh_per_day",
    "batt_frac_soc_below_10", "lv_wakes_per_day", "lv_cold_wake_frac", "lv_frac_below_12v")
_N_MEAN = len(MEAN_EDGES) + 1
#: Constants the kernel is compiled with, passed as an argument (numba's cache knows only this file).
CONSTANTS = np.array([_K_FIXED, CIPS08_B1, CIPS08_B2, ONSET_TAU_DAYS * 86_400_000.0, float(RESIDUE_MAX)])
EDGES_DT = np.array(DT_EDGES)
EDGES_MEAN = np.array(MEAN_EDGES)
#: Inverter cycle bins with a mean ≥ 70 °C ("hot") and with a swing ≥ 20 K ("large").
HOT_BINS = np.array([k * _N_MEAN + _N_MEAN - 1 for k in range(len(DT_EDGES) + 1)])
LARGE_BINS = np.arange(2 * _N_MEAN, N_BINS)


def _h(name: str) -> int:
    return HISTORY_OUTPUTS.index(name)


_H_OBS, _H_I80, _H_I100, _H_TOTAL, _H_BIN0, _H_DMG = (
    _h("history_observed_h"), _h("inv_hours_above_80c"), _h("inv_hours_above_100c"), _h("inv_cycles_total"),
    _h("bin_0"), _h("inv_damage_cips08"))
_H_AH, _H_EFC, _H_DCS, _H_DCKWH, _H_HI, _H_LO = (
    _h("batt_ah_throughput"), _h("batt_efc"), _h("batt_dcfc_sessions"), _h("batt_dcfc_kwh"),
    _h("batt_hours_soc_above_90"), _h("batt_hours_soc_below_10"))
_H_M120, _H_M150, _H_MLOAD = _h("motor_hours_above_120c"), _h("motor_hours_above_150c"), _h("motor_load_hours")
_H_WAKES, _H_COLD, _H_BELOW, _H_LVEV = _h("lv_wakes"), _h("lv_cold_wakes"), _h("lv_hours_below_12v"), _h("lv_low_events")
_H_DRIVE = _h("usage_driving_hours")
_H_INV7, _H_INV30, _H_CELL7, _H_CELL30 = (_h("daily_inv_temp_max_7d"), _h("daily_inv_temp_max_30d"),
                                          _h("daily_cell_temp_max_7d"), _h("daily_cell_temp_max_30d"))
_NAN = math.nan
_INF = math.inf
#: Columns of a 30-day ring summary (``models.risk.ring_summary.ring_summary``): the sums of the day totals over
#: the stored days of the 7- and 30-day windows, the maxima (-inf = none) of the inverter and cell temperature
#: per window, and the SoH regression sums (x = day - current day).
S_SUM7, S_SUM30 = 0, N_TOTALS
S_INV7, S_INV30, S_CELL7, S_CELL30 = 2 * N_TOTALS, 2 * N_TOTALS + 1, 2 * N_TOTALS + 2, 2 * N_TOTALS + 3
S_N, S_X, S_Y, S_XX, S_XY = range(2 * N_TOTALS + 4, 2 * N_TOTALS + 9)
N_SUMMARY = 2 * N_TOTALS + 9
#: The positions above as one array, passed to the kernel: they follow from other modules' constants
#: (``N_TOTALS``, ``N_BINS``), and numba's cache of the compiled kernel knows only this file.
LAYOUT = np.array([S_SUM7, S_SUM30, S_INV7, S_INV30, S_CELL7, S_CELL30, S_N, S_X, S_Y, S_XX, S_XY, _H_OBS, _H_I80, _H_I100, _H_TOTAL, _H_BIN0, _H_DMG, _H_AH, _H_EFC, _H_DCS, _H_DCKWH, _H_HI, _H_LO, _H_M120, _H_M150, _H_MLOAD, _H_WAKES, _H_COLD, _H_BELOW, _H_LVEV, _H_DRIVE, _H_INV7, _H_INV30, _H_CELL7, _H_CELL30])


@numba.njit(cache=True, nogil=True, inline="always")
def _known(x: float) -> float:  # pragma: no cover - compiled
    return x if math.isfinite(x) else _NAN


@numba.njit(cache=True, nogil=True, inline="always")
def _ratio(a: float, b: float) -> float:  # pragma: no cover - compiled
    """``a / b`` where ``b >= 1`` and ``a`` is known, else NaN."""
    return a / b if b >= 1.0 and not math.isnan(a) else _NAN


@numba.njit(cache=True, nogil=True, inline="always")
def _nanmax(a: float, b: float) -> float:  # pragma: no cover - compiled
    """``np.maximum``: NaN if either is NaN."""
    if math.isnan(a) or math.isnan(b):
        return _NAN
    return a if a >= b else b


@numba.njit(cache=True, nogil=True, inline="always")
def _count(a: float, b: float, c: float, bins: Any, damage: Any, dt_edges: Any, mean_edges: Any,
           consts: Any) -> None:  # pragma: no cover - compiled
    """Bin a residue cycle ``(a, b, count)`` and add its CIPS08 damage: ``twins.history.inverter``'s
    ``bin_index`` and ``cips08_cycles_to_failure``, compiled (no swing: no damage)."""
    rng = abs(b - a)
    mean = (a + b) * 0.5
    i = 0
    for e in dt_edges:
        if rng >= e:
            i += 1
    j = 0
    for e in mean_edges:
        if mean >= e:
            j += 1
    bins[i * (len(mean_edges) + 1) + j] += c
    if rng > 0.0:
        tmin = a if a < b else b
        damage[0] += c / (consts[0] * rng ** consts[1] * np.exp(consts[2] / (tmin + 273.15)))


@numba.njit(cache=True, nogil=True)
def fill(raw: Any, inputs: Any, stack: Any, stack_start: Any, S: Any, D: Any, sighting: Any, exposure: Any,
         now: Any, service: Any, ages: Any, flags: Any, history_out: Any, exposure_out: Any, extra_out: Any,
         dt_edges: Any, mean_edges: Any, hot_bins: Any, large_bins: Any, consts: Any,
         layout: Any, out: Any) -> None:  # pragma: no cover - compiled
    """Every feature of every row of ``raw`` into ``out`` (rows x features).

    ``raw[r, inputs[k]]`` is ``INPUTS[k]`` of row ``r`` (``base_0``/``bin_0``: the first of the row's
    ``N_TOTALS`` day-start totals / ``N_BINS`` half-cycle counts). History features go to the columns
    ``history_out`` (``HISTORY_OUTPUTS`` order), the row's four ``exposure`` values to ``exposure_out``,
    the extra features to ``extra_out`` (``EXTRA_OUTPUTS``). Per row: the rainflow stack
    ``stack[stack_start[r]:stack_start[r + 1]]``, the ring summary ``S[r]``, the trouble-code sightings
    ``D[sighting[r]]`` (-1: never saw a tracked code), ``now``/``service`` (ms; NaN = unknown),
    component ``ages`` (days; NaN = unknown) and ``flags`` (active trouble-code count, then one-hot
    codes). ``consts``: ``CONSTANTS``; ``layout``: ``LAYOUT``."""
    s_sum7 = layout[0]
    s_sum30 = layout[1]
    s_inv7 = layout[2]
    s_inv30 = layout[3]
    s_cell7 = layout[4]
    s_cell30 = layout[5]
    s_n = layout[6]
    s_x = layout[7]
    s_y = layout[8]
    s_xx = layout[9]
    s_xy = layout[10]
    h_obs = layout[11]
    h_i80 = layout[12]
    h_i100 = layout[13]
    h_total = layout[14]
    h_bin0 = layout[15]
    h_dmg = layout[16]
    h_ah = layout[17]
    h_efc = layout[18]
    h_dcs = layout[19]
    h_dckwh = layout[20]
    h_hi = layout[21]
    h_lo = layout[22]
    h_m120 = layout[23]
    h_m150 = layout[24]
    h_mload = layout[25]
    h_wakes = layout[26]
    h_cold = layout[27]
    h_below = layout[28]
    h_lvev = layout[29]
    h_drive = layout[30]
    h_inv7 = layout[31]
    h_inv30 = layout[32]
    h_cell7 = layout[33]
    h_cell30 = layout[34]
    residue_max = int(consts[4])
    tau_ms = consts[3]
    n_bins = (len(dt_edges) + 1) * (len(mean_edges) + 1)
    work = np.empty(residue_max + 8)
    acc = np.empty(n_bins)
    dmg = np.empty(1)
    u = np.empty(len(inputs))
    hist = np.empty(len(history_out))
    n_dtc = (D.shape[1] - 1) // 3
    for r in range(raw.shape[0]):
        x = raw[r]
        for q in range(len(inputs)):
            u[q] = x[inputs[q]]
        # --- inverter cycles: stored half counts plus the residue (inverter.cycle_summary) ---
        a0, a1 = stack_start[r], stack_start[r + 1]
        n = a1 - a0
        if n + 2 > len(work):
            work = np.empty(2 * (n + 2))
        for q in range(n):
            work[q] = stack[a0 + q]
        acc[:] = 0.0
        dmg[0] = 0.0
        start, end = 0, n
        if u[_DIR] != 0.0:
            work[end] = u[_CAND]                          # the pending extreme becomes a point (push_point)
            end += 1
            while end - start >= 3:
                a, b, p = work[end - 3], work[end - 2], work[end - 1]
                if not abs(p - b) >= abs(b - a):
                    break
                if end - start == 3:
                    _count(a, b, 0.5, acc, dmg, dt_edges, mean_edges, consts)
                    start += 1                            # step 5: the start point goes
                else:
                    _count(a, b, 1.0, acc, dmg, dt_edges, mean_edges, consts)
                    work[end - 3] = work[end - 1]         # step 4: the two points of the cycle go
                    end -= 2
            if end - start > residue_max:                 # bounded memory: forced half cycle
                _count(work[start], work[start + 1], 0.5, acc, dmg, dt_edges, mean_edges, consts)
                start += 1
        for q in range(start, end - 1):                   # step 6: the residue, as half cycles
            _count(work[q], work[q + 1], 0.5, acc, dmg, dt_edges, mean_edges, consts)
        b0 = inputs[_BIN0]
        total = 0.0
        for q in range(n_bins):
            c = x[b0 + q] * 0.5 + acc[q]
            hist[h_bin0 + q] = c
            total = c if q == 0 else total + c
        hist[h_total] = total
        hist[h_dmg] = u[_IDMG] + dmg[0]
        # --- history totals and extremes (twins.history.features) ---
        k = 0
        for value in (u[_OBS] / 3600.0, u[_NUPD], _known(u[_IPEAK]), u[_I80] / 3600.0, u[_I100] / 3600.0):
            hist[k] = value
            k += 1
        k = h_ah
        soh = u[_SOH]
        dist = u[_DIST]
        harsh = u[_HACC] + u[_HBRK]
        for value in (u[_AH] / 3600.0, u[_SWING] / 200.0, u[_DCS], u[_DCKWS] / 3600.0, u[_HI] / 3600.0,
                      u[_LO] / 3600.0, u[_ARR_EQ] / 3600.0,
                      u[_ARR_EQ] / u[_ARR_OBS] if u[_ARR_OBS] != 0 else _NAN,
                      _known(u[_CPEAK]), soh if soh >= 0.0 else _NAN,
                      _known(u[_MPEAK]), u[_M120] / 3600.0, u[_M150] / 3600.0, u[_MLOAD] / 3600.0,
                      _known(u[_WMIN]), _known(u[_WLAST]), u[_WAKES], u[_COLD], _known(u[_LVMIN]),
                      u[_BELOW] / 3600.0, u[_LVEV],
                      dist, u[_DRIVE] / 3600.0, u[_HACC], u[_HBRK], harsh / dist * 100.0 if dist >= 1.0 else _NAN):
            hist[k] = value
            k += 1
        # --- daily windows (twins.history.daily.window): the live day plus the stored days ---
        day, first = u[_DAY], u[_FIRST]
        seen = day >= 0
        base = inputs[_BASE]
        s = S[r]
        live = (dist, u[_DRIVE], u[_AH], u[_DCS], u[_DCKWS], harsh)
        for w, c_sum, c_inv, c_cell in ((7.0, s_sum7, s_inv7, s_cell7), (30.0, s_sum30, s_inv30, s_cell30)):
            km = live[0] - x[base] + s[c_sum] if seen else 0.0
            drive = live[1] - x[base + 1] + s[c_sum + 1] if seen else 0.0
            ah = live[2] - x[base + 2] + s[c_sum + 2] if seen else 0.0
            dcs = live[3] - x[base + 3] + s[c_sum + 3] if seen else 0.0
            days = min(w, day - first + 1) if seen else 0.0
            div = days if days != 0 else 1.0
            inv = _nanmax(s[c_inv], u[_DINV])
            cell = _nanmax(s[c_cell], u[_DPACK])
            for value in (days, km, km / div if days != 0 else _NAN,
                          drive / 3600.0 / div if days != 0 else _NAN, ah / 3600.0 / div if days != 0 else _NAN,
                          dcs, inv if seen and inv > -_INF else _NAN, cell if seen and cell > -_INF else _NAN):
                hist[k] = value
                k += 1
        hist[k] = (live[4] - x[base + 4] + s[s_sum30 + 4] if seen else 0.0) / 3600.0
        hist[k + 1] = live[5] - x[base + 5] + s[s_sum30 + 5] if seen else 0.0
        k += 2
        # --- SoH slope (twins.history.daily.soh_slope_per_day) ---
        cur = seen and soh >= 0.0
        cnt = s[s_n] + (1.0 if cur else 0.0)
        safe = cnt if cnt >= 1.0 else 1.0
        sy = s[s_y] + (soh if cur else 0.0)
        sxx = s[s_xx] - s[s_x] * s[s_x] / safe
        sxy = s[s_xy] - s[s_x] * sy / safe
        hist[k] = sxy / (sxx if sxx != 0 else 1.0) if cnt >= 2 else _NAN
        k += 1
        # --- trouble-code sightings (twins.history.dtc) ---
        g = sighting[r]
        for t in range(n_dtc):
            seen_ms, at = (D[g, 1 + t], D[g, 1 + 2 * n_dtc + t]) if g >= 0 else (0.0, 0.0)
            hist[k + t] = (D[g, 0] - seen_ms) / 86_400_000.0 if seen_ms != 0 else _NAN
            hist[k + n_dtc + t] = D[g, 1 + n_dtc + t] * np.exp(-(D[g, 0] - at) / tau_ms) if at != 0 else 0.0
        o = out[r]
        for q in range(len(history_out)):
            o[history_out[q]] = hist[q]
        for q in range(exposure.shape[1]):
            o[exposure_out[q]] = exposure[r, q]
        # --- extra features (models.risk.features.EXTRA_FEATURES) ---
        age = (now[r] - service[r]) / 86_400_000.0
        span = (u[_LSEEN] - u[_FSEEN]) / 86_400_000.0 if u[_NAPP] != 0 else _NAN
        observed = hist[h_obs]
        hot = 0.0
        for q in range(len(hot_bins)):
            hot = hist[h_bin0 + hot_bins[q]] if q == 0 else hot + hist[h_bin0 + hot_bins[q]]
        large = 0.0
        for q in range(len(large_bins)):
            large = hist[h_bin0 + large_bins[q]] if q == 0 else large + hist[h_bin0 + large_bins[q]]
        o[extra_out[0]] = u[_ODO]
        o[extra_out[1]] = age
        for q in range(4):
            o[extra_out[2 + q]] = age if math.isnan(ages[r, q]) else ages[r, q]
        o[extra_out[6]] = u[_SOHNOW]
        o[extra_out[7]] = u[_LVNOW]
        j = 8
        for q in range(flags.shape[1]):
            o[extra_out[j]] = flags[r, q]
            j += 1
        for value in (span, _ratio(hist[h_i80], observed), _ratio(hist[h_dmg], span),
                      _ratio(hist[h_m120], observed), _ratio(hist[h_efc], span), _ratio(hist[h_dcs], span),
                      _ratio(hist[h_hi], observed), _ratio(hist[h_lvev], span), _ratio(u[_ODO], age),
                      hist[h_inv7] - hist[h_inv30], hist[h_cell7] - hist[h_cell30],
                      _ratio(hist[h_i100], observed), _ratio(total, span), _ratio(hot, span), _ratio(large, span),
                      _ratio(hist[h_m150], observed), _ratio(hist[h_mload], observed),
                      _ratio(hist[h_drive], observed), _ratio(hist[h_ah], span), _ratio(hist[h_dckwh], span),
                      _ratio(hist[h_lo], observed), _ratio(hist[h_wakes], span),
                      _ratio(hist[h_cold], hist[h_wakes]), _ratio(hist[h_below], observed)):
            o[extra_out[j]] = value
            j += 1
