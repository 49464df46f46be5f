"""Trouble-code sightings: when a precursor code was last seen active, and how often it set lately.

Signal: ``Vehicle.Diagnostics.DTCList`` (the twin's merged list of active codes). Some codes
precede a component failure by days to weeks but stay active only briefly (an inverter
over-temperature code clears within minutes to an hour), so the code being active *now*
rarely shows in a snapshot; its recent sightings do.

For each tracked code (``TRACKED``):

* **last seen**: the time of the latest reading at which the code was active;
* **onsets**: the reading at which the code appears (it was not active at the reading
  before) is an onset. Onsets are counted with exponential decay, time constant
  ``ONSET_TAU_DAYS`` (30 days): a count that forgets old onsets smoothly, in O(1) memory.
  The decayed count is stored with the time of its last onset and decayed further when
  read (``decayed``).

Per reading: one list lookup while no tracked code is or was active.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import numpy as np
from numpy.typing import NDArray

#: Codes tracked, with the component they point to (SAE J2012 wording in ``models.risk.feature_names``).
TRACKED: tuple[str, ...] = ("P0A3C", "P0A7F", "P0AA6", "P0562")
ONSET_TAU_DAYS = 30.0
_TAU_MS = ONSET_TAU_DAYS * 86_400_000.0


class DtcState(msgspec.Struct, array_like=True, gc=False):
    """Per tracked code (``TRACKED`` order): last time seen active, decayed onset count at its last onset."""

    active: int = 0                  # bitmask of the tracked codes active at the last reading
    last_seen_ms: list[int] = msgspec.field(default_factory=lambda: [0] * len(TRACKED))   # 0 = never
    onsets: list[float] = msgspec.field(default_factory=lambda: [0.0] * len(TRACKED))     # at onset_ms
    onset_ms: list[int] = msgspec.field(default_factory=lambda: [0] * len(TRACKED))


def _mask(codes: Sequence[str]) -> int:
    m = 0
    for k, code in enumerate(TRACKED):
        for c in codes:
            if c.startswith(code):
                m |= 1 << k
                break
    return m


def update_dtc(s: DtcState, ts_ms: int, codes: Sequence[str] | None) -> None:
    """One reading with the twin's active code list (``None`` = unknown: keeps the last known state)."""
    if codes is None:
        return
    mask = _mask(codes) if codes else 0
    prev = s.active
    if not mask and not prev:
        return
    s.active = mask
    for k in range(len(TRACKED)):
        bit = 1 << k
        if mask & bit:
            s.last_seen_ms[k] = ts_ms
            if not prev & bit:
                s.onsets[k] = decayed(s.onsets[k], ts_ms - s.onset_ms[k]) + 1.0 if s.onset_ms[k] else 1.0
                s.onset_ms[k] = ts_ms


def decayed(onsets: Any, age_ms: Any, exp: Callable[[Any], Any] = math.exp) -> Any:
    """``onsets`` weighted by exp(-age / ``ONSET_TAU_DAYS``); floats, or numpy arrays with ``exp=np.exp``."""
    return onsets * exp(-age_ms / _TAU_MS)


def sighting_features(last_seen_ms: NDArray[Any], onsets: NDArray[Any], onset_ms: NDArray[Any],
                      now_ms: NDArray[Any]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """For rows of ``DtcState`` fields ``(rows, len(TRACKED))`` at ``now_ms`` ``(rows,)``: days since each code
    was last seen (NaN if never) and its decayed onsets (0 if none)."""
    now = np.asarray(now_ms, dtype=np.float64)[:, None]
    with np.errstate(invalid="ignore"):
        days = np.where(last_seen_ms != 0, (now - last_seen_ms) / 86_400_000.0, math.nan)
        return days, np.where(onset_ms != 0, decayed(onsets, now - onset_ms, np.exp), 0.0)
