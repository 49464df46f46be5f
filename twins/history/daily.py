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

import msgspec

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


def row(d: DailyState, day: int) -> list[int] | None:
    """The stored row of an earlier ``day`` within the window, or ``None`` if outside / before the first day."""
    if not (d.day - N_DAYS < day < d.day) or day < d.first_day:
        return None
    i = (day % N_DAYS) * N_COLS
    return d.ring[i:i + N_COLS]


class Window(msgspec.Struct, gc=False):
    """Summary of the last ``n`` days: sums in natural units, maxima (NaN if unknown), days covered."""

    days: int
    distance_km: float
    driving_h: float
    ah: float
    dc_sessions: float
    dc_kwh: float
    harsh: float
    inv_max_c: float
    pack_max_c: float


def window(d: DailyState, totals: Sequence[float], n: int) -> Window:
    """Sums over the current day (live) and the ``n - 1`` stored days before it."""
    if d.day < 0:
        nan = math.nan
        return Window(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, nan, nan)
    sums = [totals[k] - d.base[k] for k in range(N_TOTALS)]
    inv_max, pack_max = d.inv_max, d.pack_max
    for day in range(d.day - n + 1, d.day):
        r = row(d, day)
        if r is None:
            continue
        for k in range(N_TOTALS):
            sums[k] += r[k] / SCALE[k]
        if r[INV_MAX] != NO_DATA:
            inv_max = max(inv_max, r[INV_MAX] / 10.0)
        if r[PACK_MAX] != NO_DATA:
            pack_max = max(pack_max, r[PACK_MAX] / 10.0)
    days = min(n, d.day - d.first_day + 1)
    return Window(days, sums[DIST], sums[DRIVE] / 3600.0, sums[AH] / 3600.0, sums[DCS], sums[DCKWH] / 3600.0,
                  sums[HARSH], inv_max if inv_max > -math.inf else math.nan,
                  pack_max if pack_max > -math.inf else math.nan)


def soh_slope_per_day(d: DailyState, soh_now: float) -> float:
    """Least-squares slope of daily SoH (%/day) over the last 30 days (end-of-day values + today's
    latest); NaN with fewer than two days of SoH."""
    xs: list[float] = []
    ys: list[float] = []
    for day in range(d.day - N_DAYS + 1, d.day):
        r = row(d, day)
        if r is not None and r[SOH] != NO_DATA:
            xs.append(float(day))
            ys.append(r[SOH] / 100.0)
    if d.day >= 0 and soh_now >= 0.0:
        xs.append(float(d.day))
        ys.append(soh_now)
    if len(xs) < 2:
        return math.nan
    mx = sum(xs) / len(xs)
    my = sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    return sxy / sxx
