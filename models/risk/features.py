"""The risk-model feature vector of one twin: names, documentation and the (batched) builders.

The vector is the twin's 75 operating-history features (``twins.history``), its 4
weather-exposure integrals (``twins.residency.exposure``), and the columns of
``EXTRA_FEATURES`` below (odometer, ages, current state, active trouble codes and
rates normalised by observed time). ``NaN`` means unknown; HistGradientBoosting
routes missing values natively, so nothing is imputed.

The same builder (:class:`FeatureRows`) makes training rows (``models.risk.replay`` adds
one at the end of every UTC day) and scoring rows in the stream (:func:`feature_matrix`),
so the two cannot drift apart. It is batched: one pass over the twins packs the raw
numbers of each twin into bytes (one ``struct`` call per twin, the rainflow stack and
the 30-day ring apart), then every feature of every row — rainflow residue counts and
CIPS08 damage, the 7/30-day windows, SoH slope, ratios and rates — is computed by one
compiled loop (:func:`models.risk.feature_kernel.fill`, numba). The 30-day ring is
summarised once a day per vehicle with numpy (``_RING_SUMMARIES``);
the weather exposure of all residency lists is summed by one compiled pass, each (cell, UTC
day) looked up once (:class:`models.risk.exposure.ExposureCache`). A test checks the
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
import itertools
import math
import struct
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from models.risk.exposure import EXPOSURE_FEATURE_NAMES, ExposureCache
from models.risk.feature_kernel import (CONSTANTS, EDGES_DT, EDGES_MEAN, EXTRA_OUTPUTS, HISTORY_OUTPUTS, HOT_BINS,
                                        LARGE_BINS, LAYOUT, N_SUMMARY, S_CELL7, S_CELL30, S_INV7, S_INV30, S_N, S_SUM7,
                                        S_SUM30, S_X, S_XX, S_XY, S_Y, fill)
from models.risk.feature_kernel import INPUTS as KERNEL_INPUTS
from models.risk.msgpack_arrays import doubles
from models.risk.twin_records import RecordProgram, TwinRecords, build_program
from twins.history import FEATURE_NAMES as HISTORY_FEATURE_NAMES
from twins.history.daily import INV_MAX, N_COLS, N_DAYS, N_TOTALS, NO_DATA, PACK_MAX, SCALE
from twins.history.daily import SOH as SOH_COL
from twins.history.dtc import TRACKED as DTC_TRACKED
from twins.history.inverter import N_BINS
from twins.residency import HourlyLookup
from twins.signals import N_SIGNALS, SLOT
from twins.twin import LAYOUT_VERSION, Twin

DAY_MS = 86_400_000
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

_ODO = SLOT["Vehicle.TraveledDistance"]
_SOH = SLOT["Vehicle.Powertrain.TractionBattery.StateOfHealth"]
_LV = SLOT["Vehicle.LowVoltageBattery.CurrentVoltage"]
_DTC = SLOT["Vehicle.Diagnostics.DTCList"]
_NAN = math.nan
_N_DTC = len(DTC_TRACKED)
#: The numbers ``FeatureRows.add`` copies out of every twin, in the order it packs them (``_ROW``): float64 ...
_ROW_FLOATS: tuple[str, ...] = (
    "observed_s", "inv_peak_c", "inv_above80_s", "inv_above100_s", "inv_damage", "rf_cand", "day_inv_max",
    "day_pack_max", "odo", "soh_now", "lv_now", "ah_as", "soc_swing_pct", "dc_kws", "soc_hi_s", "soc_lo_s",
    "arr_eq_s", "arr_obs_s", "cell_peak_c", "soh", "motor_peak_c", "above120_s", "above150_s", "load_s",
    "wake_min_v", "wake_last_v", "lv_min_v", "below_s", "distance_km", "driving_s",
    *(f"base_{k}" for k in range(N_TOTALS)))
#: ... then int64 (``stack_len`` = length of the rainflow stack), the inverter cycle bins and yesterday's row
#: of the 30-day ring.
_ROW_INTS: tuple[str, ...] = (
    "day", "first_day", "n_updates", "direction", "first_seen", "last_seen", "n_applied", "dc_sessions", "wakes",
    "cold_wakes", "lv_events", "harsh_accel", "harsh_brake", "stack_len", *(f"bin_{k}" for k in range(N_BINS)),
    *(f"yesterday_{k}" for k in range(N_COLS)))
_NF = len(_ROW_FLOATS)
#: One struct call per twin converts its numbers while they are in the CPU cache: ~15 ns a number, where
#: collecting them first and converting all at the end (``np.array``) took ~45.
_ROW = struct.Struct(f"<{_NF}d{len(_ROW_INTS)}q")
_NO_ROW = bytes(_ROW.size)
_F_BASE = _ROW_FLOATS.index("base_0")
#: The rows (of the unpacked ``_ROW``) that fingerprint a twin's 30-day ring (see ``_RingSummaries``): day,
#: first day, the totals at the day's first reading, yesterday's ring row and the twin's first reading time.
_ROW_INDEX = {name: i for i, name in enumerate(_ROW_FLOATS + _ROW_INTS)}
_FINGERPRINT = np.array([_ROW_INDEX[name] for name in ("day", "first_day", *(f"base_{k}" for k in range(N_TOTALS)),
                                                       *(f"yesterday_{k}" for k in range(N_COLS)), "first_seen")])
# where the compiled feature pass (models.risk.feature_kernel.fill) finds its inputs and puts its outputs
_KERNEL_INPUTS = np.array([_ROW_INDEX[name] for name in KERNEL_INPUTS])
_BIN_FEATURES = [n for n in HISTORY_FEATURE_NAMES if n.startswith("inv_cycles_dt_")]      # in bin order
_KERNEL_HISTORY = np.array([FEATURE_INDEX[_BIN_FEATURES[int(n[4:])] if n.startswith("bin_") else n]
                            for n in HISTORY_OUTPUTS])
_KERNEL_EXPOSURE = np.array([FEATURE_INDEX[n] for n in EXPOSURE_FEATURE_NAMES])
_KERNEL_EXTRA = np.array([FEATURE_INDEX[n] for n in EXTRA_OUTPUTS])
if sorted([*_KERNEL_HISTORY, *_KERNEL_EXPOSURE, *_KERNEL_EXTRA]) != list(range(N_FEATURES)):
    raise AssertionError("models.risk.feature_kernel must compute every feature once")
_RING = struct.Struct(f"<{N_DAYS * N_COLS}i")        # int32: the ring holds small quantised ints
_NO_RING = bytes(_RING.size)
# trouble-code sightings (kept only for twins that ever saw a tracked code): the twin's last update, then per
# tracked code last seen, onsets and onset time (the layout models.risk.feature_kernel.fill reads)
_N_D = 1 + 3 * _N_DTC
_SIGHTINGS = struct.Struct(f"<{_N_D}d")
_SCALE6 = np.array(SCALE[:N_TOTALS])
_NO_SUMMARY = np.array((0.0,) * (2 * N_TOTALS) + (-math.inf,) * 4 + (0.0,) * 5)
_UNKNOWN_AGES = (None,) * len(COMPONENTS)
_UNKNOWN_AGES_LIST = [None] * len(COMPONENTS)
RING_CACHE_MAX = 1_000_000


#: Where ``FeatureRows.add_records`` finds the numbers of ``_ROW`` in a stored twin (field paths of
#: ``twins.twin.Twin``); ``yesterday_*`` come from the ring, ``stack_len`` from the stack's length.
_RECORD_NUMBERS: dict[str, str] = {
    "observed_s": "history.observed_s", "inv_peak_c": "history.inverter.peak_c",
    "inv_above80_s": "history.inverter.above80_s", "inv_above100_s": "history.inverter.above100_s",
    "inv_damage": "history.inverter.damage", "rf_cand": "history.inverter.rf.cand",
    "day_inv_max": "history.daily.inv_max", "day_pack_max": "history.daily.pack_max",
    "odo": f"values.{_ODO}", "soh_now": f"values.{_SOH}", "lv_now": f"values.{_LV}",
    **{name: f"history.battery.{name}" for name in ("ah_as", "soc_swing_pct", "dc_kws", "soc_hi_s", "soc_lo_s",
                                                    "arr_eq_s", "arr_obs_s", "cell_peak_c", "soh", "dc_sessions")},
    "motor_peak_c": "history.motor.peak_c", "above120_s": "history.motor.above120_s",
    "above150_s": "history.motor.above150_s", "load_s": "history.motor.load_s",
    "wake_min_v": "history.lv.wake_min_v", "wake_last_v": "history.lv.wake_last_v", "lv_min_v": "history.lv.min_v",
    "below_s": "history.lv.below_s", "wakes": "history.lv.wakes", "cold_wakes": "history.lv.cold_wakes",
    "lv_events": "history.lv.events", "distance_km": "history.usage.distance_km",
    "driving_s": "history.usage.driving_s", "harsh_accel": "history.usage.harsh_accel",
    "harsh_brake": "history.usage.harsh_brake", "day": "history.daily.day", "first_day": "history.daily.first_day",
    "n_updates": "history.n_updates", "direction": "history.inverter.rf.direction", "first_seen": "first_seen",
    "last_seen": "last_seen", "n_applied": "n_applied",
}
_STACK, _RING_AT, _CELLS, _STARTS, _ENDS = ("history.inverter.rf.stack", "history.daily.ring", "residency.cells",
                                            "residency.starts", "residency.ends")
_CODES = f"values.{_DTC}"
#: The fields of a stored twin the record path reads (``models.risk.twin_records``): ``_RECORD_NUMBERS``, the
#: lists, the trouble-code sightings, the repair log, and where the risk and alert fields are (for scoring).
_RECORD_WANTS: dict[str, Any] = {
    **{path: "num" for path in _RECORD_NUMBERS.values()},
    "history.daily.base": ("nums", N_TOTALS), "history.inverter.bins_half": ("nums", N_BINS),
    _STACK: "numbers", _RING_AT: ("row_before", N_COLS, "history.daily.day"), _CELLS: "codes", _STARTS: "numbers",
    _ENDS: "numbers", _CODES: "at",
    "history.last_ms": "num", "history.dtc.active": "num", "history.dtc.last_seen_ms": ("nums", _N_DTC),
    "history.dtc.onsets": ("nums", _N_DTC), "history.dtc.onset_ms": ("nums", _N_DTC),
    "maintenance.serviced_ms": ("nums", len(COMPONENTS)),
    "risk": "mark", "risk.version": "at", "risk.scored_ms": "num", "alerts": "mark", "alerts.active": "at",
}
#: The program reads the numbers of ``_ROW`` into the columns ``add`` unpacks them to (the first
#: ``len(_ROW_FLOATS + _ROW_INTS)`` columns of ``TwinRecords.fields`` are rows as ``matrix`` reads them).
RECORD_PROGRAM: RecordProgram = build_program(Twin, _RECORD_WANTS, fixed_lists={"values": N_SIGNALS},
                                              require={"layout": LAYOUT_VERSION}, place={
    **{path: _ROW_INDEX[name] for name, path in _RECORD_NUMBERS.items()},
    "history.daily.base": _ROW_INDEX["base_0"], "history.inverter.bins_half": _ROW_INDEX["bin_0"],
    _RING_AT: _ROW_INDEX["yesterday_0"]})
_REC = RECORD_PROGRAM.columns
_AT = RECORD_PROGRAM.at
_N_ROW = len(_ROW_FLOATS) + len(_ROW_INTS)
_REC_SIGHTINGS = np.array([_REC["history.last_ms"], *(_REC["history.dtc.last_seen_ms"] + k for k in range(_N_DTC)),
                           *(_REC["history.dtc.onsets"] + k for k in range(_N_DTC)),
                           *(_REC["history.dtc.onset_ms"] + k for k in range(_N_DTC))])


class _RingSummaries:
    """Per VIN, the last 30-day ring summary and the fingerprint of the ring it was computed from:
    ``(day, first_day, base, yesterday's ring row, first_seen)``.

    The ring changes only when a day rolls over (``twins.history.daily.roll_day``), which moves
    ``day`` and resets ``base`` (the cumulative totals at the day's first reading), so a twin scored
    again the same day reuses its summary instead of reading its 270 ring numbers again. A twin
    replaced by another history of the same VIN and day (rebuilt from other data, restored) is
    told apart by its totals, yesterday's row or first reading; a ring edited in place in an older
    row only, with all of these unchanged, is not (comparing every ring number would cost about
    as much as summarising it). Rows of two arrays, so that a batch compares and reads all its
    rows at once; ~0.5 kB per vehicle.
    """

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.fingerprints = np.empty((0, len(_FINGERPRINT)))
        self.summaries = np.empty((0, N_SUMMARY))

    def __len__(self) -> int:
        return len(self.index)

    def clear(self) -> None:
        """Forget every summary (the next scoring of each vehicle summarises its ring again)."""
        self.index.clear()

    def store(self, vins: Sequence[str], fingerprints: NDArray[np.float64], summaries: NDArray[np.float64]) -> None:
        """Keep these summaries (the last one of a VIN given twice)."""
        if len(self.index) + len(vins) > RING_CACHE_MAX:
            self.clear()
        index = self.index
        rows = [index.setdefault(vin, len(index)) for vin in vins]
        grow = max(len(index), 2 * len(self.summaries)) - len(self.summaries)
        if len(index) > len(self.summaries):
            self.fingerprints = np.concatenate([self.fingerprints, np.empty((grow, len(_FINGERPRINT)))])
            self.summaries = np.concatenate([self.summaries, np.empty((grow, N_SUMMARY))])
        self.fingerprints[rows] = fingerprints
        self.summaries[rows] = summaries


#: The ring summaries of the vehicles scored in this process (``FeatureRows(reuse_ring_summaries=True)``).
_RING_SUMMARIES = _RingSummaries()
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


class FeatureRows:
    """Feature rows of twins, collected now and computed later (``matrix``).

    ``add`` copies every number the features need out of the twins (so the twins may change
    afterwards: the training replay adds a row per vehicle-day while it keeps merging) in one
    pass of attribute reads, packed at once into float64/int64 bytes per twin (``_ROW``);
    ``matrix`` computes all features of all rows from those in one compiled pass. Training
    (``models.risk.replay``) and the stream (``feature_matrix``) both go through this class.
    ``reuse_ring_summaries`` reuses and keeps the 30-day ring summaries per VIN
    (``_RING_SUMMARIES``): for scoring, where a twin is scored many times a day.
    """

    def __init__(self, weather: "ExposureCache | HourlyLookup", reuse_ring_summaries: bool = True) -> None:
        self.weather = weather if isinstance(weather, ExposureCache) else ExposureCache(weather)
        self.reuse = reuse_ring_summaries
        self._n = 0
        self._rows: list[bytes] = []                      # _ROW per row, not yet unpacked into _blocks
        self._blocks: list[NDArray[np.float64]] = []      # unpacked rows: (rows, len(_ROW_FLOATS + _ROW_INTS))
        self._odd: list[tuple[int, tuple[Any, ...]]] = []  # rows _ROW could not pack (None, a float for an int)
        self._stack: list[float] = []                     # the rainflow stacks, one after the other
        self._res_cells: list[str] = []                   # the rows' residency lists, one after the other ...
        self._res_starts: list[int] = []
        self._res_ends: list[int] = []
        self._res_lens: list[int] = []                    # ... and the length of each
        self._known_rows: list[NDArray[np.intp]] = []     # rows whose ring summary is known ...
        self._known: list[NDArray[np.float64]] = []       # ... and those summaries
        self._rings: list[bytes] = []                     # _RING of the rows whose summary matrix computes
        self._odd_rings: list[tuple[int, list[Any]]] = []  # (index in _rings, ring) of rings _RING could not pack
        self._ring_rows: list[int] = []
        self._ring_vins: list[str] = []
        self._sightings: list[bytes] = []                 # _SIGHTINGS of the rows in _sighting_rows
        self._sighting_rows: list[int] = []
        self._dtc: list[tuple[int, Sequence[str]]] = []   # rows with active trouble codes
        self._now: list[int] = []
        self._service: list[int | None] = []
        self._age_rows: list[int] = []                    # rows with a known component age
        self._ages: list[tuple[Any, ...]] = []
        self._from_records: dict[str, Any] | None = None   # add_records' arrays (stack, exposure, flags, ages)

    def __len__(self) -> int:
        return self._n

    def add(self, twins: Sequence[Twin], now_ms: Sequence[int], in_service_ms: Sequence[int | None],
            component_ages_days: Sequence[Mapping[str, float | None] | None]) -> None:
        """Collect one row per twin (the per-row arguments aligned with ``twins``)."""
        with paused_gc():
            n0 = self._n
            cached = self._add(twins)
            self._n += len(twins)
            if self.reuse and cached:
                self._reuse_summaries(twins, n0, cached)
            self._now.extend(now_ms)
            self._service.extend(in_service_ms)
            for i, a in enumerate(component_ages_days):
                if a and [*a.values()] != _UNKNOWN_AGES_LIST:    # the common case: no repair or replacement known
                    known = tuple(map(a.get, COMPONENTS))
                    if known != _UNKNOWN_AGES:
                        self._age_rows.append(n0 + i)
                        self._ages.append(known)

    def add_records(self, records: TwinRecords, now_ms: int, in_service_ms: NDArray[np.float64],
                    ages_days: NDArray[np.float64]) -> NDArray[np.intp]:
        """Collect one row per stored twin of ``records`` (read with :data:`RECORD_PROGRAM`) without decoding
        them: the numbers ``add`` reads from twin objects, read from the records' bytes.

        ``in_service_ms`` per record (NaN = unknown), ``ages_days`` ``(n, len(COMPONENTS))`` (NaN = the vehicle
        age). Only on an empty ``FeatureRows``. Returns the records taken, in row order: those that fitted
        the program and whose lists were read (the others are to be decoded and given to ``add``)."""
        if self._n:
            raise ValueError("add_records takes an empty FeatureRows (rows of twin objects go to another)")
        rows = np.flatnonzero(records.ok)
        inputs, good = _record_inputs(records, rows)
        if not good.all():                                # a list of the wrong kind: read the others again
            rows = rows[good]
            inputs, good = _record_inputs(records, rows)
        n = len(rows)
        block = inputs["block"]
        self._blocks.append(block)
        self._n = n
        with paused_gc():
            self._now = [now_ms] * n
        self._from_records = {"stack": inputs["stack"], "cells": inputs["cells"], "starts": inputs["starts"],
                              "ends": inputs["ends"], "lens": inputs["lens"], "flags": inputs["flags"],
                              "service": in_service_ms[rows], "ages": ages_days[rows], "records": records,
                              "rows": rows}
        sighted = inputs["sighted"]
        self._sighting_rows = np.flatnonzero(sighted).tolist()
        self._sightings = [inputs["sightings"][sighted].tobytes()]
        if self.reuse:
            vins = records.vins if n == len(records) else [records.vins[r] for r in rows.tolist()]
            cached = np.fromiter(map(_RING_SUMMARIES.index.get, vins, itertools.repeat(-1)), np.intp, n)
            self._reuse_summaries_of(block, cached)
        else:
            self._record_rings(np.flatnonzero(block[:, _ROW_INDEX["day"]] >= 0))
        return rows

    def _record_rings(self, miss: NDArray[np.intp]) -> None:
        """Read the 30-day rings of these rows (records) for ``matrix`` to summarise."""
        if not len(miss):
            return
        src = self._from_records
        assert src is not None
        records, rows = src["records"], src["rows"]
        ring, _, good = records.numbers(_RING_AT, rows[miss], take=N_DAYS * N_COLS)
        ring = ring.reshape(len(miss), N_DAYS * N_COLS)
        ring[~good] = np.nan                              # a ring holding something else than numbers: unknown
        src.setdefault("rings", []).append(ring)
        self._ring_rows += miss.tolist()
        self._ring_vins += [records.vins[r] for r in rows[miss].tolist()]

    def _add(self, twins: Sequence[Twin]) -> list[int]:
        """The pass over the twins; returns the rows of their VINs in ``_RING_SUMMARIES`` (-1: none) when
        reusing ring summaries, else packs every ring."""
        ap_row, pack, pack_seen, ext_stack = self._rows.append, _ROW.pack, _SIGHTINGS.pack, self._stack.extend
        ext_cells, ext_starts, ext_ends = self._res_cells.extend, self._res_starts.extend, self._res_ends.extend
        ap_res_len = self._res_lens.append
        ap_seen, ap_seen_row = self._sightings.append, self._sighting_rows.append
        cached: list[int] = []
        ap_cached, get_cached, reuse = cached.append, _RING_SUMMARIES.index.get, self.reuse
        dtc = self._dtc
        n0 = self._n
        nan = _NAN
        for i, tw in enumerate(twins):
            h = tw.history
            inv = h.inverter
            rf = inv.rf
            d = h.daily
            b = h.battery
            m = h.motor
            lv = h.lv
            u = h.usage
            values = tw.values
            odo, soh, lvv = values[_ODO], values[_SOH], values[_LV]
            day = d.day
            ring = d.ring
            j = (day - 1) % N_DAYS * N_COLS                   # yesterday's ring row
            st = rf.stack
            ext_stack(st)
            res = tw.residency
            cells = res.cells
            ext_cells(cells)
            ext_starts(res.starts)
            ext_ends(res.ends)
            ap_res_len(len(cells))
            row = (h.observed_s, inv.peak_c, inv.above80_s, inv.above100_s, inv.damage, rf.cand, d.inv_max,
                   d.pack_max, nan if odo is None else odo, nan if soh is None else soh, nan if lvv is None else lvv,
                   b.ah_as, b.soc_swing_pct, b.dc_kws, b.soc_hi_s, b.soc_lo_s, b.arr_eq_s, b.arr_obs_s,
                   b.cell_peak_c, b.soh, m.peak_c, m.above120_s, m.above150_s, m.load_s, lv.wake_min_v,
                   lv.wake_last_v, lv.min_v, lv.below_s, u.distance_km, u.driving_s, *d.base,
                   day, d.first_day, h.n_updates, rf.direction, tw.first_seen, tw.last_seen, tw.n_applied,
                   b.dc_sessions, lv.wakes, lv.cold_wakes, lv.events, u.harsh_accel, u.harsh_brake, len(st),
                   *inv.bins_half, *ring[j:j + N_COLS])
            try:
                ap_row(pack(*row))
            except (struct.error, OverflowError):
                ap_row(_NO_ROW)
                self._odd.append((n0 + i, row))
            dc = h.dtc
            if dc.active or any(dc.last_seen_ms):
                ap_seen_row(n0 + i)
                seen = (h.last_ms, *dc.last_seen_ms, *dc.onsets, *dc.onset_ms)
                try:
                    ap_seen(pack_seen(*seen))
                except (struct.error, OverflowError):
                    ap_seen(np.array(seen, dtype=np.float64).tobytes())
            if reuse:
                ap_cached(get_cached(tw.vin, -1))
            elif day >= 0:
                self._add_ring(n0 + i, tw.vin, ring)
            codes = values[_DTC]
            if codes:
                dtc.append((n0 + i, codes))
        return cached

    def _add_ring(self, row: int, vin: str, ring: list[int]) -> None:
        """Copy the ring of ``row`` (its summary is computed by ``matrix``)."""
        try:
            self._rings.append(_RING.pack(*ring))
        except (struct.error, OverflowError):
            self._odd_rings.append((len(self._rings), ring[:]))
            self._rings.append(_NO_RING)
        self._ring_rows.append(row)
        self._ring_vins.append(vin)

    def _reuse_summaries(self, twins: Sequence[Twin], n0: int, cached: list[int]) -> None:
        """Take the kept summaries of the rows from ``n0`` whose ring fingerprint is unchanged; copy the
        rings of the others."""
        miss = self._reuse_summaries_of(self._unpacked()[-1], np.array(cached, dtype=np.intp), n0)
        for k in miss.tolist():
            tw = twins[k]
            self._add_ring(n0 + k, tw.vin, tw.history.daily.ring)

    def _reuse_summaries_of(self, block: NDArray[np.float64], index: NDArray[np.intp], n0: int = 0
                            ) -> NDArray[np.intp]:
        """Take the kept summaries (rows ``index`` of ``_RING_SUMMARIES``, -1: none) of ``block``'s rows whose
        ring fingerprint is unchanged; returns the other rows with a day (their rings are to be read)."""
        fingerprints = block[:, _FINGERPRINT]
        day = fingerprints[:, 0]
        same = (index >= 0) & (day >= 0)
        same[same] = (_RING_SUMMARIES.fingerprints[index[same]] == fingerprints[same]).all(axis=1)
        self._known_rows.append(n0 + np.flatnonzero(same))
        self._known.append(_RING_SUMMARIES.summaries[index[same]])
        miss = np.flatnonzero(~same & (day >= 0))
        if self._from_records is not None:
            self._record_rings(miss)
        return miss

    def _unpacked(self) -> list[NDArray[np.float64]]:
        """``_blocks``, after unpacking the rows packed since the last call: ``(rows, len(_ROW_FLOATS +
        _ROW_INTS))`` float64, row-major (the ints converted in place)."""
        if self._rows:
            n = len(self._rows)
            block = np.frombuffer(bytearray().join(self._rows), np.float64).reshape(n, -1)
            block[:, _NF:] = block.view(np.int64)[:, _NF:]
            for i, row in self._odd:                      # as np.array reads them (None = NaN)
                block[i - (self._n - n)] = np.array(row, dtype=np.float64)
            self._blocks.append(block)
            self._rows, self._odd = [], []
        return self._blocks

    def matrix(self, dtype: Any = np.float64) -> NDArray[Any]:
        """``(rows, N_FEATURES)`` in ``FEATURE_NAMES`` order (NaN = unknown)."""
        with paused_gc():
            return self._matrix(dtype)

    def _matrix(self, dtype: Any) -> NDArray[Any]:
        n = self._n
        if n == 0:
            return np.empty((0, N_FEATURES), dtype=dtype)
        blocks = self._unpacked()
        rows = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
        lens = rows[:, _ROW_INDEX["stack_len"]].astype(np.int64)
        stack_start = np.zeros(n + 1, np.int64)
        np.cumsum(lens, out=stack_start[1:])
        D = np.frombuffer(b"".join(self._sightings), np.float64).reshape(-1, _N_D)
        sighting = np.full(n, -1, np.int64)
        sighting[self._sighting_rows] = np.arange(len(self._sighting_rows))
        src = self._from_records
        if src is None:
            stack, service, ages, flags, exposure = self._object_inputs(n)
        else:
            stack, service, ages, flags = src["stack"], src["service"], src["ages"], src["flags"]
            exposure = self.weather.sums_coded(src["cells"], src["starts"], src["ends"], src["lens"])
        out = np.empty((n, N_FEATURES))
        fill(rows, _KERNEL_INPUTS, stack, stack_start, self._summaries(rows), D, sighting, exposure,
             np.array(self._now, dtype=np.float64), service, ages, flags,
             _KERNEL_HISTORY, _KERNEL_EXPOSURE, _KERNEL_EXTRA, EDGES_DT, EDGES_MEAN, HOT_BINS, LARGE_BINS, CONSTANTS,
             LAYOUT, out)
        return out if dtype == np.float64 else out.astype(dtype)

    def _object_inputs(self, n: int) -> tuple[NDArray[np.float64], ...]:
        """Stack, in-service times, ages, trouble-code flags and exposures of rows added with ``add``."""
        ages = np.full((n, len(COMPONENTS)), _NAN)
        if self._ages:
            ages[self._age_rows] = np.array(self._ages, dtype=np.float64)
        flags = np.zeros((n, 1 + len(DTC_CODES)))
        for i, codes in self._dtc:
            flags[i, 0] = len(codes)
            for j, (code, _) in enumerate(DTC_CODES):
                if any(c.startswith(code) for c in codes):
                    flags[i, 1 + j] = 1.0
        exposure = self.weather.sums(self._res_cells, self._res_starts, self._res_ends, self._res_lens)
        return doubles(self._stack), np.array(self._service, dtype=np.float64), ages, flags, exposure

    def _summaries(self, rows: NDArray[np.float64]) -> NDArray[np.float64]:
        """``(n, N_SUMMARY)`` ring summaries: the known ones, and the others from their rings (then kept)."""
        summary = np.empty((self._n, N_SUMMARY))
        summary[:] = _NO_SUMMARY                           # rows without a day yet
        if self._known:
            summary[np.concatenate(self._known_rows)] = np.concatenate(self._known)
        if self._ring_rows:
            miss = np.array(self._ring_rows, dtype=np.intp)
            if self._from_records is not None:
                ring = np.concatenate(self._from_records["rings"]).reshape(len(miss), N_DAYS, N_COLS)
            else:
                ring = np.frombuffer(b"".join(self._rings), np.int32).reshape(len(miss), N_DAYS, N_COLS).astype(float)
            for k, odd in self._odd_rings:                # as np.array reads them
                ring[k] = np.array(odd, dtype=np.float64).reshape(N_DAYS, N_COLS)
            fingerprints = rows[miss][:, _FINGERPRINT]
            summary[miss] = fresh = _ring_summary(ring, fingerprints[:, 0], fingerprints[:, 1])
            if self.reuse:
                _RING_SUMMARIES.store(self._ring_vins, fingerprints, fresh)
        return summary


def _record_inputs(records: TwinRecords, rows: NDArray[np.intp]) -> tuple[dict[str, Any], NDArray[np.bool_]]:
    """What ``FeatureRows.add_records`` keeps of these records' rows, and which rows were read in full (their
    lists are lists of the expected items: numbers, cells of 1-8 bytes, trouble-code strings)."""
    n = len(rows)
    f = records.fields if n == len(records) else records.fields[rows]
    f[:, _ROW_INDEX["stack_len"]] = f[:, _AT[_STACK] + 1]
    good = f[:, RECORD_PROGRAM.at[_RING_AT] + 1] == N_DAYS * N_COLS
    stack, _ = records.items(_STACK, rows)
    cells, lens = records.items(_CELLS, rows)
    starts, _ = records.items(_STARTS, rows)
    ends, _ = records.items(_ENDS, rows)
    good &= (f[:, _AT[_STARTS] + 1] == lens) & (f[:, _AT[_ENDS] + 1] == lens)
    flags = np.zeros((n, 1 + len(DTC_CODES)))
    coded = np.flatnonzero(f[:, _AT[_CODES] + 1] > 0)   # rows with an active trouble code (or odd: checked)
    if len(coded):
        flags[coded], ok = records.prefix_flags(_CODES, rows[coded], [code for code, _ in DTC_CODES])
        good[coded] &= ok
    seen = f[:, _REC["history.dtc.last_seen_ms"]:_REC["history.dtc.last_seen_ms"] + _N_DTC]
    inputs = {"block": f[:, :_N_ROW], "stack": stack, "cells": cells, "starts": starts.astype(np.int64),
              "ends": ends.astype(np.int64), "lens": lens, "flags": flags,
              "sighted": (f[:, _REC["history.dtc.active"]] != 0) | (seen != 0).any(axis=1),
              "sightings": f[:, _REC_SIGHTINGS]}
    return inputs, good


def _ring_summary(ring: NDArray[np.float64], day: NDArray[np.float64], first: NDArray[np.float64]
                  ) -> NDArray[np.float64]:
    """The stored-day part of ``twins.history.daily.window`` / ``soh_slope_per_day`` for rows of rings
    ``(rows, N_DAYS, N_COLS)``, as ``(rows, N_SUMMARY)``."""
    out = np.empty((len(ring), N_SUMMARY))
    day, first = day.astype(np.int64)[:, None], first.astype(np.int64)[:, None]
    back = (day - np.arange(N_DAYS)) % N_DAYS                          # slot s holds the day `day - back`
    in30 = (back >= 1) & (day - back >= first)
    in7 = in30 & (back <= 6)
    totals = ring[:, :, :N_TOTALS]
    out[:, S_SUM7:S_SUM7 + N_TOTALS] = (in7[:, None, :] @ totals)[:, 0] / _SCALE6
    out[:, S_SUM30:S_SUM30 + N_TOTALS] = (in30[:, None, :] @ totals)[:, 0] / _SCALE6
    for c_ring, c7, c30 in ((INV_MAX, S_INV7, S_INV30), (PACK_MAX, S_CELL7, S_CELL30)):
        t = np.where(ring[:, :, c_ring] != NO_DATA, ring[:, :, c_ring] / 10.0, -np.inf)
        out[:, c7] = np.where(in7, t, -np.inf).max(axis=1)
        out[:, c30] = np.where(in30, t, -np.inf).max(axis=1)
    soh = ring[:, :, SOH_COL]
    has = in30 & (soh != NO_DATA)
    x = np.where(has, -back, 0.0)
    y = np.where(has, soh / 100.0, 0.0)
    out[:, S_N] = has.sum(axis=1)
    out[:, S_X] = x.sum(axis=1)
    out[:, S_Y] = y.sum(axis=1)
    out[:, S_XX] = (x * x).sum(axis=1)
    out[:, S_XY] = (x * y).sum(axis=1)
    return out


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
    """Rows of :func:`twin_features` for many twins, shape ``(len(twins), N_FEATURES)``, computed in one batch.

    ``now_ms`` is one time for all rows or one per row; the other per-row arguments
    are sequences aligned with ``twins`` (None = unknown for every row). ``hourly_lookup``
    may be an :class:`ExposureCache` to keep the looked-up weather days across calls (give it a
    ``day_version`` if the weather changes meanwhile).
    """
    n = len(twins)
    nows = [now_ms] * n if isinstance(now_ms, (int, np.integer)) else list(now_ms)
    services = list(in_service_ms) if in_service_ms is not None else [None] * n
    ages = list(component_ages_days) if component_ages_days is not None else [None] * n
    if not len(nows) == len(services) == len(ages) == n:
        raise ValueError(f"per-row arguments must have {n} entries, got now_ms={len(nows)}, "
                         f"in_service_ms={len(services)}, component_ages_days={len(ages)}")
    rows = FeatureRows(hourly_lookup)
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
