"""Daily duty schedules in each region's local (DST-aware) time.

Every vehicle has a standing profile (usual departure time, usual shift
length, whether it works Sundays, charging habits) and each day draws a small
jitter around it, so the fleet is staggered rather than in lockstep.
Departures are planned in local wall-clock time via ``zoneinfo`` and stored
as UTC epoch milliseconds. If the IANA database is missing (slim containers
without the ``tzdata`` package) the regions' zones fall back to their standard
offset plus the US daylight-saving rule, which is what both zones follow.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from numpy.typing import NDArray

MS_PER_DAY = 86_400_000
MS_PER_MIN = 60_000
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
DAY_OFF_PROB = 0.06
MIN_TURNAROUND_MS = 30 * MS_PER_MIN


@dataclass(frozen=True)
class DutyProfile:
    """Per-vehicle standing habits (arrays of length n)."""

    depart_min: NDArray[np.float64]       # usual departure, minutes after local midnight
    shift_s: NDArray[np.float64]          # usual driving-route time per shift
    works_sunday: NDArray[np.bool_]
    dc_threshold: NDArray[np.float64]     # SoC fraction that triggers mid-shift DC fast charging
    dc_charger_kw: NDArray[np.float64]    # rating of the fast chargers this vehicle uses
    ac_target: NDArray[np.float64]        # depot AC charging target SoC fraction
    plug_threshold: NDArray[np.float64]   # plugs in at the depot only below this SoC
    evse_kw: NDArray[np.float64]          # depot AC charger rating


def draw_profiles(rng: np.random.Generator, n: int) -> DutyProfile:
    """Draw standing habits for ``n`` vehicles."""
    return DutyProfile(
        depart_min=rng.uniform(5.5 * 60, 9.5 * 60, n),
        shift_s=rng.uniform(2.5, 6.0, n) * 3600.0,
        works_sunday=rng.random(n) < 0.25,
        dc_threshold=rng.uniform(0.15, 0.25, n),
        dc_charger_kw=rng.choice(np.array([50.0, 100.0, 150.0]), n),
        ac_target=rng.uniform(0.80, 0.95, n),
        plug_threshold=rng.uniform(0.65, 0.98, n),
        evse_kw=rng.choice(np.array([7.2, 9.6, 11.0]), n),
    )


#: Standard UTC offsets (hours) of the regions' zones, for the no-tzdata fallback.
FALLBACK_STD_OFFSET_H = {"America/New_York": -5, "America/Chicago": -6, "America/Denver": -7,
                         "America/Los_Angeles": -8, "America/Anchorage": -9}


def _us_dst_bounds_utc_ms(year: int, std_offset_h: int) -> tuple[int, int]:
    """US DST: from 02:00 local on the second Sunday of March to 02:00 on the first Sunday of November."""
    march = dt.date(year, 3, 8 + (6 - dt.date(year, 3, 8).weekday()) % 7)
    november = dt.date(year, 11, 1 + (6 - dt.date(year, 11, 1).weekday()) % 7)
    start = dt.datetime(march.year, 3, march.day, 2, tzinfo=dt.timezone(dt.timedelta(hours=std_offset_h)))
    end = dt.datetime(november.year, 11, november.day, 2,
                      tzinfo=dt.timezone(dt.timedelta(hours=std_offset_h + 1)))
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def _fallback_offset_ms(tz: str, utc_ms: int) -> int:
    if tz not in FALLBACK_STD_OFFSET_H:
        raise ValueError(f"time zone {tz!r} is unavailable (install the 'tzdata' package)")
    std = FALLBACK_STD_OFFSET_H[tz]
    year = dt.datetime.fromtimestamp(utc_ms / 1000.0, tz=dt.timezone.utc).year
    start, end = _us_dst_bounds_utc_ms(year, std)
    return (std + (1 if start <= utc_ms < end else 0)) * 3_600_000


@lru_cache(maxsize=None)
def _zone(tz: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(tz)
    except ZoneInfoNotFoundError:
        return None


def utc_offset_ms(tz: str, utc_ms: int) -> int:
    """UTC offset (ms) in ``tz`` at the instant ``utc_ms``."""
    zone = _zone(tz)
    if zone is None:
        return _fallback_offset_ms(tz, utc_ms)
    off = dt.datetime.fromtimestamp(utc_ms / 1000.0, tz=zone).utcoffset()
    assert off is not None
    return int(off.total_seconds() * 1000)


@lru_cache(maxsize=8192)
def _noon_offset_ms(tz: str, day: int) -> int:
    """UTC offset (ms) in ``tz`` at local noon on epoch day ``day``."""
    # Noon is hours away from any 02:00 transition, so the offset 12 h after
    # midnight UTC of that date (±12 h of zone offset) is the one in force.
    return utc_offset_ms(tz, day * MS_PER_DAY + 12 * 3_600_000 - utc_offset_ms(tz, day * MS_PER_DAY))


def _offsets_for_days(timezones: list[str], tz_idx: NDArray[np.int64], day: NDArray[np.int64]
                      ) -> NDArray[np.int64]:
    out = np.empty(len(day), dtype=np.int64)
    for i, (t, d) in enumerate(zip(tz_idx.tolist(), day.tolist())):
        out[i] = _noon_offset_ms(timezones[t], d)
    return out


def local_day_and_ms(timezones: list[str], tz_idx: NDArray[np.int64], utc_ms: int
                     ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Local epoch-day number and milliseconds since local midnight at ``utc_ms`` per vehicle."""
    offs = np.array([utc_offset_ms(tz, utc_ms) for tz in timezones], dtype=np.int64)
    local = utc_ms + offs[tz_idx]
    return local // MS_PER_DAY, local % MS_PER_DAY


def plan_departures(rng: np.random.Generator, profile: DutyProfile, timezones: list[str],
                    tz_idx: NDArray[np.int64], idx: NDArray[np.int64], after_ms: int) -> NDArray[np.int64]:
    """Next departure (UTC ms) strictly after ``after_ms`` + turnaround for vehicles ``idx``.

    Departure = usual local time ± ~12 min jitter, on the next working day
    (Sundays off unless ``works_sunday``; about 6 % random days off).
    """
    tz_v = tz_idx[idx]
    day, now_local = local_day_and_ms(timezones, tz_v, after_ms)
    jitter = np.clip(rng.normal(0.0, 12.0, len(idx)), -40.0, 40.0)
    in_day = np.round((profile.depart_min[idx] + jitter) * MS_PER_MIN).astype(np.int64)
    day = np.where(in_day <= now_local + MIN_TURNAROUND_MS, day + 1, day)
    open_ = np.ones(len(idx), bool)             # still looking for a working day
    for _ in range(14):
        sunday = (day + 3) % 7 == 6             # epoch day 0 was a Thursday
        # One day-off draw per vehicle and candidate day: vehicles already settled keep their day
        # (re-drawing for the whole batch made large batches skip extra days).
        off = open_ & ((sunday & ~profile.works_sunday[idx]) | (rng.random(len(idx)) < DAY_OFF_PROB))
        if not off.any():
            break
        open_ = off
        day = np.where(off, day + 1, day)
    return day * MS_PER_DAY + in_day - _offsets_for_days(timezones, tz_v, day)
