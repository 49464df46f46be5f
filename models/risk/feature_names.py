"""The names, units and meanings of the risk features, and the named column sets the models use.

``FEATURE_NAMES`` is the feature vector's order: the operating-history features
(``twins.history.FEATURES``), the weather exposures (``models.risk.exposure``) and
``EXTRA_FEATURES``. ``models.risk.features`` builds the rows; ``markdown_table`` is the table
of ``models/risk/README.md`` (``python -m models.risk.feature_names``).

>>> FEATURE_NAMES.index("odometer_km") == len(FEATURE_NAMES) - len(EXTRA_FEATURES)
True
"""

from __future__ import annotations

from typing import NamedTuple

from models.risk.exposure import EXPOSURE_FEATURE_NAMES
from twins.history import FEATURE_NAMES as HISTORY_FEATURE_NAMES

#: Components with a risk model (the ``component`` column of ``maintenance.csv``).
COMPONENTS: tuple[str, ...] = ("inverter", "traction_battery", "drive_motor", "lv_battery")
#: Standard SAE J2012 codes with a one-hot column (active in the twin's current DTC list).
DTC_CODES: tuple[tuple[str, str], ...] = (
    ("P0A7F", "hybrid/EV battery pack deterioration"),
    ("P0AA6", "HV isolation fault"),
    ("P0AFA", "HV battery system voltage low"),
    ("P0A3C", "drive motor inverter over temperature"),
    ("P0A2F", "drive motor temperature too high"),
    ("P0562", "system voltage low (12 V)"),
)


class ExtraDoc(NamedTuple):
    """One feature beyond the history and exposure tables."""

    name: str
    unit: str
    meaning: str


EXTRA_FEATURES: tuple[ExtraDoc, ...] = (
    ExtraDoc("odometer_km", "km", "Current odometer (Vehicle.TraveledDistance)."),
    ExtraDoc("vehicle_age_days", "days", "now - in-service date (NaN if the in-service date is unknown)."),
    *(ExtraDoc(f"age_days_{c}", "days", f"Days since the {c.replace('_', ' ')} was last repaired or replaced; "
               "the vehicle age if never.") for c in COMPONENTS),
    ExtraDoc("soh_pct", "%", "Current traction-battery state of health."),
    ExtraDoc("lv_voltage_v", "V", "Current 12 V battery voltage."),
    ExtraDoc("dtc_active_count", "count", "Number of active trouble codes."),
    *(ExtraDoc(f"dtc_{code}", "0/1", f"{code} ({text}) active.") for code, text in DTC_CODES),
    ExtraDoc("observed_span_days", "days", "Wall-clock span of the twin's telemetry (last_seen - first_seen)."),
    ExtraDoc("inv_frac_above_80c", "1", "inv_hours_above_80c / history_observed_h (NaN below 1 h observed)."),
    ExtraDoc("inv_damage_per_day", "1/day", "inv_damage_cips08 per day of observed span (NaN below 1 day)."),
    ExtraDoc("motor_frac_above_120c", "1", "motor_hours_above_120c / history_observed_h."),
    ExtraDoc("batt_efc_per_day", "cycles/day", "batt_efc per day of observed span."),
    ExtraDoc("batt_dcfc_per_day", "sessions/day", "batt_dcfc_sessions per day of observed span."),
    ExtraDoc("batt_frac_soc_above_90", "1", "batt_hours_soc_above_90 / history_observed_h."),
    ExtraDoc("lv_low_events_per_day", "events/day", "lv_low_events per day of observed span."),
    ExtraDoc("lifetime_km_per_day", "km/day", "odometer_km / vehicle_age_days."),
    ExtraDoc("inv_temp_trend_7d_30d", "K", "daily_inv_temp_max_7d - daily_inv_temp_max_30d (0 = hottest lately)."),
    ExtraDoc("cell_temp_trend_7d_30d", "K", "daily_cell_temp_max_7d - daily_cell_temp_max_30d."),
    ExtraDoc("inv_frac_above_100c", "1", "inv_hours_above_100c / history_observed_h."),
    ExtraDoc("inv_cycles_per_day", "cycles/day", "inv_cycles_total per day of observed span."),
    ExtraDoc("inv_hot_cycles_per_day", "cycles/day", "Inverter cycles with mean temperature ≥ 70 °C per day."),
    ExtraDoc("inv_large_cycles_per_day", "cycles/day", "Inverter cycles with swing ΔT ≥ 20 K per day."),
    ExtraDoc("motor_frac_above_150c", "1", "motor_hours_above_150c / history_observed_h."),
    ExtraDoc("motor_load_frac", "1", "motor_load_hours / history_observed_h."),
    ExtraDoc("driving_frac", "1", "usage_driving_hours / history_observed_h."),
    ExtraDoc("batt_ah_per_day", "Ah/day", "batt_ah_throughput per day of observed span."),
    ExtraDoc("batt_dcfc_kwh_per_day", "kWh/day", "batt_dcfc_kwh per day of observed span."),
    ExtraDoc("batt_frac_soc_below_10", "1", "batt_hours_soc_below_10 / history_observed_h."),
    ExtraDoc("lv_wakes_per_day", "wakes/day", "lv_wakes per day of observed span."),
    ExtraDoc("lv_cold_wake_frac", "1", "lv_cold_wakes / lv_wakes (NaN without wakes)."),
    ExtraDoc("lv_frac_below_12v", "1", "lv_hours_below_12v / history_observed_h."),
)
EXTRA_FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in EXTRA_FEATURES)
FEATURE_NAMES: tuple[str, ...] = tuple(HISTORY_FEATURE_NAMES) + EXPOSURE_FEATURE_NAMES + EXTRA_FEATURE_NAMES
FEATURE_INDEX: dict[str, int] = {n: i for i, n in enumerate(FEATURE_NAMES)}
N_FEATURES = len(FEATURE_NAMES)
#: The age-and-mileage baseline sees only these.
BASELINE_FEATURES: tuple[str, ...] = ("vehicle_age_days", "odometer_km")
#: Totals since the twin's first reading: they grow with how long the stream has watched the vehicle,
#: not with anything about the vehicle, so a model trained on a replay that starts at the data start
#: would misread them on twins of another age. Their rates (extra features) are used instead.
SINCE_START_TOTALS: tuple[str, ...] = tuple(
    n for n in HISTORY_FEATURE_NAMES
    if n.startswith(("inv_cycles_", "history_")) or n in (
        "inv_hours_above_80c", "inv_hours_above_100c", "inv_damage_cips08", "batt_ah_throughput", "batt_efc",
        "batt_dcfc_sessions", "batt_dcfc_kwh", "batt_hours_soc_above_90", "batt_hours_soc_below_10",
        "batt_arrhenius_eq_hours_25c", "motor_hours_above_120c", "motor_hours_above_150c", "motor_load_hours",
        "lv_wakes", "lv_cold_wakes", "lv_hours_below_12v", "lv_low_events", "usage_distance_km",
        "usage_driving_hours", "usage_harsh_accel", "usage_harsh_brake")
) + ("observed_span_days",)
#: Extremes since the twin's first reading (drift the same way, but more slowly).
SINCE_START_EXTREMES: tuple[str, ...] = ("inv_temp_peak_c", "batt_cell_temp_peak_c", "motor_temp_peak_c",
                                         "lv_wake_min_v", "lv_min_v")
#: The columns the component models use by default (``FEATURE_NAMES`` minus ``SINCE_START_TOTALS``).
MODEL_FEATURES: tuple[str, ...] = tuple(n for n in FEATURE_NAMES if n not in SINCE_START_TOTALS)
#: Named column sets for ``python -m models.risk.train --feature-set``.
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "model": MODEL_FEATURES,
    "robust": tuple(n for n in MODEL_FEATURES if n not in SINCE_START_EXTREMES),
    "all": FEATURE_NAMES,
}


def feature_docs() -> list[tuple[str, str, str]]:
    """``(name, unit, meaning)`` for every feature, in ``FEATURE_NAMES`` order."""
    from twins.history import FEATURES

    exposure_docs = {
        "weather_degree_hours_above_35c": ("K·h", "Σ max(0, T - 35 °C) over the last 30 days of residency."),
        "weather_degree_hours_below_minus10c": ("K·h", "Σ max(0, -10 °C - T) over the last 30 days."),
        "weather_hours_rh_80": ("h", "Hours with relative humidity ≥ 80 % over the last 30 days."),
        "weather_hours_observed": ("h", "Hours of the last 30 days with a weather observation for the cell."),
    }
    docs = [(f.name, f.unit, f.meaning) for f in FEATURES]
    docs += [(n, *exposure_docs[n]) for n in EXPOSURE_FEATURE_NAMES]
    docs += [(f.name, f.unit, f.meaning) for f in EXTRA_FEATURES]
    return docs


def markdown_table() -> str:
    """The feature table of ``models/risk/README.md`` (``python -m models.risk.feature_names``)."""
    model, extremes = set(MODEL_FEATURES), set(SINCE_START_EXTREMES)
    rows = ["| # | name | unit | meaning | used by the models |", "|---|---|---|---|---|"]
    for i, (name, unit, meaning) in enumerate(feature_docs()):
        used = "yes" if name in model and name not in extremes else ("yes (since-start extreme)" if name in model
                                                                      else "no (since-start total)")
        rows.append(f"| {i} | `{name}` | {unit} | {meaning} | {used} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
