"""The risk-model feature vector of one twin: names, documentation and the (batched) builders.

The vector is the twin's 75 operating-history features (``twins.history``), its 4
weather-exposure integrals (``twins.residency.exposure``), and the columns of
``EXTRA_FEATURES`` below (odometer, ages, current state, active trouble codes and
rates normalised by observed time). ``NaN`` means unknown; HistGradientBoosting
routes missing values natively, so nothing is imputed.

The same builder (:class:`FeatureRows`) makes training rows (``models.risk.replay`` adds
one at the end of every UTC day) and scoring rows in the stream (:func:`feature_matrix`),
so the two cannot drift apart. It is batched: one pass over the twins copies out the raw
numbers of each ``HistoryState`` (``msgspec.structs.astuple`` of its sub-structs, the
30-day ring, the rainflow residue), then every feature — rainflow residue counts and
CIPS08 damage, the 7/30-day windows, SoH slope, ratios and rates — is computed for
all rows column-wise with numpy. The weather exposure is summed per (cell, UTC day)
and per distinct residency list once (:class:`ExposureCache`). A test checks the
result against the straightforward per-twin computation (``tests/risk/reference_features.py``).

>>> from twins.twin import new_twin
>>> x = twin_features(new_twin("1FA6P8CF0L5100001"), lambda cell, hour: None,
...                   now_ms=1_767_225_600_000, in_service_ms=1_735_689_600_000, component_ages_days=None)
>>> x.shape == (len(FEATURE_NAMES),), float(x[FEATURE_INDEX["vehicle_age_days"]])
(True, 365.0)
>>> float(x[FEATURE_INDEX["age_days_inverter"]])  # no replacement known: falls back to the vehicle age
365.0
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np
from msgspec.structs import astuple
from numpy.typing import NDArray

from twins.history import FEATURE_NAMES as HISTORY_FEATURE_NAMES
from twins.history.battery import BatteryState
from twins.history.daily import AH, DCKWH, DCS, DIST, DRIVE, HARSH, INV_MAX, N_COLS, N_DAYS, N_TOTALS, NO_DATA, \
    PACK_MAX, SCALE
from twins.history.daily import SOH as SOH_COL
from twins.history.dtc import ONSET_TAU_DAYS as DTC_TAU_DAYS
from twins.history.dtc import TRACKED as DTC_TRACKED
from twins.history.inverter import _K_FIXED, CIPS08_B1, CIPS08_B2, DT_EDGES, MEAN_EDGES, N_BINS, RESIDUE_MAX
from twins.history.lv_battery import LvState
from twins.history.motor import MotorState
from twins.history.usage import UsageState
from twins.residency import HISTORY_HOURS, HourlyLookup, Residency, exposure
from twins.signals import SLOT
from twins.twin import Twin
from twins.weather import MISSING

DAY_MS = 86_400_000
#: Components with a risk model (the ``component`` column of ``maintenance.csv``).
COMPONENTS: tuple[str, ...] = ("inverter", "traction_battery", "drive_motor", "lv_battery")
EXPOSURE_FEATURE_NAMES: tuple[str, ...] = (
    "weather_degree_hours_above_35c", "weather_degree_hours_below_minus10c", "weather_hours_rh_80",
    "weather_hours_observed",
)
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

_ODO = SLOT["Vehicle.TraveledDistance"]
_SOH = SLOT["Vehicle.Powertrain.TractionBattery.StateOfHealth"]
_LV = SLOT["Vehicle.LowVoltageBattery.CurrentVoltage"]
_DTC = SLOT["Vehicle.Diagnostics.DTCList"]
_NAN = math.nan
_H = len(HISTORY_FEATURE_NAMES)
_HOT_BINS = tuple(n for n in HISTORY_FEATURE_NAMES if n.startswith("inv_cycles_dt_") and n.endswith("_tm_70up"))
_LARGE_BINS = tuple(n for n in HISTORY_FEATURE_NAMES
                    if n.startswith(("inv_cycles_dt_20_40", "inv_cycles_dt_40_60", "inv_cycles_dt_60up")))
_E = len(EXPOSURE_FEATURE_NAMES)
_HIX = {n: i for i, n in enumerate(HISTORY_FEATURE_NAMES)}
#: Scalar fields of the history sub-structs, read with ``msgspec.structs.astuple`` (positions by name, so
#: fields appended later do not shift anything).
_SUB = (("battery", BatteryState), ("motor", MotorState), ("lv", LvState), ("usage", UsageState))
_SUB_OFFSET: dict[str, dict[str, int]] = {}
_off = 0
for _name, _cls in _SUB:
    _SUB_OFFSET[_name] = {f: _off + i for i, f in enumerate(_cls.__struct_fields__)}
    _off += len(_cls.__struct_fields__)
_N_SUB = _off
_N_DTC = len(DTC_TRACKED)
# columns of the per-twin row (``FeatureRows.add``): these, then the sub-struct fields, base, bins
(_C_OBS, _C_NUPD, _C_LAST, _C_IPEAK, _C_I80, _C_I100, _C_IDMG, _C_CAND, _C_DIR, _C_DAY, _C_FIRST, _C_IMAX, _C_PMAX,
 _C_FSEEN, _C_LSEEN, _C_NAPP, _C_ODO, _C_SOH, _C_LV) = range(19)
_C_SUB = 19
_C_BASE = _C_SUB + _N_SUB
_C_BINS = _C_BASE + N_TOTALS
_N_COLS_ROW = _C_BINS + N_BINS
# trouble-code sightings (kept only for twins that ever saw a tracked code): last seen, onsets, onset time
_D_SEEN, _D_ONSETS, _D_AT = 0, _N_DTC, 2 * _N_DTC
_DT_EDGES = np.array(DT_EDGES)
_MEAN_EDGES = np.array(MEAN_EDGES)
_SCALE6 = np.array(SCALE[:N_TOTALS])
# ring summary columns: stored sums of the totals over the 7- and 30-day windows, stored maxima (-inf = none)
# of the inverter and cell temperature per window, and the SoH regression sums (x = day - current day)
_S_SUM7, _S_SUM30 = 0, N_TOTALS
_S_INV7, _S_INV30, _S_CELL7, _S_CELL30 = 2 * N_TOTALS, 2 * N_TOTALS + 1, 2 * N_TOTALS + 2, 2 * N_TOTALS + 3
_S_N, _S_X, _S_Y, _S_XX, _S_XY = range(2 * N_TOTALS + 4, 2 * N_TOTALS + 9)
_N_SUMMARY = 2 * N_TOTALS + 9
_NO_SUMMARY = (0.0,) * (2 * N_TOTALS) + (-math.inf,) * 4 + (0.0,) * 5
#: Per VIN, the last ring summary and the fingerprint of the ring it was computed from (see ``FeatureRows``):
#: the 30-day ring changes only when a day rolls over (``twins.history.daily.roll_day``), which moves ``day``
#: and resets ``base``, so a twin scored again the same day reuses its summary instead of reading its 270
#: ring numbers again. One entry per vehicle (~1.5 kB).
_RING_SUMMARIES: dict[str, tuple[tuple[Any, ...], tuple[float, ...]]] = {}
RING_CACHE_MAX = 1_000_000


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while a batch builds its many small tuples and lists: they all stay
    referenced, so collections triggered by the allocation count would only walk the heap for nothing."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class ExposureCache:
    """Weather exposure (``twins.residency.exposure``) of many residency lists against one weather lookup.

    Each (cell, UTC day) is looked up once (24 hours, kept as per-hour values), and each distinct
    residency list — its intervals clipped to the 30-day window — is summed once: vehicles parked in
    the same cell over the same hours share the result. Results equal ``exposure()`` up to the
    rounding of the summation order; residency lists with overlapping intervals (stays in two cells
    within one hour) are computed by ``exposure()`` itself. Weather that arrives later is not seen by
    an existing cache: make one per batch in the stream (``feature_matrix`` does).
    """

    def __init__(self, hourly_lookup: HourlyLookup, max_entries: int = 500_000) -> None:
        self.lookup = hourly_lookup
        self.max_entries = max_entries
        self._days: dict[tuple[str, int], tuple[list[float], list[float], list[float], list[float]]] = {}
        self._lists: dict[Any, tuple[float, float, float, float]] = {}

    def _day(self, cell: str, day: int) -> tuple[list[float], list[float], list[float], list[float]]:
        hit = self._days.get((cell, day))
        if hit is None:
            hot, cold, wet, seen = [0.0] * 24, [0.0] * 24, [0.0] * 24, [0.0] * 24
            lookup = self.lookup
            for h in range(24):
                obs = lookup(cell, day * 24 + h)
                if obs is None:
                    continue
                temp, rh = obs
                seen[h] = 1.0
                hot[h] = max(0.0, temp - 35.0)
                cold[h] = max(0.0, -10.0 - temp)
                if rh != MISSING and rh >= 80.0:
                    wet[h] = 1.0
            hit = self._days[(cell, day)] = (hot, cold, wet, seen)
        return hit

    def _interval(self, cell: str, a: int, b: int) -> tuple[float, float, float, float]:
        hot = cold = wet = seen = 0.0
        for day in range(a // 24, b // 24 + 1):
            lo, hi = max(a - day * 24, 0), min(b - day * 24, 23) + 1
            dh, dc, dw, ds = self._day(cell, day)
            hot += sum(dh[lo:hi])
            cold += sum(dc[lo:hi])
            wet += sum(dw[lo:hi])
            seen += sum(ds[lo:hi])
        return hot, cold, wet, seen

    def of(self, res: Residency) -> tuple[float, float, float, float]:
        """``EXPOSURE_FEATURE_NAMES`` of one residency list."""
        cells, starts, ends = res.cells, res.starts, res.ends
        if not cells:
            return (0.0, 0.0, 0.0, 0.0)
        if len(cells) == 1:
            e = ends[0]
            key: Any = (cells[0], max(starts[0], e - HISTORY_HOURS + 1), e)
        else:            # the window start follows from the ends: the lists themselves are the key
            key = (tuple(cells), tuple(starts), tuple(ends))
        hit = self._lists.get(key)
        if hit is not None:
            return hit
        if len(self._lists) >= self.max_entries or len(self._days) >= self.max_entries:
            self._lists.clear()
            self._days.clear()
        if len(cells) == 1:
            hit = self._interval(*key) if key[1] <= key[2] else (0.0, 0.0, 0.0, 0.0)
        else:
            first = max(ends) - HISTORY_HOURS + 1
            clipped = [max(s, first) for s in starts]
            spans = sorted((s, e) for s, e in zip(clipped, ends) if s <= e)
            if any(spans[i + 1][0] <= spans[i][1] for i in range(len(spans) - 1)):
                ex = exposure(res, self.lookup)       # overlapping stays: hour-by-hour de-duplication
                hit = tuple(ex[n] for n in EXPOSURE_FEATURE_NAMES)  # type: ignore[assignment]
            else:
                tot = [0.0, 0.0, 0.0, 0.0]
                for cell, s, e in zip(cells, clipped, ends):
                    if s <= e:
                        for k, v in enumerate(self._interval(cell, s, e)):
                            tot[k] += v
                hit = (tot[0], tot[1], tot[2], tot[3])
        self._lists[key] = hit  # type: ignore[assignment]
        return hit  # type: ignore[return-value]


class FeatureRows:
    """Feature rows of twins, collected now and computed column-wise later (``matrix``).

    ``add`` copies every number the features need out of the twins (so the twins may change
    afterwards: the training replay adds a row per vehicle-day while it keeps merging) in
    one pass of attribute reads (``msgspec.structs.astuple``); ``matrix`` computes all
    features of all rows with numpy. Training (``models.risk.replay``) and the stream
    (``feature_matrix``) both go through this class.
    """

    def __init__(self, weather: "ExposureCache | HourlyLookup", reuse_ring_summaries: bool = True) -> None:
        self.weather = weather if isinstance(weather, ExposureCache) else ExposureCache(weather)
        self.reuse = reuse_ring_summaries
        self._flat: list[Any] = []
        self._n = 0
        self._sightings: list[int] = []
        self._sighting_rows: list[int] = []
        self._summary: list[tuple[float, ...] | None] = []
        self._ring: list[int] = []
        self._ring_rows: list[int] = []
        self._ring_keys: list[tuple[str, tuple[Any, ...]]] = []
        self._stack: list[float] = []
        self._stack_len: list[int] = []
        self._exposure: list[tuple[float, float, float, float]] = []
        self._dtc: list[tuple[int, Sequence[str]]] = []
        self._now: list[int] = []
        self._service: list[float] = []
        self._ages: list[tuple[float, float, float, float]] = []

    def __len__(self) -> int:
        return self._n

    def add(self, twins: Sequence[Twin], now_ms: Sequence[int], in_service_ms: Sequence[int | None],
            component_ages_days: Sequence[Mapping[str, float | None] | None]) -> None:
        """Collect one row per twin (the per-row arguments aligned with ``twins``)."""
        ring, stack, stack_len = self._ring, self._stack, self._stack_len
        ext, ext_ring, ext_stack, ap_len = self._flat.extend, ring.extend, stack.extend, stack_len.append
        ext_seen, ap_seen = self._sightings.extend, self._sighting_rows.append
        ap_exp, of = self._exposure.append, self.weather.of
        ap_sum, get_sum = self._summary.append, (_RING_SUMMARIES.get if self.reuse else {}.get)
        ap_ring_row, ap_ring_key = self._ring_rows.append, self._ring_keys.append
        dtc = self._dtc
        n0 = self._n
        self._n += len(twins)
        nan = _NAN
        no_summary = _NO_SUMMARY
        for i, tw in enumerate(twins):
            h = tw.history
            inv = h.inverter
            rf = inv.rf
            d = h.daily
            dc = h.dtc
            values = tw.values
            odo, soh, lv, codes = values[_ODO], values[_SOH], values[_LV], values[_DTC]
            ext((h.observed_s, h.n_updates, h.last_ms, inv.peak_c, inv.above80_s, inv.above100_s, inv.damage,
                 rf.cand, rf.direction, d.day, d.first_day, d.inv_max, d.pack_max, tw.first_seen, tw.last_seen,
                 tw.n_applied, nan if odo is None else odo, nan if soh is None else soh, nan if lv is None else lv))
            ext(astuple(h.battery))
            ext(astuple(h.motor))
            ext(astuple(h.lv))
            ext(astuple(h.usage))
            ext(d.base)
            ext(inv.bins_half)
            if dc.active or any(dc.last_seen_ms):
                ap_seen(n0 + i)
                ext_seen(dc.last_seen_ms)
                ext_seen(dc.onsets)
                ext_seen(dc.onset_ms)
            day = d.day
            if day < 0:
                ap_sum(no_summary)
            else:
                r = d.ring
                j = (day - 1) % N_DAYS * N_COLS
                key = (day, d.first_day, tuple(d.base), tuple(r[j:j + N_COLS]))
                hit = get_sum(tw.vin)
                summ = hit[1] if hit is not None and hit[0] == key else None
                ap_sum(summ)
                if summ is None:
                    ext_ring(r)
                    ap_ring_row(n0 + i)
                    ap_ring_key((tw.vin, key))
            st = rf.stack
            ext_stack(st)
            ap_len(len(st))
            ap_exp(of(tw.residency))
            if codes:
                dtc.append((n0 + i, codes))
        self._now.extend(now_ms)
        self._service.extend(nan if s is None else s for s in in_service_ms)
        ap_age = self._ages.append
        for a in component_ages_days:
            if a is None:
                ap_age((nan, nan, nan, nan))
            else:
                ap_age(tuple(nan if (x := a.get(c)) is None else float(x) for c in COMPONENTS))  # type: ignore

    def matrix(self, dtype: Any = np.float64) -> NDArray[Any]:
        """``(rows, N_FEATURES)`` in ``FEATURE_NAMES`` order (NaN = unknown)."""
        n = self._n
        out = np.empty((n, N_FEATURES), dtype=np.float64)
        if n == 0:
            return out.astype(dtype, copy=False)
        R = np.array(self._flat, dtype=np.float64).reshape(n, _N_COLS_ROW)
        D = np.zeros((n, 3 * _N_DTC))
        D[self._sighting_rows] = np.array(self._sightings, dtype=np.float64).reshape(-1, 3 * _N_DTC)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            _history_columns(R, self._summaries(R), np.array(self._stack, dtype=np.float64),
                             np.array(self._stack_len, dtype=np.int64), D, out)
            out[:, _H:_H + _E] = np.array(self._exposure, dtype=np.float64).reshape(n, _E)
            _extra_columns(R, out, np.array(self._now, dtype=np.float64), np.array(self._service, dtype=np.float64),
                           np.array(self._ages, dtype=np.float64).reshape(n, len(COMPONENTS)), self._dtc)
        return out.astype(dtype, copy=False)


    def _summaries(self, R: NDArray[np.float64]) -> NDArray[np.float64]:
        """``(n, _N_SUMMARY)`` ring summaries: cached ones, and the others from their rings (then cached)."""
        miss = np.array(self._ring_rows, dtype=np.intp)
        fresh = _ring_summary(np.array(self._ring, dtype=np.float64).reshape(len(miss), N_DAYS, N_COLS),
                              R[miss, _C_DAY], R[miss, _C_FIRST]).tolist()
        if len(_RING_SUMMARIES) + len(fresh) > RING_CACHE_MAX:
            _RING_SUMMARIES.clear()
        summary, keep = self._summary, self.reuse
        for i, (vin, key), row in zip(self._ring_rows, self._ring_keys, fresh):
            summary[i] = t = tuple(row)
            if keep:
                _RING_SUMMARIES[vin] = (key, t)
        return np.array(summary, dtype=np.float64).reshape(len(R), _N_SUMMARY)


def _ring_summary(ring: NDArray[np.float64], day: NDArray[np.float64], first: NDArray[np.float64]
                  ) -> NDArray[np.float64]:
    """The stored-day part of ``twins.history.daily.window`` / ``soh_slope_per_day`` for rows of rings."""
    out = np.empty((len(ring), _N_SUMMARY))
    back = (day[:, None] - np.arange(N_DAYS)[None, :]) % N_DAYS       # slot s holds the day `day - back`
    in30 = (back >= 1) & (day[:, None] - back >= first[:, None])
    in7 = in30 & (back <= 6)
    stored = ring[:, :, :N_TOTALS] / _SCALE6
    out[:, _S_SUM7:_S_SUM7 + N_TOTALS] = np.where(in7[:, :, None], stored, 0.0).sum(axis=1)
    out[:, _S_SUM30:_S_SUM30 + N_TOTALS] = np.where(in30[:, :, None], stored, 0.0).sum(axis=1)
    for col, c_ring, mask in ((_S_INV7, INV_MAX, in7), (_S_INV30, INV_MAX, in30), (_S_CELL7, PACK_MAX, in7),
                              (_S_CELL30, PACK_MAX, in30)):
        out[:, col] = np.where(mask & (ring[:, :, c_ring] != NO_DATA), ring[:, :, c_ring] / 10.0, -np.inf).max(axis=1)
    has = in30 & (ring[:, :, SOH_COL] != NO_DATA)
    x = np.where(has, -back, 0.0)
    y = np.where(has, ring[:, :, SOH_COL] / 100.0, 0.0)
    out[:, _S_N] = has.sum(axis=1)
    out[:, _S_X] = x.sum(axis=1)
    out[:, _S_Y] = y.sum(axis=1)
    out[:, _S_XX] = (x * x).sum(axis=1)
    out[:, _S_XY] = (x * y).sum(axis=1)
    return out


#: The derived extra columns after ``observed_span_days``, in ``EXTRA_FEATURES`` order: ``("ratio", a, b)``
#: = a / b (NaN where b < 1 or a unknown; "observed" = history_observed_h, "span" = observed_span_days,
#: "hot"/"large" = the hot/large inverter cycle bins summed) or ``("diff", a, b)`` = a - b.
_EXTRA_DERIVED: tuple[tuple[str, str, str], ...] = (
    ("ratio", "inv_hours_above_80c", "observed"), ("ratio", "inv_damage_cips08", "span"),
    ("ratio", "motor_hours_above_120c", "observed"), ("ratio", "batt_efc", "span"),
    ("ratio", "batt_dcfc_sessions", "span"), ("ratio", "batt_hours_soc_above_90", "observed"),
    ("ratio", "lv_low_events", "span"), ("ratio", "odo", "age"),
    ("diff", "daily_inv_temp_max_7d", "daily_inv_temp_max_30d"),
    ("diff", "daily_cell_temp_max_7d", "daily_cell_temp_max_30d"),
    ("ratio", "inv_hours_above_100c", "observed"), ("ratio", "inv_cycles_total", "span"), ("ratio", "hot", "span"),
    ("ratio", "large", "span"), ("ratio", "motor_hours_above_150c", "observed"),
    ("ratio", "motor_load_hours", "observed"), ("ratio", "usage_driving_hours", "observed"),
    ("ratio", "batt_ah_throughput", "span"), ("ratio", "batt_dcfc_kwh", "span"),
    ("ratio", "batt_hours_soc_below_10", "observed"), ("ratio", "lv_wakes", "span"),
    ("ratio", "lv_cold_wakes", "lv_wakes"), ("ratio", "lv_hours_below_12v", "observed"),
)


def _known(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.where(np.isfinite(x), x, _NAN)


def _ratio_v(a: NDArray[np.float64], b: NDArray[np.float64], min_b: float) -> NDArray[np.float64]:
    """``a / b`` where ``b >= min_b`` and ``a`` is known, else NaN."""
    return np.where((b >= min_b) & ~np.isnan(a), a / b, _NAN)


def _cips08_damage(rng: NDArray[np.float64], tmin: NDArray[np.float64], count: NDArray[np.float64]
                   ) -> NDArray[np.float64]:
    """``count / cips08_cycles_to_failure(rng, tmin)`` (0 for no swing), as ``twins.history.inverter`` computes it."""
    pos = rng > 0.0
    r = np.where(pos, rng, 1.0)
    nf = _K_FIXED * r**CIPS08_B1 * np.exp(CIPS08_B2 / (tmin + 273.15))
    return np.where(pos, count / nf, 0.0)


def _residue(stack: NDArray[np.float64], lens: NDArray[np.int64], cand: NDArray[np.float64],
             direction: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64],
                                                      NDArray[np.float64]]:
    """``twins.history.rainflow.residue_cycles`` of every row at once: (row, a, b, count) of each cycle."""
    n = len(lens)
    width = int(lens.max(initial=0)) + 1
    S = np.zeros((n, width))
    rows = np.repeat(np.arange(n), lens)
    cols = np.arange(len(stack)) - np.repeat(np.cumsum(lens) - lens, lens)
    S[rows, cols] = stack
    start = np.zeros(n, dtype=np.int64)
    end = lens.copy()
    out_r: list[NDArray[np.int64]] = []
    out_a: list[NDArray[np.float64]] = []
    out_b: list[NDArray[np.float64]] = []
    out_c: list[NDArray[np.float64]] = []
    push = np.flatnonzero(direction != 0)
    S[push, end[push]] = cand[push]                       # the pending extreme becomes a point (push_point)
    end[push] += 1
    live = push
    while len(live):                                      # push_point's loop, for every row still closing ranges
        live = live[end[live] - start[live] >= 3]
        e = end[live]
        a, b, p = S[live, e - 3], S[live, e - 2], S[live, e - 1]
        close = np.abs(p - b) >= np.abs(b - a)
        live, e, a, b, p = live[close], e[close], a[close], b[close], p[close]
        if not len(live):
            break
        half = e - start[live] == 3
        out_r.append(live)
        out_a.append(a)
        out_b.append(b)
        out_c.append(np.where(half, 0.5, 1.0))
        start[live[half]] += 1                            # step 5: the start point goes
        full = live[~half]
        S[full, end[full] - 3] = S[full, end[full] - 1]   # step 4: the two points of the cycle go
        end[full] -= 2
    over = push[end[push] - start[push] > RESIDUE_MAX]    # bounded memory: forced half cycle
    if len(over):
        out_r.append(over)
        out_a.append(S[over, start[over]])
        out_b.append(S[over, start[over] + 1])
        out_c.append(np.full(len(over), 0.5))
        start[over] += 1
    j = np.arange(width - 1)[None, :]
    pair = (j >= start[:, None]) & (j < end[:, None] - 1)  # step 6: the residue, as half cycles
    pr, pc = np.nonzero(pair)
    out_r.append(pr)
    out_a.append(S[pr, pc])
    out_b.append(S[pr, pc + 1])
    out_c.append(np.full(len(pr), 0.5))
    return (np.concatenate(out_r), np.concatenate(out_a), np.concatenate(out_b), np.concatenate(out_c))


def _history_columns(R: NDArray[np.float64], S: NDArray[np.float64], stack: NDArray[np.float64],
                     lens: NDArray[np.int64], D: NDArray[np.float64], out: NDArray[np.float64]) -> None:
    """``twins.history.features`` of every row, into ``out[:, :_H]``."""
    n = len(R)
    sub = {name: {f: R[:, _C_SUB + i] for f, i in offs.items()} for name, offs in _SUB_OFFSET.items()}
    b, m, lv, u = sub["battery"], sub["motor"], sub["lv"], sub["usage"]
    col = {}
    # inverter cycles: stored half counts plus the residue (cycle_summary)
    counts = R[:, _C_BINS:_C_BINS + N_BINS] * 0.5
    r, a, bb, c = _residue(stack, lens, R[:, _C_CAND], R[:, _C_DIR])
    rng = np.abs(bb - a)
    k = np.searchsorted(_DT_EDGES, rng, side="right") * (len(MEAN_EDGES) + 1) + np.searchsorted(
        _MEAN_EDGES, (a + bb) * 0.5, side="right")
    np.add.at(counts, (r, k), c)
    damage = R[:, _C_IDMG] + np.bincount(r, weights=_cips08_damage(rng, np.minimum(a, bb), c), minlength=n)
    col["history_observed_h"] = R[:, _C_OBS] / 3600.0
    col["history_updates"] = R[:, _C_NUPD]
    col["inv_temp_peak_c"] = _known(R[:, _C_IPEAK])
    col["inv_hours_above_80c"] = R[:, _C_I80] / 3600.0
    col["inv_hours_above_100c"] = R[:, _C_I100] / 3600.0
    col["inv_cycles_total"] = counts.sum(axis=1)
    for j, name in enumerate(n for n in HISTORY_FEATURE_NAMES if n.startswith("inv_cycles_dt_")):
        col[name] = counts[:, j]
    col["inv_damage_cips08"] = damage
    col["batt_ah_throughput"] = b["ah_as"] / 3600.0
    col["batt_efc"] = b["soc_swing_pct"] / 200.0
    col["batt_dcfc_sessions"] = b["dc_sessions"]
    col["batt_dcfc_kwh"] = b["dc_kws"] / 3600.0
    col["batt_hours_soc_above_90"] = b["soc_hi_s"] / 3600.0
    col["batt_hours_soc_below_10"] = b["soc_lo_s"] / 3600.0
    col["batt_arrhenius_eq_hours_25c"] = b["arr_eq_s"] / 3600.0
    col["batt_arrhenius_mean_factor"] = np.where(b["arr_obs_s"] != 0, b["arr_eq_s"] / b["arr_obs_s"], _NAN)
    col["batt_cell_temp_peak_c"] = _known(b["cell_peak_c"])
    soh = b["soh"]
    col["batt_soh_pct"] = np.where(soh >= 0.0, soh, _NAN)
    col["motor_temp_peak_c"] = _known(m["peak_c"])
    col["motor_hours_above_120c"] = m["above120_s"] / 3600.0
    col["motor_hours_above_150c"] = m["above150_s"] / 3600.0
    col["motor_load_hours"] = m["load_s"] / 3600.0
    col["lv_wake_min_v"] = _known(lv["wake_min_v"])
    col["lv_wake_last_v"] = _known(lv["wake_last_v"])
    col["lv_wakes"] = lv["wakes"]
    col["lv_cold_wakes"] = lv["cold_wakes"]
    col["lv_min_v"] = _known(lv["min_v"])
    col["lv_hours_below_12v"] = lv["below_s"] / 3600.0
    col["lv_low_events"] = lv["events"]
    dist = u["distance_km"]
    harsh = u["harsh_accel"] + u["harsh_brake"]
    col["usage_distance_km"] = dist
    col["usage_driving_hours"] = u["driving_s"] / 3600.0
    col["usage_harsh_accel"] = u["harsh_accel"]
    col["usage_harsh_brake"] = u["harsh_brake"]
    col["usage_harsh_per_100km"] = np.where(dist >= 1.0, harsh / dist * 100.0, _NAN)
    # daily windows (twins.history.daily.window): the live day plus the stored days of the window
    day, first = R[:, _C_DAY], R[:, _C_FIRST]
    seen = day >= 0
    totals = np.column_stack([dist, u["driving_s"], b["ah_as"], b["dc_sessions"], b["dc_kws"], harsh])
    live = totals - R[:, _C_BASE:_C_BASE + N_TOTALS]
    for w, c_sum, c_inv, c_cell in ((7, _S_SUM7, _S_INV7, _S_CELL7), (30, _S_SUM30, _S_INV30, _S_CELL30)):
        sums = np.where(seen[:, None], live + S[:, c_sum:c_sum + N_TOTALS], 0.0)
        mx = {}
        for key, c_s, c_live in (("inv", c_inv, _C_IMAX), ("cell", c_cell, _C_PMAX)):
            t = np.maximum(S[:, c_s], R[:, c_live])
            mx[key] = np.where(seen & (t > -np.inf), t, _NAN)
        days = np.where(seen, np.minimum(w, day - first + 1), 0.0)
        has_days = days != 0
        div = np.where(has_days, days, 1.0)
        col[f"daily_days_{w}d"] = days
        col[f"daily_km_{w}d"] = sums[:, DIST]
        col[f"daily_km_per_day_{w}d"] = np.where(has_days, sums[:, DIST] / div, _NAN)
        col[f"daily_driving_h_per_day_{w}d"] = np.where(has_days, sums[:, DRIVE] / 3600.0 / div, _NAN)
        col[f"daily_ah_per_day_{w}d"] = np.where(has_days, sums[:, AH] / 3600.0 / div, _NAN)
        col[f"daily_dcfc_sessions_{w}d"] = sums[:, DCS]
        col[f"daily_inv_temp_max_{w}d"] = mx["inv"]
        col[f"daily_cell_temp_max_{w}d"] = mx["cell"]
        if w == 30:
            col["daily_dcfc_kwh_30d"] = sums[:, DCKWH] / 3600.0
            col["daily_harsh_30d"] = sums[:, HARSH]
    # SoH slope (twins.history.daily.soh_slope_per_day): stored end-of-day SoH in the window + today's (x = 0)
    cur = seen & (soh >= 0.0)
    cnt = S[:, _S_N] + cur
    safe = np.maximum(cnt, 1.0)
    sy = S[:, _S_Y] + np.where(cur, soh, 0.0)
    sxx = S[:, _S_XX] - S[:, _S_X] * S[:, _S_X] / safe
    sxy = S[:, _S_XY] - S[:, _S_X] * sy / safe
    col["batt_soh_slope_pct_per_day"] = np.where(cnt >= 2, sxy / np.where(sxx != 0, sxx, 1.0), _NAN)
    # trouble-code sightings (twins.history.dtc)
    last = R[:, _C_LAST]
    for k, code in enumerate(DTC_TRACKED):
        seen_ms = D[:, _D_SEEN + k]
        col[f"dtc_days_since_{code}"] = np.where(seen_ms != 0, (last - seen_ms) / 86_400_000.0, _NAN)
        at = D[:, _D_AT + k]
        col[f"dtc_onsets_30d_{code}"] = np.where(at != 0, D[:, _D_ONSETS + k] * np.exp(
            -(last - at) / (DTC_TAU_DAYS * 86_400_000.0)), 0.0)
    for j, name in enumerate(HISTORY_FEATURE_NAMES):
        out[:, j] = col[name]


def _extra_columns(R: NDArray[np.float64], out: NDArray[np.float64], now: NDArray[np.float64],
                   service: NDArray[np.float64], ages: NDArray[np.float64],
                   dtc: list[tuple[int, Sequence[str]]]) -> None:
    """``EXTRA_FEATURES`` of every row, into ``out[:, _H + _E:]`` (needs the history columns filled)."""
    def h(name: str) -> NDArray[np.float64]:
        return out[:, _HIX[name]]

    n = len(R)
    odo = R[:, _C_ODO]
    age = (now - service) / DAY_MS                        # NaN where the in-service date is unknown
    comp = np.where(np.isnan(ages), age[:, None], ages)
    flags = np.zeros((n, 1 + len(DTC_CODES)))
    for i, codes in dtc:
        flags[i, 0] = len(codes)
        for j, (code, _) in enumerate(DTC_CODES):
            if any(c.startswith(code) for c in codes):
                flags[i, 1 + j] = 1.0
    observed_h = h("history_observed_h")
    span = np.where(R[:, _C_NAPP] != 0, (R[:, _C_LSEEN] - R[:, _C_FSEEN]) / DAY_MS, _NAN)
    hot = out[:, [_HIX[x] for x in _HOT_BINS]].sum(axis=1)
    large = out[:, [_HIX[x] for x in _LARGE_BINS]].sum(axis=1)
    per = {"observed": observed_h, "span": span, "age": age, "hot": hot, "large": large, "odo": odo}

    def ratio(num: str, den: str) -> NDArray[np.float64]:
        return _ratio_v(per[num] if num in per else h(num), per[den] if den in per else h(den), 1.0)

    cols = [odo, age, *comp.T, R[:, _C_SOH], R[:, _C_LV], *flags.T, span]
    for kind, a, b in _EXTRA_DERIVED:
        cols.append(ratio(a, b) if kind == "ratio" else h(a) - h(b))
    out[:, _H + _E:] = np.column_stack(cols)


def twin_features(twin: Twin, hourly_lookup: "HourlyLookup | ExposureCache", *, now_ms: int,
                  in_service_ms: int | None,
                  component_ages_days: Mapping[str, float | None] | None) -> NDArray[np.float64]:
    """The feature vector (``FEATURE_NAMES`` order) of ``twin`` scored at ``now_ms``.

    ``hourly_lookup(cell, hour)`` is the weather table lookup the stream uses;
    ``in_service_ms`` the vehicle's in-service date (None = unknown); and
    ``component_ages_days`` days since each component's last repair/replacement
    (missing or None entries fall back to the vehicle age).
    """
    return feature_matrix([twin], hourly_lookup, now_ms=now_ms, in_service_ms=[in_service_ms],
                          component_ages_days=[component_ages_days])[0]


def feature_matrix(twins: Sequence[Twin], hourly_lookup: "HourlyLookup | ExposureCache", *,
                   now_ms: int | Sequence[int], in_service_ms: Sequence[int | None] | None = None,
                   component_ages_days: Sequence[Mapping[str, float | None] | None] | None = None,
                   dtype: Any = np.float64) -> NDArray[Any]:
    """Rows of :func:`twin_features` for many twins, shape ``(len(twins), N_FEATURES)``, computed column-wise.

    ``now_ms`` is one time for all rows or one per row; the other per-row arguments
    are sequences aligned with ``twins`` (None = unknown for every row). ``hourly_lookup``
    may be an :class:`ExposureCache` to share weather sums across calls (only while the
    weather does not change).
    """
    n = len(twins)
    nows = [now_ms] * n if isinstance(now_ms, (int, np.integer)) else list(now_ms)
    services = list(in_service_ms) if in_service_ms is not None else [None] * n
    ages = list(component_ages_days) if component_ages_days is not None else [None] * n
    if not len(nows) == len(services) == len(ages) == n:
        raise ValueError(f"per-row arguments must have {n} entries, got now_ms={len(nows)}, "
                         f"in_service_ms={len(services)}, component_ages_days={len(ages)}")
    rows = FeatureRows(hourly_lookup)
    with paused_gc():
        rows.add(twins, nows, services, ages)
    return rows.matrix(dtype)


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
    """The feature table of ``models/risk/README.md`` (``python -m models.risk.features``)."""
    model, extremes = set(MODEL_FEATURES), set(SINCE_START_EXTREMES)
    rows = ["| # | name | unit | meaning | used by the models |", "|---|---|---|---|---|"]
    for i, (name, unit, meaning) in enumerate(feature_docs()):
        used = "yes" if name in model and name not in extremes else ("yes (since-start extreme)" if name in model
                                                                      else "no (since-start total)")
        rows.append(f"| {i} | `{name}` | {unit} | {meaning} | {used} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
