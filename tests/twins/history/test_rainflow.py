"""Rainflow counting: the ASTM E1049-85 textbook example, and online == batch."""

from __future__ import annotations

import random

import numpy as np
import pytest

from twins.history import rainflow
from twins.history.rainflow import (RainflowState, as_range_mean, histogram, push_point, rainflow_count,
                                    rainflow_update, turning_points)

# ASTM E1049-85 (2017) Fig. 6 / 5.4.4 example: peaks and valleys A..I.
ASTM_SERIES = [-2, 1, -3, 5, -1, 3, -4, 4, -2]


def online(series, h, max_len=64):
    rs = RainflowState()
    cycles = []
    for x in series:
        closed = rainflow_update(rs, x, h, max_len)
        if closed:
            cycles.extend(closed)
    return rs, cycles


def residue_cycles(rs, max_len=64):
    """``rainflow.residue_cycles`` of one state (a row of one), as ``[(a, b, count), ...]``."""
    row, a, b, count = rainflow.residue_cycles(np.array([rs.stack], dtype=float).reshape(1, -1),
                                               np.array([len(rs.stack)]), np.array([rs.cand]),
                                               np.array([rs.direction]), max_len)
    assert (row == 0).all()
    return list(zip(a.tolist(), b.tolist(), count.tolist()))


def test_astm_example_ranges_and_counts():
    # Standard's result: range 3 -> 0.5, 4 -> 1.5, 6 -> 0.5, 8 -> 1.0, 9 -> 0.5 (others 0).
    assert histogram(rainflow_count(ASTM_SERIES)) == {3: 0.5, 4: 1.5, 6: 0.5, 8: 1.0, 9: 0.5}


def test_astm_example_step_by_step():
    # Hand trace of 5.4.4: half A-B (3), half B-C (4), full E-F (4), half C-D (8), residue D-G, G-H, H-I.
    assert rainflow_count(ASTM_SERIES) == [
        (3, -0.5, 0.5), (4, -1.0, 0.5), (4, 1.0, 1.0), (8, 1.0, 0.5),
        (9, 0.5, 0.5), (8, 0.0, 0.5), (6, 1.0, 0.5),
    ]


def test_online_reproduces_astm_example():
    rs, cycles = online(ASTM_SERIES, 0.0)
    assert as_range_mean(cycles + residue_cycles(rs)) == rainflow_count(ASTM_SERIES)
    # Counted so far: everything but the residue (D-G, G-H and the open H-I).
    assert rs.stack == [5, -4, 4] and rs.cand == -2 and rs.direction == -1


def test_turning_points_plateaus_and_hysteresis():
    assert turning_points([1, 1, 2, 2, 3, 1, 1, 4]) == [1, 3, 1, 4]
    # Wiggles of <= 2 K are ignored; the 5 K reversal is kept; the series ends on its last extreme (25.0).
    assert turning_points([20.0, 21.0, 19.5, 30.0, 28.5, 29.0, 25.0, 26.5], 2.0) == [20.0, 30.0, 25.0]
    assert turning_points([20.0, 23.0, 22.0], 2.0) == [20.0, 23.0]
    assert turning_points([5.0]) == [5.0]
    assert turning_points([]) == []


@pytest.mark.parametrize("h", [0.0, 2.0])
def test_online_equals_batch_on_long_random_series(h):
    rnd = random.Random(1049)
    series = []
    x = 50.0
    for _ in range(20_000):
        x = min(150.0, max(-20.0, x + rnd.gauss(0.0, 3.0)))
        series.append(round(x, 1))
    rs, cycles = online(series, h)
    assert len(rs.stack) < 64, "cap must not be hit for this comparison"
    batch = rainflow_count(series, h)
    # The last extreme is still open online; closing it (residue_cycles) may close full cycles too.
    everything = as_range_mean(cycles + residue_cycles(rs))
    full_online = [c for c in everything if c[2] == 1.0]
    full_batch = [c for c in batch if c[2] == 1.0]
    assert full_online == full_batch and len(full_batch) > 1000
    assert [c for c in everything if c[2] == 0.5] == [c for c in batch if c[2] == 0.5]
    assert everything == batch
    # Also at an arbitrary prefix: online state then equals batch on the samples so far.
    rs2, cycles2 = online(series[:7_777], h)
    assert as_range_mean(cycles2 + residue_cycles(rs2)) == rainflow_count(series[:7_777], h)


def test_residue_is_not_consumed():
    rs, _ = online([0, 10, 2, 8, 4], 0.0)
    first = residue_cycles(rs)
    assert residue_cycles(rs) == first
    assert rs.stack == [0, 10, 2, 8]


def test_stack_bounded_on_converging_series():
    # 0, 100, 0.1, 99.9, 0.2, 99.8, ... : every range smaller than the last, nothing ever closes,
    # so without the cap the stack would hold every point; with it, forced half cycles.
    series = []
    for k in range(150):
        series += [0.1 * k, 100.0 - 0.1 * k]
    rs, cycles = online(series, 0.0, max_len=64)
    assert len(rs.stack) == 64
    assert all(c == 0.5 for _, _, c in cycles)
    assert len(cycles) == 300 - 1 - 64  # 299 confirmed turning points (the last sample is the open candidate)
    assert cycles[0] == (0.0, 100.0, 0.5)
    # Total counted weight is conserved: every range between consecutive turning points counts 0.5 once.
    total = sum(c for _, _, c in cycles + residue_cycles(rs))
    assert total == pytest.approx(0.5 * (len(series) - 1))


def test_push_point_full_and_half():
    stack = [0.0, 10.0, 4.0]
    assert push_point(stack, 6.0) == []
    # X = 7 >= Y = 2: full cycle 4-6; then X = 11 >= Y = 10 with S in Y: half cycle 0-10.
    assert push_point(stack, -1.0) == [(4.0, 6.0, 1.0), (0.0, 10.0, 0.5)]
    assert stack == [10.0, -1.0]
    assert push_point(stack, 5.0) == []
    assert push_point(stack, 2.0) == []
    assert stack == [10.0, -1.0, 5.0, 2.0]
