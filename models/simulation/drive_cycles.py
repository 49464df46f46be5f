"""EPA drive cycles (shipped CSVs) and the cyclic shift routes built from them.

A *route* is a long 1 Hz speed trace made of UDDS and HWFET cycles back to
back with short stops in between (short ones with the key on, longer
"delivery" stops with the key off). Routes are cyclic: a vehicle's route clock
``u`` (seconds) runs unbounded and wraps modulo the route length, so every
per-second quantity is stored once plus its cumulative integral, and anything
integrated over ``[u0, u1]`` is an exact difference of two lookups, whatever
the time step.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from models.simulation.resources import read_text

CYCLE_NAMES = ("udds", "hwfet")
KEY_OFF_STOP_S = 180  # stops at least this long are taken with the key off
DIST_M, KEY_ON_S = 0, 1  # channels of RouteSet.cum


@dataclass(frozen=True)
class DriveCycle:
    """One standard cycle sampled at 1 Hz."""

    name: str
    time_s: NDArray[np.float64]
    speed_mps: NDArray[np.float64]

    @property
    def distance_m(self) -> float:
        """Trapezoidal distance of the cycle."""
        v = self.speed_mps
        return float(np.sum(0.5 * (v[1:] + v[:-1]) * np.diff(self.time_s)))


@lru_cache(maxsize=None)
def load_cycle(name: str) -> DriveCycle:
    """Load ``udds`` or ``hwfet`` from ``models/data/drive_cycles``."""
    if name not in CYCLE_NAMES:
        raise ValueError(f"unknown drive cycle {name!r}; valid: {list(CYCLE_NAMES)}")
    rows = list(csv.DictReader(io.StringIO(read_text("drive_cycles", f"{name}.csv"))))
    t = np.array([float(r["time_s"]) for r in rows])
    v = np.array([float(r["speed_mps"]) for r in rows])
    if not np.allclose(np.diff(t), 1.0):
        raise ValueError(f"drive cycle {name!r} is not sampled at 1 Hz")
    return DriveCycle(name, t, v)


@dataclass(frozen=True)
class RouteSet:
    """``R`` cyclic routes of ``length_s`` seconds each.

    ``speed_mps[r, k]`` is the speed at second ``k`` (linear in between);
    second ``k`` spans ``[k, k+1)`` and has mean speed ``v_mean`` and constant
    acceleration ``accel_mps2``. ``cum[r, k, c]`` holds the integrals from 0 to
    second ``k`` (``length_s + 1`` columns) of channel ``c``: ``DIST_M`` metres
    travelled and ``KEY_ON_S`` seconds with the key on.
    """

    length_s: int
    speed_mps: NDArray[np.float64]
    v_mean: NDArray[np.float64]
    accel_mps2: NDArray[np.float64]
    key_on: NDArray[np.bool_]
    cum: NDArray[np.float64]
    next_stop: NDArray[np.int64]
    cycle_starts: tuple[NDArray[np.int64], ...]

    @property
    def n_routes(self) -> int:
        """Number of routes."""
        return int(self.speed_mps.shape[0])


def _build_trace(rng: np.random.Generator, length_s: int, highway_share: float
                 ) -> tuple[NDArray[np.float64], NDArray[np.bool_], list[int]]:
    udds, hwfet = load_cycle("udds").speed_mps, load_cycle("hwfet").speed_mps
    parts: list[NDArray[np.float64]] = []
    key: list[NDArray[np.bool_]] = []
    starts: list[int] = []
    pos = 0
    while True:
        cyc = hwfet if rng.random() < highway_share else udds
        # a cycle plus a stop of 20 s - 15 min (mostly short, some key-off stops)
        stop = int(rng.integers(20, 120)) if rng.random() < 0.7 else int(rng.integers(KEY_OFF_STOP_S, 900))
        if pos + len(cyc) + stop > length_s:
            break
        starts.append(pos)
        parts += [cyc, np.zeros(stop)]
        key += [np.ones(len(cyc), bool), np.full(stop, stop < KEY_OFF_STOP_S)]
        pos += len(cyc) + stop
    fill = length_s - pos
    parts.append(np.zeros(fill))
    key.append(np.full(fill, fill < KEY_OFF_STOP_S))
    return np.concatenate(parts), np.concatenate(key), starts


def _next_stop(speed: NDArray[np.float64]) -> NDArray[np.int64]:
    """For each second, the first second at or after it with zero speed (cyclic, unwrapped)."""
    n = len(speed)
    idx = np.where(speed <= 0.0, np.arange(n), 2 * n)
    nxt = np.minimum.accumulate(idx[::-1])[::-1]
    first = int(np.flatnonzero(speed <= 0.0)[0])
    return np.where(nxt >= 2 * n, n + first, nxt).astype(np.int64)


def build_routes(seed: int, n_routes: int = 4, length_s: int = 6 * 3600,
                 highway_shares: tuple[float, ...] = (0.15, 0.35, 0.55, 0.25)) -> RouteSet:
    """Build ``n_routes`` deterministic cyclic routes of ``length_s`` seconds."""
    rng = np.random.Generator(np.random.PCG64(seed))
    speeds, keys, starts = [], [], []
    for r in range(n_routes):
        v, k, s = _build_trace(rng, length_s, highway_shares[r % len(highway_shares)])
        speeds.append(v)
        keys.append(k)
        starts.append(np.asarray(s, dtype=np.int64))
    speed = np.stack(speeds)
    nxt_speed = np.roll(speed, -1, axis=1)  # routes start and end stopped, so wrap is continuous
    v_mean = 0.5 * (speed + nxt_speed)
    accel = nxt_speed - speed
    key_on = np.stack(keys)
    cum = cumulate(np.stack([v_mean, key_on.astype(np.float64)], axis=-1))
    next_stop = np.stack([_next_stop(v) for v in speed])
    return RouteSet(length_s, speed, v_mean, accel, key_on, cum, next_stop, tuple(starts))


def cumulate(per_second: NDArray[np.float64]) -> NDArray[np.float64]:
    """Cumulative integrals along axis 1 with a leading zero: (rows, L, C) -> (rows, L + 1, C)."""
    zeros = np.zeros((per_second.shape[0], 1) + per_second.shape[2:])
    return np.ascontiguousarray(np.concatenate([zeros, np.cumsum(per_second, axis=1)], axis=1))


def cumulative_at(cum: NDArray[np.float64], row: NDArray[np.int64], u: NDArray[np.float64]
                  ) -> NDArray[np.float64]:
    """All channels of a cyclic cumulative integral ``cum[row]`` at unwrapped route time ``u``.

    ``cum`` has shape ``(rows, L + 1, C)``; the result has shape ``(len(u), C)``.
    The integral keeps growing across wraps, so ``cumulative_at(c, r, u1) -
    cumulative_at(c, r, u0)`` is the integral over ``[u0, u1]``.
    """
    length = cum.shape[1] - 1
    flat = cum.reshape(-1, cum.shape[2])      # a view; np.take on rows is the fastest gather
    wraps = np.floor(u / length)
    local = u - wraps * length
    k = np.minimum(local.astype(np.int64), length - 1)
    frac = (local - k)[:, None]
    base = row * (length + 1)
    lo = np.take(flat, base + k, axis=0)
    hi = np.take(flat, base + k + 1, axis=0)
    total = np.take(flat, base + length, axis=0)
    return wraps[:, None] * total + lo + frac * (hi - lo)


def sample_at(series: NDArray[np.float64], row: NDArray[np.int64], u: NDArray[np.float64]
              ) -> NDArray[np.float64]:
    """Per-second value ``series[row, floor(u) mod L]`` (piecewise constant)."""
    length = series.shape[1]
    return series[row, np.floor(u).astype(np.int64) % length]


def speed_at(routes: RouteSet, row: NDArray[np.int64], u: NDArray[np.float64]) -> NDArray[np.float64]:
    """Instantaneous speed (m/s), linear between the 1 Hz samples."""
    length = routes.length_s
    base = np.floor(u)
    frac = u - base
    k = base.astype(np.int64) % length
    v = routes.speed_mps
    return v[row, k] * (1.0 - frac) + v[row, (k + 1) % length] * frac
