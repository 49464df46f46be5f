"""Typical-year weather from the shipped NREL TMY extracts (pure numpy, no pvlib).

A TMY file holds 8,760 hourly rows in local *standard* time, each the value at
the end of its hour. Any UTC timestamp is mapped onto that typical year by
day-of-year and hour (29 February repeats 28 February) and interpolated
linearly between the hourly rows, wrapping from 31 December to 1 January.

>>> site = load_site("12839")
>>> round(float(site.air_temperature(1_783_533_600_000)), 1)  # 2026-07-08 18:00Z, Miami
31.1
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

from models.simulation.resources import read_text

HOURS_PER_YEAR = 8760
_MS_PER_DAY = 86_400_000
_FEB29_START_S = 59 * 86_400  # seconds from 1 Jan to 29 Feb in a leap year


@dataclass(frozen=True, eq=False)
class SiteWeather:
    """Hourly typical-year series for one TMY station (index 0 = 1 Jan, hour ending 01:00 LST)."""

    site_id: str
    name: str
    lat: float
    lon: float
    elevation_m: float
    tz_offset_h: float
    temp_air_c: NDArray[np.float64]
    rh_pct: NDArray[np.float64]
    wind_mps: NDArray[np.float64]
    ghi_wm2: NDArray[np.float64]
    precip_mm: NDArray[np.float64]

    def hour_position(self, ts_ms: ArrayLike) -> NDArray[np.float64]:
        """Fractional row position in the typical year for UTC epoch-ms timestamps."""
        ms = np.asarray(ts_ms, dtype=np.int64) + np.int64(round(self.tz_offset_h * 3_600_000))
        t = ms.astype("datetime64[ms]")
        year = t.astype("datetime64[Y]")
        sec = (t - year.astype("datetime64[ms]")).astype(np.int64) / 1000.0
        y = year.astype(np.int64) + 1970
        leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
        sec = np.where(leap & (sec >= _FEB29_START_S), sec - 86_400.0, sec)
        return sec / 3600.0 - 1.0  # row i is the value at the end of hour i+1

    def _weights(self, ts_ms: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
        pos = self.hour_position(ts_ms)
        base = np.floor(pos)
        i0 = base.astype(np.int64) % HOURS_PER_YEAR
        return i0, (i0 + 1) % HOURS_PER_YEAR, pos - base

    def _interp(self, series: NDArray[np.float64], ts_ms: ArrayLike) -> NDArray[np.float64]:
        i0, i1, frac = self._weights(ts_ms)
        return series[i0] * (1.0 - frac) + series[i1] * frac

    def sample(self, ts_ms: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Air temperature (°C), relative humidity (%) and GHI (W/m²) in one lookup."""
        i0, i1, frac = self._weights(ts_ms)
        return tuple(x[i0] * (1.0 - frac) + x[i1] * frac  # type: ignore[return-value]
                     for x in (self.temp_air_c, self.rh_pct, self.ghi_wm2))

    def air_temperature(self, ts_ms: ArrayLike) -> NDArray[np.float64]:
        """Dry-bulb air temperature in °C at UTC epoch-ms timestamp(s)."""
        return self._interp(self.temp_air_c, ts_ms)

    def relative_humidity(self, ts_ms: ArrayLike) -> NDArray[np.float64]:
        """Relative humidity in % at UTC epoch-ms timestamp(s)."""
        return self._interp(self.rh_pct, ts_ms)

    def irradiance(self, ts_ms: ArrayLike) -> NDArray[np.float64]:
        """Global horizontal irradiance in W/m² at UTC epoch-ms timestamp(s)."""
        return self._interp(self.ghi_wm2, ts_ms)


def _column(rows: list[dict[str, str]], key: str) -> NDArray[np.float64]:
    return np.array([float(r[key]) if r[key] else np.nan for r in rows], dtype=np.float64)


@lru_cache(maxsize=None)
def load_site(site_id: str) -> SiteWeather:
    """Load one shipped TMY site (``'723170'`` Greensboro, ``'703165'`` Sand Point, ``'12839'`` Miami)."""
    sites = json.loads(read_text("weather", "sites.json"))
    if site_id not in sites:
        raise ValueError(f"unknown weather site_id {site_id!r}; valid: {sorted(sites)}")
    meta = sites[site_id]
    rows = list(csv.DictReader(io.StringIO(read_text("weather", f"{site_id}.csv"))))
    if len(rows) != HOURS_PER_YEAR:
        raise ValueError(f"weather file for {site_id!r} has {len(rows)} rows, expected {HOURS_PER_YEAR}")
    arrays = {k: _column(rows, k) for k in ("temp_air_c", "rh_pct", "wind_mps", "ghi_wm2", "precip_mm")}
    for key in ("temp_air_c", "rh_pct", "wind_mps", "ghi_wm2"):
        if np.isnan(arrays[key]).any():
            raise ValueError(f"weather file for {site_id!r} has missing {key}")
    for arr in arrays.values():
        arr.setflags(write=False)
    return SiteWeather(
        site_id=site_id, name=meta["name"], lat=meta["latitude"], lon=meta["longitude"],
        elevation_m=meta["elevation_m"], tz_offset_h=meta["tz_offset_h"], **arrays,
    )


def air_temperature(site: SiteWeather, ts_ms: ArrayLike) -> NDArray[np.float64]:
    """Air temperature (°C) at ``site`` for UTC epoch-ms timestamp(s)."""
    return site.air_temperature(ts_ms)


def relative_humidity(site: SiteWeather, ts_ms: ArrayLike) -> NDArray[np.float64]:
    """Relative humidity (%) at ``site`` for UTC epoch-ms timestamp(s)."""
    return site.relative_humidity(ts_ms)
