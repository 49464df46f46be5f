"""ExposureCache: batched weather exposure against twins.residency.exposure, and weather that changes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.risk.exposure import EXPOSURE_FEATURE_NAMES, ExposureCache
from twins.residency import HISTORY_HOURS, Residency, exposure

CELLS = ("9tbq", "dhwf", "dhwc", "9q5c")
END = 490_000                                           # an hour in 2025


def _weather(cell: str, hour: int) -> tuple[float, float] | None:
    """Deterministic hourly weather with gaps: hot in 9tbq, cold in 9q5c, some hours unobserved."""
    if (hour * 7 + len(cell) + ord(cell[-1])) % 11 == 0:
        return None
    base = {"9tbq": 38.0, "dhwf": 20.0, "dhwc": 25.0, "9q5c": -8.0}[cell]
    temp = base + 6.0 * math.sin(2 * math.pi * (hour % 24) / 24.0) + (hour % 5) * 0.37
    return temp, 50.0 + 45.0 * ((hour * 13) % 7 == 0)


def _random_lists(n: int, seed: int) -> list[Residency]:
    """Residency lists as note_location builds them (start order, mostly disjoint), some with overlapping
    stays, some reaching past the 30-day window, some empty."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(0, 17))
        hour = END - int(rng.integers(0, 2000))
        cells, starts, ends = [], [], []
        for _ in range(k):
            length = int(rng.integers(0, 60))
            cells.append(CELLS[int(rng.integers(0, len(CELLS)))])
            starts.append(hour - length)
            ends.append(hour)
            hour -= length + int(rng.integers(1, 50))
        cells.reverse(), starts.reverse(), ends.reverse()
        if i % 5 == 0 and k >= 2:                          # two cells within the same hours
            starts[-1] = ends[-2] - int(rng.integers(0, 3))
        out.append(Residency(cells, starts, ends))
    return out


def _reference(lists: list[Residency], lookup=_weather) -> np.ndarray:
    return np.array([[exposure(r, lookup)[name] for name in EXPOSURE_FEATURE_NAMES] for r in lists])


def test_batched_sums_equal_exposure_and_overlapping_stays_exactly():
    lists = _random_lists(400, seed=3)
    got = ExposureCache(_weather).of_lists(lists)
    want = _reference(lists)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)
    overlapping = [i for i, r in enumerate(lists)
                   if any(max(r.starts[a], r.starts[b]) <= min(r.ends[a], r.ends[b])
                          for a in range(len(r.cells)) for b in range(a + 1, len(r.cells)))]
    assert len(overlapping) > 40
    np.testing.assert_array_equal(got[overlapping], want[overlapping])      # hour by hour, as exposure() adds
    assert (got[:, 3] <= HISTORY_HOURS).all() and got[:, 0].max() > 100 and got[:, 1].max() > 0
    assert (got[[i for i, r in enumerate(lists) if not r.cells]] == 0).all()


def test_a_kept_day_is_looked_up_again_only_when_its_version_changes():
    calls: list[tuple[str, int]] = []
    offset = {"dhwf": 0.0}
    versions: dict[tuple[str, int], int] = {}

    def lookup(cell: str, hour: int) -> tuple[float, float] | None:
        calls.append((cell, hour))
        obs = _weather(cell, hour)
        return None if obs is None else (obs[0] + offset.get(cell, 0.0), obs[1])

    cache = ExposureCache(lookup, day_version=lambda cell, day: versions.get((cell, day), 0))
    lists = [Residency(["dhwf", "9tbq"], [END - 100, END - 40], [END - 50, END])]
    first = cache.of_lists(lists)
    looked_up = len(calls)
    assert looked_up == 24 * len(cache) and len(cache) >= 4
    np.testing.assert_array_equal(cache.of_lists(lists), first)
    assert len(calls) == looked_up                         # nothing changed: nothing looked up
    offset["dhwf"] = 30.0                                  # new observations of one dhwf day arrive ...
    day = (END - 60) // 24
    versions[("dhwf", day)] = 1
    warmer = cache.of_lists(lists)
    assert len(calls) == looked_up + 24                    # ... only that day is looked up again
    assert warmer[0, 0] > first[0, 0]
    hours = range(max(END - 100, day * 24), min(END - 50, day * 24 + 23) + 1)
    partial = _reference([Residency(["dhwf"], [hours[0]], [hours[-1]])], lookup)[0]
    before = _reference([Residency(["dhwf"], [hours[0]], [hours[-1]])])[0]
    np.testing.assert_allclose(warmer[0, 0] - first[0, 0], partial[0] - before[0], rtol=1e-9)
    # without a version a kept day stays as it was looked up (fixed weather, e.g. the training replay)
    fixed = ExposureCache(lookup)
    kept = fixed.of_lists(lists)
    offset["dhwf"] = 60.0
    np.testing.assert_array_equal(fixed.of_lists(lists), kept)
    assert ExposureCache(lookup).of_lists(lists)[0, 0] > kept[0, 0]


def test_cells_first_seen_later_and_of_other_lengths_and_a_full_cache():
    """Cells are told apart by their bytes when all have one length: cells first seen in a later batch, and
    batches mixing lengths (other geohash precisions, a home cell), give exposure()'s numbers; so does a
    cache that fills up and starts again."""
    def weather(cell: str, hour: int) -> tuple[float, float] | None:
        return _weather(cell, hour) if cell in CELLS else (30.0 + len(cell) + (hour % 9), 81.0)

    cache = ExposureCache(weather, max_days=10)
    lists = _random_lists(60, seed=5)
    batches = [lists[:20], lists[20:40], lists[40:]]
    for r in batches[1][::2]:
        r.cells[:] = ["c2b2" if c == "dhwf" else c for c in r.cells]      # a new cell of the same length
    for r in batches[2][::3]:
        r.cells[:] = ["9tbqx" if c == "9tbq" else c for c in r.cells]     # another precision
    for batch in batches:
        np.testing.assert_allclose(cache.of_lists(batch), _reference(batch, weather), rtol=1e-12, atol=1e-9)
    assert {"c2b2", "9tbqx"} <= set(cache._cells)



def test_bad_lengths_are_named():
    with pytest.raises(ValueError, match="3 intervals in all, got 3 cells, 2 starts and 3 ends"):
        ExposureCache(_weather).sums(["dhwf"] * 3, [1, 2], [1, 2, 3], [3])
