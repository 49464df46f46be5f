"""Rare diagnostic trouble codes (SAE J2012 style) that set and later clear.

Each code has a base onset probability per vehicle per day (0.1-1 %), applied
while the vehicle's electronics are awake (driving or charging; taken as about
ten awake hours a day), scaled by a condition factor: e.g. the inverter
over-temperature code becomes far likelier while the power module is hot.
An active code clears after an exponentially distributed time. Active sets
are kept as a bitmask per vehicle so that "changed" is one integer compare.

Failing components (``models.simulation.reliability``) raise the onset rate of
their codes in the weeks before a failure (``boost``) or set a code at once on
an event such as a low-voltage wake (``force``): these are the precursors a
failure-risk model can learn from, with imperfect sensitivity by design.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

AWAKE_S_PER_DAY = 10 * 3600.0


@dataclass(frozen=True)
class DtcSpec:
    """One trouble code: base daily probability and mean active duration."""

    code: str
    description: str
    p_per_day: float
    mean_active_h: float


CATALOGUE: tuple[DtcSpec, ...] = (
    DtcSpec("P0A7F", "Hybrid/EV battery pack deterioration", 0.001, 48.0),
    DtcSpec("P0AA6", "Hybrid/EV battery voltage system isolation fault", 0.002, 6.0),
    DtcSpec("P0A3C", "Drive motor inverter over temperature", 0.001, 0.5),
    DtcSpec("P0AFA", "Hybrid/EV battery system voltage low", 0.001, 2.0),
    DtcSpec("P1A00", "Manufacturer-specific HV system fault (example)", 0.001, 12.0),
    DtcSpec("U0100", "Lost communication with ECM/PCM 'A'", 0.004, 0.25),
    DtcSpec("P0562", "System voltage low (12 V)", 0.0005, 24.0),
)
CODES: tuple[str, ...] = tuple(s.code for s in CATALOGUE)
_BASE_RATE = np.array([s.p_per_day for s in CATALOGUE]) / AWAKE_S_PER_DAY   # per awake second
_MEAN_ACTIVE_MS = np.array([s.mean_active_h for s in CATALOGUE]) * 3_600_000.0
_BITS = (1 << np.arange(len(CATALOGUE))).astype(np.int64)

#: bitmask -> tuple of active codes, in catalogue order.
MASK_TO_CODES: tuple[tuple[str, ...], ...] = tuple(
    tuple(c for i, c in enumerate(CODES) if mask >> i & 1) for mask in range(1 << len(CODES))
)


class DtcState:
    """Active codes and their clear times for ``n`` vehicles."""

    def __init__(self, n: int) -> None:
        self.active = np.zeros((n, len(CATALOGUE)), dtype=bool)
        self.clear_at_ms = np.zeros((n, len(CATALOGUE)), dtype=np.int64)

    def condition_factor(self, soh_pct: NDArray[np.float64], inverter_c: NDArray[np.float64],
                         rh_pct: NDArray[np.float64], soc: NDArray[np.float64]) -> NDArray[np.float64]:
        """Per-vehicle, per-code multiplier on the base onset rate."""
        f = np.ones((len(soh_pct), len(CATALOGUE)))
        f[:, 0] = 1.0 + np.exp(np.minimum((85.0 - soh_pct) / 2.5, 7.0))  # worn packs: x8 at 80 %, x180 at 72 %
        f[:, 1] = np.where(rh_pct > 90.0, 5.0, 1.0)                      # wet weather
        f[:, 2] = np.where(inverter_c > 80.0, 400.0, np.where(inverter_c > 65.0, 20.0, 0.2))
        f[:, 3] = np.where(soc < 0.10, 50.0, 0.5)                        # deep discharge
        return f

    def step(self, rng: np.random.Generator, now_ms: int, dt_s: float, awake: NDArray[np.bool_],
             factor: NDArray[np.float64], force: NDArray[np.bool_] | None = None) -> NDArray[np.int64]:
        """Clear expired codes, set new ones; return each vehicle's active bitmask.

        ``force`` (same shape as ``factor``) sets codes now whether awake or not.
        """
        self.active &= self.clear_at_ms > now_ms
        p = 1.0 - np.exp(-_BASE_RATE * factor * dt_s)
        draws = rng.random(self.active.shape)
        onset = (draws < p) & awake[:, None]
        if force is not None:
            onset |= force
        onset &= ~self.active
        if onset.any():
            durations = rng.exponential(1.0, size=int(onset.sum())) * _MEAN_ACTIVE_MS[np.nonzero(onset)[1]]
            self.clear_at_ms[onset] = now_ms + np.maximum(durations, 60_000.0).astype(np.int64)
            self.active |= onset
        return self.active.astype(np.int64) @ _BITS
