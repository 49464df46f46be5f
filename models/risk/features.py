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
the 30-day ring apart), then every feature of every row — rainflow residue counts and
CIPS08 damage, the 7/30-day windows, SoH slope, ratios and rates — is computed by one
compiled loop (:func:`models.risk.feature_kernel.fill`, numba). The 30-day ring is
summarised once a day per vehicle with numpy (``models.risk.ring_summary``);
the weather exposure of all residency lists is summed by one compiled pass, each (cell, UTC
day) looked up once (:class:`models.risk.exposure.ExposureCache`). A test checks the
result against the straightforward per-twin computation (``tests/risk/reference_features.py``).

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
import math
import struct
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from operator import attrgetter
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.risk.exposure import EXPOSURE_FEATURE_NAMES, ExposureCache
from models.risk.feature_kernel import (CONSTANTS, EDGES_DT, EDGES_MEAN, EXTRA_OUTPUTS, HISTORY_OUTPUTS, HOT_BINS,
                                        LARGE_BINS, LAYOUT, N_SUMMARY, fill)
from models.risk.feature_kernel import INPUTS as KERNEL_INPUTS
from models.risk.feature_names import COMPONENTS, DTC_CODES, FEATURE_INDEX, N_FEATURES
from models.risk.ring_summary import RingSummaries, ring_summary
from twins.history import FEATURE_NAMES as HISTORY_FEATURE_NAMES
from twins.history.daily import N_COLS, N_DAYS, N_TOTALS
from twins.history.dtc import TRACKED as DTC_TRACKED
from twins.history.inverter import N_BINS
from twins.residency import HourlyLookup
from twins.signals import SLOT
from twins.twin import Twin

DAY_MS = 86_400_000
_ODO = SLOT["Vehicle.TraveledDistance"]
_SOH = SLOT["Vehicle.Powertrain.TractionBattery.StateOfHealth"]
_LV = SLOT["Vehicle.LowVoltageBattery.CurrentVoltage"]
_DTC = SLOT["Vehicle.Diagnostics.DTCList"]
_NAN = math.nan
_N_DTC = len(DTC_TRACKED)
#: The numbers ``FeatureRows.add`` copies out of every twin, by the name the feature pass reads them by
#: (``models.risk.feature_kernel.INPUTS``): where each is in a ``Twin`` (an attribute path) ...
_ROW_NUMBERS: dict[str, str] = {
    "observed_s": "history.observed_s", "n_updates": "history.n_updates", "first_seen": "first_seen",
    "last_seen": "last_seen", "n_applied": "n_applied",
    "inv_peak_c": "history.inverter.peak_c", "inv_above80_s": "history.inverter.above80_s",
    "inv_above100_s": "history.inverter.above100_s", "inv_damage": "history.inverter.damage",
    "rf_cand": "history.inverter.rf.cand", "direction": "history.inverter.rf.direction",
    "day": "history.daily.day", "first_day": "history.daily.first_day", "day_inv_max": "history.daily.inv_max",
    "day_pack_max": "history.daily.pack_max",
    **{name: f"history.battery.{name}" for name in ("ah_as", "soc_swing_pct", "dc_kws", "soc_hi_s", "soc_lo_s",
                                                    "arr_eq_s", "arr_obs_s", "cell_peak_c", "soh", "dc_sessions")},
    "motor_peak_c": "history.motor.peak_c", "above120_s": "history.motor.above120_s",
    "above150_s": "history.motor.above150_s", "load_s": "history.motor.load_s",
    "wake_min_v": "history.lv.wake_min_v", "wake_last_v": "history.lv.wake_last_v", "lv_min_v": "history.lv.min_v",
    "below_s": "history.lv.below_s", "wakes": "history.lv.wakes", "cold_wakes": "history.lv.cold_wakes",
    "lv_events": "history.lv.events",
    **{name: f"history.usage.{name}" for name in ("distance_km", "driving_s", "harsh_accel", "harsh_brake")},
}
#: ... then the last value of three signals (None = NaN), the lists, and the rainflow stack's length.
_ROW_SIGNALS: dict[str, int] = {"odo": _ODO, "soh_now": _SOH, "lv_now": _LV}
_ROW_NAMES: tuple[str, ...] = (*_ROW_NUMBERS, *_ROW_SIGNALS, *(f"base_{k}" for k in range(N_TOTALS)),
                               *(f"bin_{k}" for k in range(N_BINS)), *(f"yesterday_{k}" for k in range(N_COLS)),
                               "stack_len")
_numbers_of = attrgetter(*_ROW_NUMBERS.values())
#: One struct call per twin converts its numbers while they are in the CPU cache: ~15 ns a number, where
#: collecting them first and converting all at the end (``np.array``) took ~45. All float64: the ints
#: (counts, days, epoch ms) are far below 2**53.
_ROW = struct.Struct(f"<{len(_ROW_NAMES)}d")
_NO_ROW = bytes(_ROW.size)
#: The rows (of the unpacked ``_ROW``) that fingerprint a twin's 30-day ring (see ``models.risk.ring_summary.RingSummaries``): day,
#: first day, the totals at the day's first reading, yesterday's ring row and the twin's first reading time.
_ROW_INDEX = {name: i for i, name in enumerate(_ROW_NAMES)}
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
_NO_SUMMARY = np.array((0.0,) * (2 * N_TOTALS) + (-math.inf,) * 4 + (0.0,) * 5)
_UNKNOWN_AGES = (None,) * len(COMPONENTS)
_UNKNOWN_AGES_LIST = [None] * len(COMPONENTS)


#: The ring summaries of the vehicles scored in this process (``FeatureRows(reuse_ring_summaries=True)``).
_RING_SUMMARIES = RingSummaries(len(_FINGERPRINT))
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
        self._blocks: list[NDArray[np.float64]] = []      # unpacked rows: (rows, len(_ROW_NAMES))
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
        nan, numbers_of = _NAN, _numbers_of
        for i, tw in enumerate(twins):
            h = tw.history
            d = h.daily
            values = tw.values
            odo, soh, lvv = values[_ODO], values[_SOH], values[_LV]
            day = d.day
            ring = d.ring
            j = (day - 1) % N_DAYS * N_COLS                   # yesterday's ring row
            st = h.inverter.rf.stack
            ext_stack(st)
            res = tw.residency
            cells = res.cells
            ext_cells(cells)
            ext_starts(res.starts)
            ext_ends(res.ends)
            ap_res_len(len(cells))
            row = (*numbers_of(tw), nan if odo is None else odo, nan if soh is None else soh,
                   nan if lvv is None else lvv, *d.base, *h.inverter.bins_half, *ring[j:j + N_COLS], len(st))
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
        """Take the kept summaries (rows ``cached`` of ``_RING_SUMMARIES``, -1: none) of the rows from ``n0``
        whose ring fingerprint is unchanged; copy the rings of the others with a day."""
        index = np.array(cached, dtype=np.intp)
        fingerprints = self._unpacked()[-1][:, _FINGERPRINT]
        day = fingerprints[:, 0]
        same = (index >= 0) & (day >= 0)
        same[same] = (_RING_SUMMARIES.fingerprints[index[same]] == fingerprints[same]).all(axis=1)
        self._known_rows.append(n0 + np.flatnonzero(same))
        self._known.append(_RING_SUMMARIES.summaries[index[same]])
        for k in np.flatnonzero(~same & (day >= 0)).tolist():
            tw = twins[k]
            self._add_ring(n0 + k, tw.vin, tw.history.daily.ring)

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
        lens = rows[:, _ROW_INDEX["stack_len"]].astype(np.int64)
        stack_start = np.zeros(n + 1, np.int64)
        np.cumsum(lens, out=stack_start[1:])
        D = np.frombuffer(b"".join(self._sightings), np.float64).reshape(-1, _N_D)
        sighting = np.full(n, -1, np.int64)
        sighting[self._sighting_rows] = np.arange(len(self._sighting_rows))
        stack, service, ages, flags, exposure = self._object_inputs(n)
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
        return np.array(self._stack, dtype=np.float64), np.array(self._service, dtype=np.float64), ages, flags, exposure

    def _summaries(self, rows: NDArray[np.float64]) -> NDArray[np.float64]:
        """``(n, N_SUMMARY)`` ring summaries: the known ones, and the others from their rings (then kept)."""
        summary = np.empty((self._n, N_SUMMARY))
        summary[:] = _NO_SUMMARY                           # rows without a day yet
        if self._known:
            summary[np.concatenate(self._known_rows)] = np.concatenate(self._known)
        if self._ring_rows:
            miss = np.array(self._ring_rows, dtype=np.intp)
            ring = np.frombuffer(b"".join(self._rings), np.int32).reshape(len(miss), N_DAYS, N_COLS).astype(float)
            for k, odd in self._odd_rings:                # as np.array reads them
                ring[k] = np.array(odd, dtype=np.float64).reshape(N_DAYS, N_COLS)
            fingerprints = rows[miss][:, _FINGERPRINT]
            summary[miss] = fresh = ring_summary(ring, fingerprints[:, 0], fingerprints[:, 1])
            if self.reuse:
                _RING_SUMMARIES.store(self._ring_vins, fingerprints, fresh)
        return summary


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
