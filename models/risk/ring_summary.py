"""The 30-day ring of a twin's daily totals, summarised for the 7/30-day window features, and kept per vehicle.

``ring_summary`` computes, for rows of rings, the stored-day part of
``twins.history.daily.window`` / ``soh_slope_per_day`` (columns ``S_*`` of
``models.risk.feature_kernel``). A ring changes only when a vehicle's UTC day rolls over, so
the scorer keeps each vehicle's last summary (:class:`RingSummaries`) with a fingerprint of
the ring it came from.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from models.risk.feature_kernel import (N_SUMMARY, S_CELL7, S_CELL30, S_INV7, S_INV30, S_N, S_SUM7, S_SUM30, S_X, S_XX,
                                        S_XY, S_Y)
from twins.history.daily import INV_MAX, N_DAYS, N_TOTALS, NO_DATA, PACK_MAX, SCALE
from twins.history.daily import SOH as SOH_COL

#: Most vehicles whose summaries are kept (all are dropped when full).
RING_CACHE_MAX = 1_000_000
_SCALE6 = np.array(SCALE[:N_TOTALS])


class RingSummaries:
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

    def __init__(self, width: int) -> None:
        self.index: dict[str, int] = {}
        self.fingerprints = np.empty((0, width))
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
            self.fingerprints = np.concatenate([self.fingerprints, np.empty((grow, self.fingerprints.shape[1]))])
            self.summaries = np.concatenate([self.summaries, np.empty((grow, N_SUMMARY))])
        self.fingerprints[rows] = fingerprints
        self.summaries[rows] = summaries


def ring_summary(ring: NDArray[np.float64], day: NDArray[np.float64], first: NDArray[np.float64]
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
