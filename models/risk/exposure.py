"""Weather exposure of many residency lists at once: the ``weather_*`` risk features of a batch.

``twins.residency.exposure`` defines the numbers for one list: over the 30 days up to
the list's newest hour, each hour the vehicle was in a cell with an observation counts
once (``max(0, T - 35)``, ``max(0, -10 - T)``, RH ≥ 80 %, observed). :class:`ExposureCache`
computes them for whole batches of lists with one compiled pass (numba):

* every (cell, UTC day) the lists touch is looked up once (24 hours) and kept, with its
  hourly prefix sums, across batches; a ``day_version(cell, day)`` token (the stream
  passes the stored day record) makes a day whose observations changed be looked up
  again, so weather that arrives after the telemetry is counted;
* a list whose intervals do not overlap sums one difference of prefix sums per interval
  and day it covers; a list with overlapping stays (two cells within one hour) is
  summed hour by hour exactly as ``exposure()`` does, each hour counted once.

Results equal ``exposure()`` up to the rounding of the summation order (exactly, for
overlapping lists).

>>> lookup = lambda cell, hour: (40.0, 85.0) if cell == "9tbq" else None
>>> ExposureCache(lookup).of(Residency(["9tbq", "dhwf"], [1000, 1010], [1004, 1012])).tolist()
[25.0, 0.0, 5.0, 5.0]
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

from twins.residency import HISTORY_HOURS, HourlyLookup, Residency
from twins.weather import MISSING

EXPOSURE_FEATURE_NAMES: tuple[str, ...] = (
    "weather_degree_hours_above_35c", "weather_degree_hours_below_minus10c", "weather_hours_rh_80",
    "weather_hours_observed",
)
#: ``(cell, UTC day) -> token``: a token that changes whenever that day's observations of the cell change.
DayVersion = Callable[[str, int], Hashable]


@numba.njit(cache=True, nogil=True)
def _windows(cell: Any, start: Any, end: Any, offsets: Any, n_cells: int) -> Any:
    """Per list the first hour of its 30-day window, per interval the first hour inside it (``> end``: none);
    and the (cell, day) pairs the kept intervals cover, as a ``(n_cells, days)`` mask from day ``dmin``."""
    n = len(offsets) - 1
    firsts = np.zeros(n, np.int64)
    lo = np.empty(len(start), np.int64)
    dmin, dmax = np.int64(1) << 62, -(np.int64(1) << 62)
    for i in range(n):
        a, b = offsets[i], offsets[i + 1]
        if a == b:
            continue
        newest = end[a]
        for j in range(a + 1, b):
            if end[j] > newest:
                newest = end[j]
        first = firsts[i] = newest - (HISTORY_HOURS - 1)
        for j in range(a, b):
            s = start[j] if start[j] > first else first
            lo[j] = s
            if s <= end[j]:
                if s // 24 < dmin:
                    dmin = s // 24
                if end[j] // 24 > dmax:
                    dmax = end[j] // 24
    if dmax < dmin:
        return firsts, lo, np.int64(0), np.zeros((n_cells, 0), np.bool_)
    need = np.zeros((n_cells, dmax - dmin + 1), np.bool_)
    for j in range(len(start)):
        if lo[j] <= end[j]:
            for d in range(lo[j] // 24, end[j] // 24 + 1):
                need[cell[j], d - dmin] = True
    return firsts, lo, dmin, need


@numba.njit(cache=True, nogil=True)
def _sums(cell: Any, firsts: Any, lo: Any, end: Any, offsets: Any, dmin: int, pair: Any, prefix: Any,
          hourly: Any) -> Any:
    """``(lists, 4)`` exposures: prefix-sum differences per interval and day for lists without overlapping
    stays, ``exposure()``'s hour-by-hour loop (each hour once, in list order) for the others."""
    n = len(offsets) - 1
    out = np.zeros((n, 4))
    counted = np.zeros(HISTORY_HOURS, np.bool_)
    for i in range(n):
        a, b = offsets[i], offsets[i + 1]
        overlap = False
        for j in range(a, b):
            if lo[j] > end[j]:
                continue
            for k in range(j + 1, b):
                if lo[k] <= end[k] and max(lo[j], lo[k]) <= min(end[j], end[k]):
                    overlap = True
                    break
            if overlap:
                break
        if not overlap:
            h0 = h1 = h2 = h3 = 0.0
            for j in range(a, b):
                s, e, c = lo[j], end[j], cell[j]
                if s > e:
                    continue
                for d in range(s // 24, e // 24 + 1):
                    p = pair[c, d - dmin]
                    x = s - d * 24
                    y = e - d * 24
                    x = x if x > 0 else 0
                    y = (y if y < 23 else 23) + 1
                    h0 += prefix[p, y, 0] - prefix[p, x, 0]
                    h1 += prefix[p, y, 1] - prefix[p, x, 1]
                    h2 += prefix[p, y, 2] - prefix[p, x, 2]
                    h3 += prefix[p, y, 3] - prefix[p, x, 3]
            out[i, 0], out[i, 1], out[i, 2], out[i, 3] = h0, h1, h2, h3
            continue
        first = firsts[i]
        counted[:] = False
        seen = 0
        h0 = h1 = h2 = 0.0
        for j in range(a, b):
            c = cell[j]
            for hour in range(lo[j], end[j] + 1):
                if counted[hour - first]:
                    continue
                p = pair[c, hour // 24 - dmin]
                r = hour % 24
                if hourly[p, r, 3] == 0.0:
                    continue
                counted[hour - first] = True
                seen += 1
                h0 += hourly[p, r, 0]
                h1 += hourly[p, r, 1]
                h2 += hourly[p, r, 2]
        out[i, 0], out[i, 1], out[i, 2], out[i, 3] = h0, h1, h2, float(seen)
    return out


def _list_offsets(lengths: Sequence[int], n_cells: int, n_starts: int, n_ends: int) -> NDArray[np.int64] | None:
    """Where each list starts among the intervals (and where the last ends); None if there are no intervals.
    Raises if cells, starts and ends are not as many as the lengths add up to."""
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(np.asarray(lengths, dtype=np.int64), out=offsets[1:])
    if not n_cells:
        return None
    if not n_cells == n_starts == n_ends == offsets[-1]:
        raise ValueError(f"residency lists of {int(offsets[-1])} intervals in all, got {n_cells} cells, "
                         f"{n_starts} starts and {n_ends} ends")
    return offsets


class ExposureCache:
    """``EXPOSURE_FEATURE_NAMES`` of residency lists against one weather lookup, batched (see the module).

    ``hourly_lookup(cell, hour)`` gives ``(air °C, RH %)`` or None. Without ``day_version`` a
    looked-up day is kept for the cache's lifetime (fixed weather: the training replay, or
    one cache per batch); with it, a kept day is used only while its token is unchanged.
    At most ``max_days`` (cell, day)s are kept (all are dropped when full; ~1.6 kB each).
    """

    def __init__(self, hourly_lookup: HourlyLookup, day_version: DayVersion | None = None,
                 max_days: int = 100_000) -> None:
        self.lookup = hourly_lookup
        self.day_version = day_version
        self.max_days = max_days
        self._cell_ids: dict[str, int] = {}
        self._cells: list[str] = []
        self._rows: dict[tuple[int, int], int] = {}        # (cell id, day) -> row of _prefix / _hourly
        self._versions: list[Hashable] = []
        self._prefix = np.zeros((0, 25, 4))
        self._hourly = np.zeros((0, 24, 4))

    def __len__(self) -> int:
        """The (cell, day)s kept."""
        return len(self._rows)

    def clear(self) -> None:
        """Forget every kept day."""
        self._rows.clear()
        self._versions.clear()

    def of(self, res: Residency) -> NDArray[np.float64]:
        """The four exposures of one residency list."""
        return self.sums(res.cells, res.starts, res.ends, [len(res.cells)])[0]

    def of_lists(self, lists: Sequence[Residency]) -> NDArray[np.float64]:
        """``(len(lists), 4)`` exposures of residency lists."""
        cells: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        for r in lists:
            cells += r.cells
            starts += r.starts
            ends += r.ends
        return self.sums(cells, starts, ends, [len(r.cells) for r in lists])

    def sums(self, cells: list[str], starts: list[int], ends: list[int], lengths: Sequence[int]
             ) -> NDArray[np.float64]:
        """``(len(lengths), 4)`` exposures of lists given one after the other: list ``i`` is the next
        ``lengths[i]`` entries of ``cells``, ``starts`` and ``ends`` (hours since epoch)."""
        offsets = _list_offsets(lengths, len(cells), len(starts), len(ends))
        if offsets is None:
            return np.zeros((len(lengths), 4))
        return self._sum_lists(self._ids_by_name(cells), np.array(starts, dtype=np.int64),
                               np.array(ends, dtype=np.int64), offsets)

    def _sum_lists(self, cell: NDArray[np.int64], start: NDArray[np.int64], end: NDArray[np.int64],
                   offsets: NDArray[np.int64]) -> NDArray[np.float64]:
        firsts, lo, dmin, need = _windows(cell, start, end, offsets, len(self._cells))
        pair = self._pairs(need, int(dmin))
        return _sums(cell, firsts, lo, end, offsets, dmin, pair, self._prefix, self._hourly)

    def _ids_by_name(self, cells: list[str]) -> NDArray[np.int64]:
        ids = self._cell_ids
        try:
            return np.fromiter(map(ids.__getitem__, cells), np.int64, len(cells))
        except KeyError:
            for c in dict.fromkeys(cells):
                if c not in ids:
                    ids[c] = len(self._cells)
                    self._cells.append(c)
            return np.fromiter(map(ids.__getitem__, cells), np.int64, len(cells))

    def _pairs(self, need: NDArray[np.bool_], dmin: int) -> NDArray[np.int64]:
        """``need``'s shape: the row of each needed (cell, day), looked up where not kept (or changed)."""
        pair = np.zeros(need.shape, np.int64)
        cs, ds = np.nonzero(need)
        if len(self._rows) + len(cs) > self.max_days:
            self.clear()
        rows, versions, names, version = self._rows, self._versions, self._cells, self.day_version
        fresh: list[tuple[int, int, int]] = []
        for c, d in zip(cs.tolist(), (ds + dmin).tolist()):
            row = rows.get((c, d))
            if row is None:
                row = rows[(c, d)] = len(versions)
                versions.append(None)
                fresh.append((row, c, d))
            elif version is not None and versions[row] != version(names[c], d):
                fresh.append((row, c, d))
            pair[c, d - dmin] = row
        if fresh:
            self._look_up(fresh)
        return pair

    def _look_up(self, fresh: list[tuple[int, int, int]]) -> None:
        """Fill the rows of these (row, cell id, day)s from the lookup."""
        if len(self._versions) > len(self._prefix):
            grow = max(len(self._versions), 2 * len(self._prefix)) - len(self._prefix)
            self._prefix = np.concatenate([self._prefix, np.zeros((grow, 25, 4))])
            self._hourly = np.concatenate([self._hourly, np.zeros((grow, 24, 4))])
        lookup, version, names = self.lookup, self.day_version, self._cells
        rows = np.array([r for r, _, _ in fresh])
        hourly = np.zeros((len(fresh), 24, 4))
        for k, (row, c, d) in enumerate(fresh):
            cell = names[c]
            if version is not None:
                self._versions[row] = version(cell, d)   # before the lookup: a change meanwhile is seen next time
            for h in range(24):
                obs = lookup(cell, d * 24 + h)
                if obs is not None:
                    temp, rh = obs
                    hourly[k, h] = (max(0.0, temp - 35.0), max(0.0, -10.0 - temp),
                                    1.0 if rh != MISSING and rh >= 80.0 else 0.0, 1.0)
        prefix = np.zeros((len(fresh), 25, 4))
        np.cumsum(hourly, axis=1, out=prefix[:, 1:])
        self._hourly[rows] = hourly
        self._prefix[rows] = prefix
