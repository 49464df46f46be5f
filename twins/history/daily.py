"""Rolling per-day aggregates for the last 30 days: a fixed-size ring of quantised integer rows.

Days are UTC calendar days: ``day = ts_ms // 86_400_000`` (days since 1970-01-01 UTC),
so the boundary is midnight UTC whatever the vehicle's time zone. An interval is
booked on the day of the reading that ends it.

The current day is live: its sums are the cumulative totals minus a snapshot taken
at the day's first reading (``base``), and its maxima are tracked per reading. When
a reading opens a later day, the finished day is quantised into ring slot
``day % 30`` and the slots of skipped days are cleared, so the ring always holds
the 29 days before the current one (the day index is implicit in the slot).
Windows end at the day of the last applied reading (twins have no clock): "7-day"
is the current day plus the 6 before it. Means divide by the days covered since the
first reading (at most 7 or 30), days without telemetry counting as zero.

Row columns and their integer units: distance 0.1 km, driving 0.01 h (36 s), Ah
throughput 0.1 Ah, DC sessions, DC energy 0.1 kWh, harsh events (accel + brake),
max inverter temperature 0.1 °C, max cell temperature 0.1 °C, SoH at the end of the
day 0.01 % — ``NO_DATA`` when unknown. Small ints keep the msgpack form compact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np
from numpy.typing import NDArray

DAY_MS = 86_400_000
N_DAYS = 30
NO_DATA = -9999
# column indices
DIST, DRIVE, AH, DCS, DCKWH, HARSH, INV_MAX, PACK_MAX, SOH = range(9)
N_COLS = 9
#: quantisation scale per column (stored int = round(value * scale)); totals are in the units below
SCALE: tuple[float, ...] = (10.0, 1.0 / 36.0, 1.0 / 360.0, 1.0, 1.0 / 360.0, 1.0, 10.0, 10.0, 100.0)
#: cumulative totals handed in by the caller: km, driving s, A·s, sessions, kW·s, harsh events
N_TOTALS = 6
EMPTY_ROW: tuple[int, ...] = (0, 0, 0, 0, 0, 0, NO_DATA, NO_DATA, NO_DATA)


def _empty_ring() -> list[int]:
    return list(EMPTY_ROW) * N_DAYS


class DailyState(msgspec.Struct, array_like=True, gc=False):
    """Current day (live) and the ring of the 29 days before it (row-major, ``N_COLS`` ints per slot)."""

    day: int = -1                    # UTC day index of the current day; -1 = nothing seen yet
    first_day: int = -1
    base: list[float] = msgspec.field(default_factory=lambda: [0.0] * N_TOTALS)
    inv_max: float = -math.inf       # current day's maxima (°C)
    pack_max: float = -math.inf
    ring: list[int] = msgspec.field(default_factory=_empty_ring)


def _q_temp(x: float) -> int:
    return NO_DATA if x == -math.inf else round(x * 10.0)


def roll_day(d: DailyState, day: int, totals: Sequence[float], soh: float) -> None:
    """Start ``day`` (called by the first reading of a later day, before its increments are applied)."""
    cur = d.day
    ring = d.ring
    if cur < 0:
        d.first_day = day
    else:
        base = d.base
        row = [round((totals[k] - base[k]) * SCALE[k]) for k in range(N_TOTALS)]
        row += [_q_temp(d.inv_max), _q_temp(d.pack_max), NO_DATA if soh < 0.0 else round(soh * 100.0)]
        i = (cur % N_DAYS) * N_COLS
        ring[i:i + N_COLS] = row
        for skipped in range(cur + 1, min(day, cur + N_DAYS) + 1):
            i = (skipped % N_DAYS) * N_COLS
            ring[i:i + N_COLS] = EMPTY_ROW
    d.day = day
    d.base = [float(t) for t in totals]
    d.inv_max = -math.inf
    d.pack_max = -math.inf


def window_features(ring: NDArray[Any], day: NDArray[Any], first_day: NDArray[Any], today: NDArray[np.float64],
                    inv_max: NDArray[np.float64], pack_max: NDArray[np.float64], soh: NDArray[np.float64]
                    ) -> dict[str, NDArray[np.float64]]:
    """The 7- and 30-day window features and the SoH trend of many rows at once (``twins.history.FEATURES``):
    each window is the current day (live) and the stored days before it.

    Per row: ``ring`` ``(rows, N_DAYS, N_COLS)`` (``DailyState.ring``; ints, or floats), ``day``,
    ``first_day``, ``inv_max``, ``pack_max`` (``DailyState``), ``today`` ``(rows, N_TOTALS)`` the current
    day's totals so far (``totals - base``) and ``soh`` the last known SoH (< 0: unknown). The stored days
    are summed as their ints (exactly, in any order), then scaled.
    """
    day, first_day = (np.asarray(x, dtype=np.int64) for x in (day, first_day))
    back = (day[:, None] - np.arange(N_DAYS)) % N_DAYS                # slot s holds the day `day - back`
    in30 = (back >= 1) & (day[:, None] - back >= first_day[:, None])   # stored days in the window (none: day < 0)
    stored = np.stack([in30 & (back < 7), in30], axis=1)               # (rows, window, slot): 7, 30 days
    sums = stored.astype(np.int64 if ring.dtype.kind in "iu" else ring.dtype) @ ring[:, :, :N_TOTALS]  # (row, window, total)
    seen = (day >= 0)[:, None]
    n_days = np.array([7, 30])
    days = np.where(seen, np.minimum(n_days, (day - first_day + 1)[:, None]), 0).astype(np.float64)
    out: dict[str, NDArray[np.float64]] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        km, drive_s, a_s, dc_sessions, dc_kws, harsh = (np.where(seen, today[:, None, k] + sums[:, :, k] / SCALE[k], 0.0)
                                                         for k in range(N_TOTALS))
        hottest = {name: _hottest(ring[:, :, col], stored, live) for name, col, live in
                   (("inv", INV_MAX, inv_max), ("cell", PACK_MAX, pack_max))}
        for w, n in enumerate(n_days):
            covered = days[:, w] != 0
            out[f"daily_days_{n}d"] = days[:, w]
            out[f"daily_km_{n}d"] = km[:, w]
            out[f"daily_km_per_day_{n}d"] = np.where(covered, km[:, w] / days[:, w], math.nan)
            out[f"daily_driving_h_per_day_{n}d"] = np.where(covered, drive_s[:, w] / 3600.0 / days[:, w], math.nan)
            out[f"daily_ah_per_day_{n}d"] = np.where(covered, a_s[:, w] / 3600.0 / days[:, w], math.nan)
            out[f"daily_dcfc_sessions_{n}d"] = dc_sessions[:, w]
            for name, hot in hottest.items():
                out[f"daily_{name}_temp_max_{n}d"] = np.where(seen[:, 0], hot[:, w], math.nan)
        out["daily_dcfc_kwh_30d"] = dc_kws[:, 1] / 3600.0
        out["daily_harsh_30d"] = harsh[:, 1]
        out["batt_soh_slope_pct_per_day"] = _soh_slope(ring[:, :, SOH], in30, back, seen[:, 0] & (soh >= 0.0), soh)
    return out


def _hottest(stored_max: NDArray[Any], stored: NDArray[np.bool_], live: NDArray[np.float64]) -> NDArray[np.float64]:
    """The highest temperature (°C) per window ``(rows, window)`` of the stored daily maxima (0.1 °C) and the
    current day's ``live`` one; NaN if none (or if ``live`` is NaN)."""
    known = stored & (stored_max != NO_DATA)[:, None, :]
    hottest = np.where(known, stored_max[:, None, :], NO_DATA).max(axis=2)
    hottest = np.maximum(np.where(hottest != NO_DATA, hottest / 10.0, -math.inf), live[:, None])
    return np.where(hottest > -math.inf, hottest, math.nan)


def _soh_slope(stored_soh: NDArray[Any], in30: NDArray[np.bool_], back: NDArray[np.int64],
               today: NDArray[np.bool_], soh: NDArray[np.float64]) -> NDArray[np.float64]:
    """Least-squares slope of daily SoH (%/day) over the last 30 days: the stored end-of-day values
    (``stored_soh``, 0.01 %) and the current one where ``today``; NaN with fewer than two days of SoH.
    x is the day relative to the current one (today: 0); sums of ints are exact."""
    has = in30 & (stored_soh != NO_DATA)
    x = np.where(has, -back, 0)
    y = np.where(has, stored_soh, 0)
    count = has.sum(axis=1) + today
    safe = np.maximum(count, 1)
    sx = x.sum(axis=1, dtype=np.float64)
    sy = y.sum(axis=1, dtype=np.float64) / 100.0 + np.where(today, soh, 0.0)
    sxx = (x * x).sum(axis=1, dtype=np.float64) - sx * sx / safe
    sxy = (x * y).sum(axis=1, dtype=np.float64) / 100.0 - sx * sy / safe
    return np.where(count >= 2, sxy / np.where(sxx != 0, sxx, 1.0), math.nan)
