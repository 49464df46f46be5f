"""The risk-model feature vector of one twin: the (batched) builders.

The vector (names, units, meanings: ``models.risk.feature_names``) is the twin's 75
operating-history features (``twins.history``), its 4 weather-exposure integrals
(``twins.residency.exposure``), and the columns of ``EXTRA_FEATURES`` (odometer, ages, current state, active trouble codes and
rates normalised by observed time). ``NaN`` means unknown; HistGradientBoosting
routes missing values natively, so nothing is imputed.

The same builder (:class:`FeatureRows`) makes training rows (``models.risk.replay`` adds
one at the end of every UTC day) and scoring rows in the stream (:func:`feature_matrix`),
so the two cannot drift apart. It is batched: one pass over the twins packs the raw
numbers of each twin into bytes (one ``struct`` call per twin, the rainflow stack and
the 30-day ring apart), then the history features of all rows are computed by the one
definition of their math, over columns (:func:`twins.history.features.batch_features`,
numpy: rainflow residue counts and CIPS08 damage, the 7/30-day windows, SoH slope,
trouble-code recency), and the ``EXTRA_FEATURES`` (ages, current state, rates) here with
numpy; the weather exposure of all residency lists is summed by one compiled pass, each
(cell, UTC day) looked up once (:class:`models.risk.exposure.ExposureCache`). A test checks
the result against the straightforward per-twin computation (``tests/risk/reference_features.py``).

>>> from models.risk.feature_names import FEATURE_INDEX, FEATURE_NAMES
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
from operator import attrgetter
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.risk.exposure import EXPOSURE_FEATURE_NAMES, ExposureCache
from models.risk.feature_names import COMPONENTS, DTC_CODES, EXTRA_FEATURE_NAMES, FEATURE_INDEX, N_FEATURES
from twins.history import FEATURE_NAMES as HISTORY_FEATURE_NAMES
from twins.history.daily import N_COLS, N_DAYS
from twins.history.features import INPUTS as HISTORY_INPUTS
from twins.history.features import NUMBER_INPUTS as HISTORY_NUMBERS
from twins.history.features import batch_features
from twins.history.inverter import DT_LABELS
from twins.residency import HourlyLookup
from twins.signals import SLOT
from twins.twin import Twin

DAY_MS = 86_400_000
_ODO = SLOT["Vehicle.TraveledDistance"]
_SOH = SLOT["Vehicle.Powertrain.TractionBattery.StateOfHealth"]
_LV = SLOT["Vehicle.LowVoltageBattery.CurrentVoltage"]
_DTC = SLOT["Vehicle.Diagnostics.DTCList"]
_NAN = math.nan
#: The numbers ``FeatureRows.add`` copies out of every twin, by the name ``matrix`` reads them by (the history
#: inputs by their ``twins.history.features.INPUTS`` name): where each is in a ``Twin`` (an attribute path) ...
_ROW_NUMBERS: dict[str, str] = {"first_seen": "first_seen", "last_seen": "last_seen", "n_applied": "n_applied",
                                **{name: f"history.{name}" for name in HISTORY_NUMBERS}}
#: ... then the last value of three signals (None = NaN), the history's short lists, and the rainflow stack's length.
_ROW_SIGNALS: dict[str, int] = {"odo": _ODO, "soh_now": _SOH, "lv_now": _LV}
_ROW_LISTS: tuple[str, ...] = ("daily.base", "inverter.bins_half", "dtc.last_seen_ms", "dtc.onsets", "dtc.onset_ms")
_ROW_NAMES: tuple[str, ...] = (*_ROW_NUMBERS, *_ROW_SIGNALS,
                               *(f"{name}[{k}]" for name in _ROW_LISTS for k in range(HISTORY_INPUTS[name][0])),
                               "inverter.rf.stack_len")
_ROW_INDEX = {name: i for i, name in enumerate(_ROW_NAMES)}
#: Where each row input is in the unpacked ``_ROW``: a column, or the columns of a list.
_ROW_COLUMNS: dict[str, int | slice] = {
    **{name: _ROW_INDEX[name] for name in (*_ROW_NUMBERS, *_ROW_SIGNALS, "inverter.rf.stack_len")},
    **{name: slice(_ROW_INDEX[f"{name}[0]"], _ROW_INDEX[f"{name}[0]"] + HISTORY_INPUTS[name][0]) for name in _ROW_LISTS}}
_numbers_of = attrgetter(*_ROW_NUMBERS.values())
_lists_of = attrgetter(*(f"history.{name}" for name in _ROW_LISTS))
#: One struct call per twin converts its numbers while they are in the CPU cache: ~15 ns a number, where
#: collecting them first and converting all at the end (``np.array``) took ~45. All float64: the ints
#: (counts, days, epoch ms) are far below 2**53.
_ROW = struct.Struct(f"<{len(_ROW_NAMES)}d")
_NO_ROW = bytes(_ROW.size)
_RING = struct.Struct(f"<{N_DAYS * N_COLS}i")        # int32: the ring holds small quantised ints
_NO_RING = bytes(_RING.size)
if set(HISTORY_INPUTS) != {*HISTORY_NUMBERS, *_ROW_LISTS, "inverter.rf.stack_len", "inverter.rf.stack", "daily.ring"}:
    raise AssertionError("FeatureRows must copy every input of twins.history.features.batch_features")
#: Inverter cycle bins with a mean temperature of 70 °C and more, and with a swing of 20 K and more.
_HOT_BINS = [n for n in HISTORY_FEATURE_NAMES if n.startswith("inv_cycles_dt_") and n.endswith("_tm_70up")]
_LARGE_BINS = [n for n in HISTORY_FEATURE_NAMES if n.startswith(tuple(f"inv_cycles_dt_{d}_" for d in DT_LABELS[2:]))]
_EXPOSURE_COLUMNS = [FEATURE_INDEX[n] for n in EXPOSURE_FEATURE_NAMES]
_EXTRA_COLUMNS = [FEATURE_INDEX[n] for n in EXTRA_FEATURE_NAMES]
if FEATURE_INDEX[HISTORY_FEATURE_NAMES[-1]] != len(HISTORY_FEATURE_NAMES) - 1:
    raise AssertionError("the history features must be the first columns, in their order")
_UNKNOWN_AGES = (None,) * len(COMPONENTS)
_UNKNOWN_AGES_LIST = [None] * len(COMPONENTS)


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
    pass of attribute reads, packed at once into float64 bytes per twin (``_ROW``), the 30-day ring
    into int32 bytes; ``matrix`` computes all features of all rows from those with numpy. Training
    (``models.risk.replay``) and the stream (``feature_matrix``) both go through this class.
    """

    def __init__(self, weather: "ExposureCache | HourlyLookup") -> None:
        self.weather = weather if isinstance(weather, ExposureCache) else ExposureCache(weather)
        self._n = 0
        self._rows: list[bytes] = []                      # _ROW per row, not yet unpacked into _blocks
        self._blocks: list[NDArray[np.float64]] = []      # unpacked rows: (rows, len(_ROW_NAMES))
        self._odd: list[tuple[int, tuple[Any, ...]]] = []  # rows _ROW could not pack (None, a float for an int)
        self._stack: list[float] = []                     # the rainflow stacks, one after the other
        self._res_cells: list[str] = []                   # the rows' residency lists, one after the other ...
        self._res_starts: list[int] = []
        self._res_ends: list[int] = []
        self._res_lens: list[int] = []                    # ... and the length of each
        self._rings: list[bytes] = []                     # _RING per row
        self._odd_rings: list[tuple[int, list[Any]]] = []  # (row, ring) of rings _RING could not pack
        self._dtc: list[tuple[int, Sequence[str]]] = []   # rows with active trouble codes
        self._now: list[int] = []
        self._service: list[int | None] = []
        self._age_rows: list[int] = []                    # rows with a known component age
        self._ages: list[tuple[Any, ...]] = []

    def __len__(self) -> int:
        return self._n

    def add(self, twins: Sequence[Twin], now_ms: Sequence[int], in_service_ms: Sequence[int | None],
            component_ages_days: Sequence[Mapping[str, float | None] | None]) -> None:
        """Collect one row per twin (the per-row arguments aligned with ``twins``)."""
        with paused_gc():
            n0 = self._n
            self._add(twins)
            self._n += len(twins)
            self._now.extend(now_ms)
            self._service.extend(in_service_ms)
            for i, a in enumerate(component_ages_days):
                if a and [*a.values()] != _UNKNOWN_AGES_LIST:    # the common case: no repair or replacement known
                    known = tuple(map(a.get, COMPONENTS))
                    if known != _UNKNOWN_AGES:
                        self._age_rows.append(n0 + i)
                        self._ages.append(known)

    def _add(self, twins: Sequence[Twin]) -> None:
        """The pass over the twins."""
        ap_row, pack, ext_stack = self._rows.append, _ROW.pack, self._stack.extend
        ap_ring, pack_ring = self._rings.append, _RING.pack
        ext_cells, ext_starts, ext_ends = self._res_cells.extend, self._res_starts.extend, self._res_ends.extend
        ap_res_len = self._res_lens.append
        dtc = self._dtc
        n0 = self._n
        nan, numbers_of, lists_of, chain = _NAN, _numbers_of, _lists_of, itertools.chain
        for i, tw in enumerate(twins):
            h = tw.history
            values = tw.values
            odo, soh, lvv = values[_ODO], values[_SOH], values[_LV]
            st = h.inverter.rf.stack
            ext_stack(st)
            res = tw.residency
            cells = res.cells
            ext_cells(cells)
            ext_starts(res.starts)
            ext_ends(res.ends)
            ap_res_len(len(cells))
            row = (*numbers_of(tw), nan if odo is None else odo, nan if soh is None else soh,
                   nan if lvv is None else lvv, *chain(*lists_of(tw)), len(st))
            try:
                ap_row(pack(*row))
            except (struct.error, OverflowError):
                ap_row(_NO_ROW)
                self._odd.append((n0 + i, row))
            ring = h.daily.ring
            try:
                ap_ring(pack_ring(*ring))
            except (struct.error, OverflowError):
                ap_ring(_NO_RING)
                self._odd_rings.append((n0 + i, ring[:]))
            codes = values[_DTC]
            if codes:
                dtc.append((n0 + i, codes))

    def _unpacked(self) -> list[NDArray[np.float64]]:
        """``_blocks``, after unpacking the rows packed since the last call: ``(rows, len(_ROW_NAMES))``
        float64, row-major."""
        if self._rows:
            n = len(self._rows)
            block = np.frombuffer(bytearray().join(self._rows), np.float64).reshape(n, -1)
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
        inputs: dict[str, NDArray[Any]] = {name: rows[:, _ROW_COLUMNS[name]] for name in HISTORY_INPUTS
                                           if name not in ("inverter.rf.stack", "daily.ring")}
        inputs["inverter.rf.stack"] = self._stacks(inputs["inverter.rf.stack_len"])
        inputs["daily.ring"] = self._ring_array()
        out = np.empty((n, N_FEATURES))
        out[:, :len(HISTORY_FEATURE_NAMES)] = history = batch_features(inputs)
        service, ages, flags, out[:, _EXPOSURE_COLUMNS] = self._object_inputs(n)
        extra = _extra_features(history, {name: rows[:, _ROW_INDEX[name]] for name in (*_ROW_SIGNALS, "n_applied",
                                                                                      "first_seen", "last_seen")},
                                np.array(self._now, dtype=np.float64), service, ages, flags)
        out[:, _EXTRA_COLUMNS] = np.stack([extra[name] for name in EXTRA_FEATURE_NAMES], axis=1)
        return out if dtype == np.float64 else out.astype(dtype)

    def _stacks(self, lens: NDArray[np.float64]) -> NDArray[np.float64]:
        """The rainflow stacks, padded with zeros to the longest: ``(rows, max(1, longest))``."""
        lens = lens.astype(np.intp)
        padded = np.zeros((len(lens), max(1, int(lens.max()))))
        padded[np.arange(padded.shape[1]) < lens[:, None]] = self._stack   # row-major: in the order added
        return padded

    def _ring_array(self) -> NDArray[Any]:
        """The 30-day rings ``(rows, N_DAYS, N_COLS)``: int32, or float64 if a ring holds another number type."""
        ring: NDArray[Any] = np.frombuffer(b"".join(self._rings), np.int32).reshape(self._n, N_DAYS, N_COLS)
        if self._odd_rings:
            ring = ring.astype(np.float64)
            for i, odd in self._odd_rings:                # as np.array reads them
                ring[i] = np.array(odd, dtype=np.float64).reshape(N_DAYS, N_COLS)
        return ring

    def _object_inputs(self, n: int) -> tuple[NDArray[np.float64], ...]:
        """In-service times, ages, trouble-code flags and exposures of rows added with ``add``."""
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
        return np.array(self._service, dtype=np.float64), ages, flags, exposure


def _ratio(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """``a / b`` where ``b >= 1`` and ``a`` is known, else NaN."""
    return np.where((b >= 1.0) & ~np.isnan(a), a / b, _NAN)


def _extra_features(history: NDArray[np.float64], row: Mapping[str, NDArray[np.float64]], now: NDArray[np.float64],
                    service: NDArray[np.float64], ages: NDArray[np.float64], flags: NDArray[np.float64]
                    ) -> dict[str, NDArray[np.float64]]:
    """The ``EXTRA_FEATURES`` columns of rows with these ``history`` features (``twins.history.FEATURES`` order),
    ``row`` numbers (signals, ``n_applied``, ``first_seen``, ``last_seen``), ``now``/``service`` times (ms;
    NaN = unknown), component ``ages`` (days; NaN = unknown) and trouble-code ``flags`` (active count, then
    ``DTC_CODES`` one-hot)."""
    h = {name: history[:, k] for k, name in enumerate(HISTORY_FEATURE_NAMES)}
    with np.errstate(divide="ignore", invalid="ignore"):
        age = (now - service) / DAY_MS
        span = np.where(row["n_applied"] != 0, (row["last_seen"] - row["first_seen"]) / DAY_MS, _NAN)
        observed = h["history_observed_h"]
        hot, large = (sum(h[name] for name in bins) for bins in (_HOT_BINS, _LARGE_BINS))

        def per_day(name: str) -> NDArray[np.float64]:
            return _ratio(h[name], span)

        def share(name: str) -> NDArray[np.float64]:
            return _ratio(h[name], observed)

        return {
            "odometer_km": row["odo"],
            "vehicle_age_days": age,
            **{f"age_days_{c}": np.where(np.isnan(ages[:, k]), age, ages[:, k]) for k, c in enumerate(COMPONENTS)},
            "soh_pct": row["soh_now"],
            "lv_voltage_v": row["lv_now"],
            "dtc_active_count": flags[:, 0],
            **{f"dtc_{code}": flags[:, 1 + j] for j, (code, _) in enumerate(DTC_CODES)},
            "observed_span_days": span,
            "inv_frac_above_80c": share("inv_hours_above_80c"),
            "inv_damage_per_day": per_day("inv_damage_cips08"),
            "motor_frac_above_120c": share("motor_hours_above_120c"),
            "batt_efc_per_day": per_day("batt_efc"),
            "batt_dcfc_per_day": per_day("batt_dcfc_sessions"),
            "batt_frac_soc_above_90": share("batt_hours_soc_above_90"),
            "lv_low_events_per_day": per_day("lv_low_events"),
            "lifetime_km_per_day": _ratio(row["odo"], age),
            "inv_temp_trend_7d_30d": h["daily_inv_temp_max_7d"] - h["daily_inv_temp_max_30d"],
            "cell_temp_trend_7d_30d": h["daily_cell_temp_max_7d"] - h["daily_cell_temp_max_30d"],
            "inv_frac_above_100c": share("inv_hours_above_100c"),
            "inv_cycles_per_day": per_day("inv_cycles_total"),
            "inv_hot_cycles_per_day": _ratio(hot, span),
            "inv_large_cycles_per_day": _ratio(large, span),
            "motor_frac_above_150c": share("motor_hours_above_150c"),
            "motor_load_frac": share("motor_load_hours"),
            "driving_frac": share("usage_driving_hours"),
            "batt_ah_per_day": per_day("batt_ah_throughput"),
            "batt_dcfc_kwh_per_day": per_day("batt_dcfc_kwh"),
            "batt_frac_soc_below_10": share("batt_hours_soc_below_10"),
            "lv_wakes_per_day": per_day("lv_wakes"),
            "lv_cold_wake_frac": _ratio(h["lv_cold_wakes"], h["lv_wakes"]),
            "lv_frac_below_12v": share("lv_hours_below_12v"),
        }


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
