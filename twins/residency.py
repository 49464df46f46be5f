"""Where a vehicle has been (by weather cell and hour), and the weather exposure that follows.

The twin keeps a short list of residency intervals ``(cell, first hour, last hour)``
built from its located readings (or its home cell while it has no fix). Exposure
integrals are computed by joining those intervals with each cell's hourly
observations, so weather that arrives after the telemetry counts exactly as
weather that arrived before it.

Exposure covers the 30 days up to the vehicle's newest reading:

* ``weather_degree_hours_above_35c``: Σ max(0, T − 35 °C) · 1 h
* ``weather_degree_hours_below_minus10c``: Σ max(0, −10 °C − T) · 1 h
* ``weather_hours_rh_80``: hours with relative humidity ≥ 80 %
* ``weather_hours_observed``: hours for which the cell had an observation
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from twins.weather import HOUR_MS, MISSING

MAX_INTERVALS = 16
HISTORY_HOURS = 30 * 24
#: (cell, hour since epoch) -> (air °C, RH %) observed then, or None.
HourlyLookup = Callable[[str, int], "tuple[float, float] | None"]
#: A vehicle silent for up to this many hours in the same cell is assumed to have stayed there.
GAP_FILL_HOURS = 24


class Residency(msgspec.Struct, array_like=True, gc=False):
    """Residency intervals, oldest first, plus the cell of the newest location."""

    cells: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    current: str = ""
    current_ts: int = 0


def note_location(res: Residency, ts_ms: int, cell: str) -> None:
    """Record that the vehicle was in ``cell`` at ``ts_ms`` (in place, any arrival order)."""
    hour = ts_ms // HOUR_MS
    if ts_ms >= res.current_ts:
        res.current, res.current_ts = cell, ts_ms
    cells, starts, ends = res.cells, res.starts, res.ends
    n = len(cells)
    if n and cells[-1] == cell and starts[-1] <= hour <= ends[-1]:
        return  # the common case: still in the newest interval
    i = n
    while i > 0 and starts[i - 1] > hour:
        i -= 1
    cells.insert(i, cell)
    starts.insert(i, hour)
    ends.insert(i, hour)
    _merge_neighbours(res)
    newest = max(ends)
    while len(cells) > MAX_INTERVALS or (cells and ends[0] < newest - HISTORY_HOURS):
        del cells[0], starts[0], ends[0]


def _merge_neighbours(res: Residency) -> None:
    """Merge adjacent same-cell intervals closer than the gap fill, so arrival order does not matter."""
    cells, starts, ends = res.cells, res.starts, res.ends
    i = 0
    while i < len(cells) - 1:
        if cells[i] == cells[i + 1] and starts[i + 1] <= ends[i] + GAP_FILL_HOURS:
            ends[i] = max(ends[i], ends[i + 1])
            del cells[i + 1], starts[i + 1], ends[i + 1]
        elif starts[i + 1] <= ends[i] and cells[i] != cells[i + 1]:
            i += 1  # overlapping stays in different cells: keep both (exposure counts each hour once)
        else:
            i += 1


def exposure(res: Residency, hourly: HourlyLookup) -> dict[str, float]:
    """Weather exposure over the 30 days up to the newest residency hour."""
    out = {"weather_degree_hours_above_35c": 0.0, "weather_degree_hours_below_minus10c": 0.0,
           "weather_hours_rh_80": 0.0, "weather_hours_observed": 0.0}
    if not res.cells:
        return out
    newest = max(res.ends)
    first = newest - HISTORY_HOURS + 1
    counted: set[int] = set()
    for cell, start, end in zip(res.cells, res.starts, res.ends):
        for hour in range(max(start, first), end + 1):
            if hour in counted:
                continue
            obs = hourly(cell, hour)
            if obs is None:
                continue
            counted.add(hour)
            temp, rh = obs
            out["weather_degree_hours_above_35c"] += max(0.0, temp - 35.0)
            out["weather_degree_hours_below_minus10c"] += max(0.0, -10.0 - temp)
            if rh != MISSING and rh >= 80.0:
                out["weather_hours_rh_80"] += 1.0
    out["weather_hours_observed"] = float(len(counted))
    return out
