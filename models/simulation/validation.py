"""Argument checks shared by the simulator's public API (all raise ValueError naming the argument)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from models.simulation.regions import REGIONS


def check_int(name: str, value: Any, lo: int, hi: int) -> int:
    """``value`` as an int if it is an integer (not a bool) in ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    return int(value)


def is_finite_number(value: Any) -> bool:
    """True for finite ints/floats (numpy included), False for bools, strings, NaN, inf."""
    return (not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
            and math.isfinite(value))


def check_regions(regions: Sequence[str] | None) -> list[str]:
    """Region ids to assign round-robin (all regions when ``None``); duplicates weight a region."""
    if regions is None:
        return list(REGIONS)
    if isinstance(regions, str) or not isinstance(regions, Sequence) or len(regions) == 0:
        raise ValueError(f"regions must be a non-empty sequence of region ids from {sorted(REGIONS)}, "
                         f"got {regions!r}")
    unknown = [r for r in regions if r not in REGIONS]
    if unknown:
        raise ValueError(f"unknown region {unknown[0]!r} in regions; valid regions: {sorted(REGIONS)}")
    return list(regions)
