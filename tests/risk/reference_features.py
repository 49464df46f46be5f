"""The per-twin feature builder that ``models.risk.features`` replaced (kept as the reference its
vectorised builder must equal): the history features from ``twins.history.features`` (a dict per
twin; it runs the batch's history math on one row, so the history columns are also held to the
former code's rows: ``tests/risk/history_golden.py``), the exposure from ``twins.residency.exposure``,
and the extra columns one by one."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.risk.features import _DTC, _LV, _ODO, _SOH, DAY_MS, EXPOSURE_FEATURE_NAMES

from models.risk.feature_names import COMPONENTS, DTC_CODES, N_FEATURES
from twins.history import FEATURE_NAMES as HISTORY_FEATURE_NAMES
from twins.history import features as history_features
from twins.residency import HourlyLookup, exposure
from twins.twin import Twin

_NAN = math.nan
#: Inverter cycle bins with a mean temperature of 70 °C and more, and with a swing of 20 K and more.
_HOT_BINS = [n for n in HISTORY_FEATURE_NAMES if n.startswith("inv_cycles_dt_") and n.endswith("_tm_70up")]
_LARGE_BINS = [n for n in HISTORY_FEATURE_NAMES if n.startswith(("inv_cycles_dt_20_40", "inv_cycles_dt_40_60",
                                                                  "inv_cycles_dt_60up"))]


def _num(v: Any) -> float:
    return _NAN if v is None else float(v)


def _ratio(a: float, b: float, min_b: float) -> float:
    return a / b if b >= min_b and a == a else _NAN


def reference_features(twin: Twin, hourly_lookup: HourlyLookup, *, now_ms: int, in_service_ms: int | None,
                       component_ages_days: Mapping[str, float | None] | None) -> NDArray[np.float64]:
    """One twin's feature vector, computed the straightforward way."""
    weather_exposure = exposure(twin.residency, hourly_lookup)
    out = np.empty(N_FEATURES, dtype=np.float64)
    hist = history_features(twin.history)
    h = len(hist)
    e = len(EXPOSURE_FEATURE_NAMES)
    out[:h] = list(hist.values())
    out[h:h + e] = [weather_exposure[n] for n in EXPOSURE_FEATURE_NAMES]
    values = twin.values
    odo = _num(values[_ODO])
    age = (now_ms - in_service_ms) / DAY_MS if in_service_ms is not None else _NAN
    ages = component_ages_days or {}
    comp = []
    for c in COMPONENTS:
        a = ages.get(c)
        comp.append(age if a is None else float(a))
    dtcs = values[_DTC] or ()
    observed_h = hist["history_observed_h"]
    span = (twin.last_seen - twin.first_seen) / DAY_MS if twin.n_applied else _NAN
    extra = [
        odo, age, *comp, _num(values[_SOH]), _num(values[_LV]), float(len(dtcs)),
        *(1.0 if any(d.startswith(code) for d in dtcs) else 0.0 for code, _ in DTC_CODES),
        span,
        _ratio(hist["inv_hours_above_80c"], observed_h, 1.0),
        _ratio(hist["inv_damage_cips08"], span, 1.0),
        _ratio(hist["motor_hours_above_120c"], observed_h, 1.0),
        _ratio(hist["batt_efc"], span, 1.0),
        _ratio(hist["batt_dcfc_sessions"], span, 1.0),
        _ratio(hist["batt_hours_soc_above_90"], observed_h, 1.0),
        _ratio(hist["lv_low_events"], span, 1.0),
        _ratio(odo, age, 1.0),
        hist["daily_inv_temp_max_7d"] - hist["daily_inv_temp_max_30d"],
        hist["daily_cell_temp_max_7d"] - hist["daily_cell_temp_max_30d"],
        _ratio(hist["inv_hours_above_100c"], observed_h, 1.0),
        _ratio(hist["inv_cycles_total"], span, 1.0),
        _ratio(sum(hist[n] for n in _HOT_BINS), span, 1.0),
        _ratio(sum(hist[n] for n in _LARGE_BINS), span, 1.0),
        _ratio(hist["motor_hours_above_150c"], observed_h, 1.0),
        _ratio(hist["motor_load_hours"], observed_h, 1.0),
        _ratio(hist["usage_driving_hours"], observed_h, 1.0),
        _ratio(hist["batt_ah_throughput"], span, 1.0),
        _ratio(hist["batt_dcfc_kwh"], span, 1.0),
        _ratio(hist["batt_hours_soc_below_10"], observed_h, 1.0),
        _ratio(hist["lv_wakes"], span, 1.0),
        _ratio(hist["lv_cold_wakes"], hist["lv_wakes"], 1.0),
        _ratio(hist["lv_hours_below_12v"], observed_h, 1.0),
    ]
    out[h + e:] = extra
    return out
