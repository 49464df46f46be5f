"""Rainflow cycle counting (ASTM E1049-85 (2017), section 5.4.4): batch reference and online form.

Reference: ASTM E1049-85 (Reapproved 2017), *Standard Practices for Cycle Counting
in Fatigue Analysis*, 5.4.4 "Rainflow Counting" (the three-point method with a
starting point S). Steps, with X the most recent range and Y the one before it:

1. read the next peak or valley (out of data: step 6);
2. fewer than three points: step 1; else form X and Y from the three most recent
   points not discarded;
3. X < Y: step 1;
4. Y contains the starting point S: step 5; else count Y as **one cycle**,
   discard its two points, step 2;
5. count Y as **one-half cycle**, discard its first point, S moves to its second; step 2;
6. count every range not yet counted as one-half cycle (the *residue*).

Turning points are extracted with a hysteresis band ``h`` (a reversal counts only
if it exceeds ``h``; ``h = 0`` keeps every strict reversal and collapses
plateaus). The first sample and the final extreme (with ``h = 0``: the last
sample) are turning points, as in the standard.

The online form (:class:`RainflowState`, :func:`rainflow_update`) keeps the
undiscarded points as a small stack, so it is O(1) amortised per sample: with
:func:`residue_cycles` (over the states of many rows at once) at any time it yields
exactly what :func:`rainflow_count` yields on the samples so far — unless the stack outgrows ``max_len``; then the
oldest range is counted as a half cycle at once (forced step 5) so memory stays
bounded. That needs ``max_len`` strictly converging reversals in a row (each
smaller than the last), which thermal data does not produce in practice.

>>> sorted((r, c) for r, _, c in rainflow_count([-2, 1, -3, 5, -1, 3, -4, 4, -2]))
[(3, 0.5), (4, 0.5), (4, 1.0), (6, 0.5), (8, 0.5), (8, 0.5), (9, 0.5)]
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
import numpy as np
from numpy.typing import NDArray

#: One counted range: (low-or-high point, other point, count 0.5 or 1.0), in counting order.
Cycle = tuple[float, float, float]
DEFAULT_MAX_LEN = 64


# ----------------------------------------------------------------------------- batch reference
def turning_points(series: Iterable[float], hysteresis: float = 0.0) -> list[float]:
    """Peaks and valleys of ``series``: first sample, every reversal > ``hysteresis``, final extreme."""
    pts: list[float] = []
    direction = 0
    cand = 0.0
    for x in series:
        if not pts:
            pts.append(x)
            cand = x
        elif direction == 0:
            if x - pts[0] > hysteresis:
                direction, cand = 1, x
            elif pts[0] - x > hysteresis:
                direction, cand = -1, x
        elif direction > 0:
            if x > cand:
                cand = x
            elif cand - x > hysteresis:
                pts.append(cand)
                direction, cand = -1, x
        elif x < cand:
            cand = x
        elif x - cand > hysteresis:
            pts.append(cand)
            direction, cand = 1, x
    if direction:
        pts.append(cand)
    return pts


def rainflow_count(series: Iterable[float], hysteresis: float = 0.0) -> list[tuple[float, float, float]]:
    """ASTM E1049-85 rainflow count of ``series``: ``[(range, mean, count), ...]`` in counting order.

    ``count`` is 1.0 for a full cycle and 0.5 for a half cycle (step 5 and the residue, step 6).
    """
    out: list[tuple[float, float, float]] = []
    points: list[float] = []          # points not yet discarded; points[0] is the starting point S
    for p in turning_points(series, hysteresis):
        points.append(p)                                  # step 1
        while len(points) >= 3:                           # step 2
            x_range = abs(points[-1] - points[-2])
            y_range = abs(points[-2] - points[-3])
            if x_range < y_range:                         # step 3
                break
            a, b = points[-3], points[-2]
            if len(points) == 3:                          # step 4 -> 5: Y contains S
                out.append((y_range, (a + b) / 2.0, 0.5))
                del points[0]
            else:                                         # step 4: full cycle
                out.append((y_range, (a + b) / 2.0, 1.0))
                del points[-3:-1]
    for a, b in zip(points, points[1:]):                  # step 6: residue
        out.append((abs(b - a), (a + b) / 2.0, 0.5))
    return out


def histogram(cycles: Iterable[tuple[float, float, float]]) -> dict[float, float]:
    """Total count per range (for comparing counts), ranges rounded to 1e-9."""
    hist: dict[float, float] = {}
    for rng, _, count in cycles:
        key = round(rng, 9)
        hist[key] = hist.get(key, 0.0) + count
    return hist


# ----------------------------------------------------------------------------- online form
class RainflowState(msgspec.Struct, array_like=True, gc=False):
    """Online rainflow state: undiscarded turning points and the unconfirmed running extreme.

    ``direction``: 0 = no reversal yet (``stack`` holds at most the first sample), +1 rising, -1 falling.
    """

    stack: list[float] = msgspec.field(default_factory=list)
    cand: float = 0.0
    direction: int = 0


def push_point(stack: list[float], p: float, max_len: int = DEFAULT_MAX_LEN) -> list[Cycle]:
    """Add a confirmed turning point; return the ranges it closes as ``(a, b, count)`` (steps 2-5)."""
    stack.append(p)
    out: list[Cycle] = []
    while len(stack) >= 3:
        a = stack[-3]
        b = stack[-2]
        if abs(p - b) < abs(b - a):
            break
        if len(stack) == 3:
            out.append((a, b, 0.5))
            del stack[0]
        else:
            out.append((a, b, 1.0))
            del stack[-3:-1]
    if len(stack) > max_len:                      # bounded memory: forced step 5 on the oldest range
        out.append((stack[0], stack[1], 0.5))
        del stack[0]
    return out


def rainflow_update(rs: RainflowState, x: float, hysteresis: float,
                    max_len: int = DEFAULT_MAX_LEN) -> list[Cycle] | None:
    """Feed one sample; return closed ranges when it confirms a turning point, else ``None``."""
    d = rs.direction
    if d > 0:
        cand = rs.cand
        if x > cand:
            rs.cand = x
        elif cand - x > hysteresis:
            rs.direction = -1
            rs.cand = x
            return push_point(rs.stack, cand, max_len)
        return None
    if d < 0:
        cand = rs.cand
        if x < cand:
            rs.cand = x
        elif x - cand > hysteresis:
            rs.direction = 1
            rs.cand = x
            return push_point(rs.stack, cand, max_len)
        return None
    stack = rs.stack
    if not stack:
        stack.append(x)
        rs.cand = x
    elif x - stack[0] > hysteresis:
        rs.direction = 1
        rs.cand = x
    elif stack[0] - x > hysteresis:
        rs.direction = -1
        rs.cand = x
    return None


def residue_cycles(stack: NDArray[np.float64], length: NDArray[Any], cand: NDArray[np.float64],
                   direction: NDArray[Any], max_len: int = DEFAULT_MAX_LEN
                   ) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """What ending the series now would still count, for many online states at once (rows): the last extreme
    as a point (:func:`push_point`, steps 2-5), then step 6.

    ``stack``: the rows' ``RainflowState.stack`` padded to a common width, ``length`` their lengths,
    ``cand``/``direction`` their fields. Returns flat arrays ``(row, a, b, count)``: every range of every row,
    those of one row in counting order. Loops over stack positions, each step vectorised across rows; the
    states are not changed.

    >>> row, a, b, count = residue_cycles(np.array([[5.0, -4.0, 4.0]]), np.array([3]), np.array([-2.0]),
    ...                                   np.array([-1]))
    >>> list(zip(a.tolist(), b.tolist(), count.tolist()))      # the ASTM example's residue: D-G, G-H, H-I
    [(5.0, -4.0, 0.5), (-4.0, 4.0, 0.5), (4.0, -2.0, 0.5)]
    """
    n = len(stack)
    rows = np.arange(n)
    end = np.asarray(length, dtype=np.intp).copy()            # points work[r, start[r]:end[r]] not discarded
    start = np.zeros(n, np.intp)
    work = np.zeros((n, max(stack.shape[1], int(end.max(initial=0))) + 1))
    work[:, :stack.shape[1]] = stack
    pending = np.asarray(direction) != 0
    work[rows[pending], end[pending]] = np.asarray(cand)[pending]   # the pending extreme becomes a point
    end += pending
    out: list[tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]] = []
    active = rows[pending]
    while len(active):                                         # steps 2-5 on the rows still closing ranges
        active = active[end[active] - start[active] >= 3]
        e = end[active]
        a, b, p = work[active, e - 3], work[active, e - 2], work[active, e - 1]
        closes = np.abs(p - b) >= np.abs(b - a)
        active, e, a, b, p = active[closes], e[closes], a[closes], b[closes], p[closes]
        half = e - start[active] == 3                          # step 5: Y contains the starting point
        out.append((active, a, b, np.where(half, 0.5, 1.0)))
        start[active[half]] += 1
        full = active[~half]                                   # step 4: the two points of the cycle go
        work[full, e[~half] - 3] = p[~half]
        end[full] -= 2
    forced = rows[pending & (end - start > max_len)]          # bounded memory (push_point): forced half cycle
    out.append((forced, work[forced, start[forced]], work[forced, start[forced] + 1], np.full(len(forced), 0.5)))
    start[forced] += 1
    q = np.arange(work.shape[1] - 1)                           # step 6: the residue, as half cycles
    row, pos = np.nonzero((q >= start[:, None]) & (q + 1 < end[:, None]))
    out.append((row, work[row, pos], work[row, pos + 1], np.full(len(row), 0.5)))
    row, a, b, count = (np.concatenate(parts) for parts in zip(*out))
    return row, a, b, count


def as_range_mean(cycles: Iterable[Cycle]) -> list[tuple[float, float, float]]:
    """Convert ``(a, b, count)`` to ``(range, mean, count)`` as :func:`rainflow_count` reports."""
    return [(abs(b - a), (a + b) / 2.0, c) for a, b, c in cycles]
