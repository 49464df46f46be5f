"""Replay a telemetry history through the stream's twin code into one feature row per vehicle-day.

Every line is decoded with ``twins.reading.decode_reading`` (invalid lines are counted
and skipped, as the stream dead-letters them) and merged with ``twins.twin.merge_into``.
Where the vehicle was is recorded with the calls ``twins.join.note_residency`` makes —
``cell_of`` (geohash of the last fix, else the home cell) and
``twins.residency.note_location`` at the first and last reading — once per *run* of
consecutive readings in the same cell instead of once per reading. Because
same-cell intervals merge, the residency list is the same as with a call per reading
(a test checks this row for row); it saves ~10 µs per reading.

When a vehicle's first reading of a later UTC day arrives, the finished day is
snapshotted (``models.risk.features.FeatureRows``, the builder behind ``feature_matrix``) at
``now_ms`` = the day's end (midnight UTC), with the vehicle's in-service date from ``fleet.csv`` and
component ages from the maintenance log up to that instant. The last day of every
vehicle is snapshotted at the end of the data. Days without telemetry give no row.
The weather exposure of identical residency lists (e.g. vehicles that never leave
their home cell) is computed once (``ExposureCache``): the weather is fixed during a replay.

Vehicles are independent, so ``workers`` processes each replay the VINs of one
hash partition (each reads all parts; the decode cost is only paid for its own VINs).

>>> # python -m models.risk.replay DIR [WORKERS]   prints µs/reading for a dataset directory
"""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import signal
import sys
import tempfile
import time
import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.risk.dataset import FlatLookup, Vehicle, WeatherStore, iter_lines, telemetry_parts
from models.risk.features import ExposureCache, FeatureRows
from models.risk.feature_names import N_FEATURES
from models.risk.labels import EventIndex
from twins.errors import InvalidReading
from twins.join import cell_of
from twins.reading import decode_reading
from twins.residency import note_location
from twins.signals import SLOT
from twins.twin import Twin, merge_into, new_twin

DAY_MS = 86_400_000
_VIN_RE = re.compile(rb'"vin"\s*:\s*"([^"]*)"')
_LAT = SLOT["Vehicle.CurrentLocation.Latitude"]
_LON = SLOT["Vehicle.CurrentLocation.Longitude"]


@dataclass
class Snapshots:
    """Feature rows, one per vehicle and UTC day with telemetry, sorted by (vin, day)."""

    vins: NDArray[np.str_]
    day: NDArray[np.int64]          # days since epoch (UTC)
    now_ms: NDArray[np.int64]       # snapshot time: end of that day
    X: NDArray[np.float32]          # (rows, N_FEATURES)
    first_ts: dict[str, int] = field(default_factory=dict)   # per vehicle, first telemetry time
    last_ts: dict[str, int] = field(default_factory=dict)    # per vehicle, last telemetry time
    stats: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.day)

    def select(self, mask: NDArray[np.bool_]) -> "Snapshots":
        """The rows where ``mask`` is true (and the per-vehicle times of their vehicles)."""
        vins = self.vins[mask]
        keep = set(np.unique(vins).tolist())
        return Snapshots(vins, self.day[mask], self.now_ms[mask], self.X[mask],
                         {v: t for v, t in self.first_ts.items() if v in keep},
                         {v: t for v, t in self.last_ts.items() if v in keep}, self.stats)


class _Vehicle:
    __slots__ = ("twin", "day", "home_cell", "in_service_ms", "lat", "lon", "cell", "run_cell", "run_min",
                 "run_max")

    def __init__(self, vin: str, home_cell: str, in_service_ms: int | None) -> None:
        self.twin: Twin = new_twin(vin)
        self.day = -1
        self.lat: Any = 0.5       # never a real fix value object: forces the first cell_of
        self.lon: Any = None
        self.cell = ""
        self.run_cell = ""        # "" = no open run
        self.run_min = self.run_max = 0
        self.home_cell = home_cell
        self.in_service_ms = in_service_ms


@dataclass
class _Job:
    parts: list[Path]
    lookup: FlatLookup
    fleet: Mapping[str, Vehicle]
    events: EventIndex
    vins: Collection[str] | None
    precision: int
    default_home_cell: str
    n_partitions: int
    out_dir: str
    progress_every: int = 0
    chunk: tuple[int, int] | None = None


_JOB: _Job | None = None   # set before forking workers (inherited, not pickled)


def _close_run(v: _Vehicle) -> None:
    """What ``note_residency(twin, first, last, ...)`` does, for the run of readings in ``run_cell``."""
    if v.run_cell:
        res = v.twin.residency
        note_location(res, v.run_min, v.run_cell)
        if v.run_max != v.run_min:
            note_location(res, v.run_max, v.run_cell)
        v.run_cell = ""


class _Rows:
    """Feature rows of one partition in snapshot order, computed column-wise every ``CHUNK`` snapshots."""

    CHUNK = 8192

    def __init__(self, job: _Job) -> None:
        self.job = job
        self.weather = ExposureCache(job.lookup)       # the weather is fixed during a replay
        self.pending = FeatureRows(self.weather)
        self.blocks: list[NDArray[np.float32]] = []
        self.vins: list[str] = []
        self.days: list[int] = []

    def snapshot(self, v: _Vehicle) -> None:
        now = (v.day + 1) * DAY_MS
        twin = v.twin
        self.pending.add((twin,), (now,), (v.in_service_ms,), (self.job.events.component_ages_days(twin.vin, now),))
        self.vins.append(twin.vin)
        self.days.append(v.day)
        if len(self.pending) >= self.CHUNK:
            self.flush()

    def flush(self) -> None:
        if len(self.pending):
            self.blocks.append(self.pending.matrix(np.float32))
            self.pending = FeatureRows(self.weather)

    def matrix(self) -> NDArray[np.float32]:
        self.flush()
        return np.concatenate(self.blocks) if self.blocks else np.zeros((0, N_FEATURES), np.float32)


def _replay_partition(part: int) -> str:
    job = _JOB
    assert job is not None
    states: dict[bytes, _Vehicle] = {}
    rows = _Rows(job)
    skip: set[bytes] = set()
    wanted = None if job.vins is None else set(job.vins)
    n_read = n_invalid = n_applied = 0
    precision, default_cell, n_parts, chunk = job.precision, job.default_home_cell, job.n_partitions, job.chunk
    t0 = time.process_time()
    every, n_lines = job.progress_every, 0
    for line in iter_lines(job.parts):
        if every:
            n_lines += 1
            if n_lines % every == 0:
                print(f"[replay {part}/{n_parts}] {n_lines:,} lines, {n_read:,} own readings, "
                      f"{time.process_time() - t0:.0f} s cpu", file=sys.stderr, flush=True)
        m = _VIN_RE.search(line)
        if m is None:
            if part == 0:
                n_invalid += 1
            continue
        vb = m.group(1)
        v = states.get(vb)
        if v is None:
            if vb in skip:
                continue
            vin = vb.decode("utf-8", "replace")
            if zlib.crc32(vb) % n_parts != part or (wanted is not None and vin not in wanted) or (
                    chunk is not None and zlib.adler32(vb) % chunk[1] != chunk[0]):
                skip.add(vb)
                continue
            info = job.fleet.get(vin)
            v = states[vb] = _Vehicle(vin, info.home_cell(precision, default_cell) if info else default_cell,
                                      info.in_service_ms if info else None)
        n_read += 1
        try:
            r = decode_reading(line)
        except InvalidReading:
            n_invalid += 1
            continue
        ts = r.ts
        day = ts // DAY_MS
        if day > v.day:
            if v.day >= 0:
                _close_run(v)
                rows.snapshot(v)
            v.day = day
        twin = v.twin
        merge_into(twin, (r,))
        values = twin.values
        lat, lon = values[_LAT], values[_LON]
        if lat != v.lat or lon != v.lon:
            v.lat, v.lon = lat, lon
            v.cell = cell_of(twin, precision, v.home_cell)
        if v.cell != v.run_cell:
            _close_run(v)
            v.run_cell, v.run_min, v.run_max = v.cell, ts, ts
        elif ts > v.run_max:
            v.run_max = ts
        elif ts < v.run_min:
            v.run_min = ts
        n_applied += 1
    t_merge = time.process_time() - t0
    for v in states.values():
        _close_run(v)
        if v.day >= 0:
            rows.snapshot(v)
    X = rows.matrix()
    t_total = time.process_time() - t0
    first, last = {}, {}
    for v in states.values():
        first[v.twin.vin], last[v.twin.vin] = v.twin.first_seen, v.twin.last_seen
    out = Path(job.out_dir) / f"part-{part}.npz"
    np.savez(out, vins=np.array(rows.vins, dtype="U32"), days=np.array(rows.days, dtype=np.int64), X=X,
             first_v=np.array(list(first), dtype="U32"), first_t=np.array(list(first.values()), dtype=np.int64),
             last_t=np.array([last[k] for k in first], dtype=np.int64),
             stats=np.array([n_read, n_invalid, n_applied, len(X), t_merge, t_total], dtype=np.float64))
    return str(out)


def _default_signals() -> None:
    """Pool workers die on SIGTERM, whatever handler the forking process had installed (a worker that
    only set a flag would never exit, and the pool's terminate would wait for it forever)."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)


def replay(telemetry: str | Path, weather: WeatherStore, fleet: Mapping[str, Vehicle], events: EventIndex, *,
           vins: Collection[str] | None = None, workers: int | None = None, precision: int = 4,
           default_home_cell: str = "dhwf", scratch_dir: str | Path | None = None,
           progress_every: int = 0, chunk: tuple[int, int] | None = None) -> Snapshots:
    """Replay ``telemetry`` (a ``part-*.jsonl.gz`` directory or one file) into daily :class:`Snapshots`.

    ``vins`` restricts the replay to those vehicles; ``workers`` defaults to the CPU count;
    ``scratch_dir`` holds the workers' partial results (default: the system temp dir);
    ``progress_every`` > 0 prints a progress line to stderr every that many lines;
    ``chunk=(k, K)`` replays only the VINs with ``adler32(vin) % K == k`` (resumable pieces).
    """
    global _JOB
    parts = telemetry_parts(telemetry)
    n = max(1, workers or os.cpu_count() or 1)
    started = time.perf_counter()
    if scratch_dir is not None:
        Path(scratch_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="risk-replay-", dir=scratch_dir) as tmp:
        _JOB = _Job(parts, weather.fast_lookup(), fleet, events, vins, precision, default_home_cell, n, tmp,
                    progress_every, chunk)
        try:
            if n == 1:
                paths = [_replay_partition(0)]
            else:
                with mp.get_context("fork").Pool(n, initializer=_default_signals) as pool:
                    paths = pool.map(_replay_partition, range(n), chunksize=1)
        finally:
            _JOB = None
        loaded = [dict(np.load(p)) for p in paths]
    wall = time.perf_counter() - started
    vins_arr = np.concatenate([d["vins"] for d in loaded])
    days = np.concatenate([d["days"] for d in loaded])
    X = np.concatenate([d["X"] for d in loaded]) if loaded else np.zeros((0, N_FEATURES), np.float32)
    order = np.lexsort((days, vins_arr))
    first = {str(v): int(t) for d in loaded for v, t in zip(d["first_v"], d["first_t"])}
    last = {str(v): int(t) for d in loaded for v, t in zip(d["first_v"], d["last_t"])}
    s = np.sum([d["stats"] for d in loaded], axis=0)
    n_read, n_invalid, n_applied, n_rows, t_merge, t_total = s.tolist()
    stats = {
        "workers": n, "readings": int(n_read), "invalid": int(n_invalid), "applied": int(n_applied),
        "rows": int(n_rows), "vehicles": len(first), "wall_s": wall,
        "cpu_s_merge": t_merge, "cpu_s_total": t_total,
        "us_per_reading_cpu": t_total / max(n_read, 1) * 1e6,
        "us_per_reading_wall": wall / max(n_read, 1) * 1e6,
    }
    return Snapshots(vins_arr[order], days[order], (days[order] + 1) * DAY_MS, X[order], first, last, stats)


def concat_snapshots(parts: list[Snapshots]) -> Snapshots:
    """Snapshots of disjoint vehicle sets as one, sorted by (vin, day); replay statistics summed."""
    vins = np.concatenate([p.vins for p in parts])
    day = np.concatenate([p.day for p in parts])
    order = np.lexsort((day, vins))
    X = np.concatenate([p.X for p in parts])[order]
    stats: dict[str, Any] = {}
    for p in parts:
        for k, v in p.stats.items():
            summable = isinstance(v, (int, float)) and not k.startswith("us_") and k != "workers"
            stats[k] = stats.get(k, 0) + v if summable else v
    stats["pieces"] = len(parts)
    if stats.get("readings"):
        stats["us_per_reading_cpu"] = stats["cpu_s_total"] / stats["readings"] * 1e6
        stats["us_per_reading_wall"] = stats["wall_s"] / stats["readings"] * 1e6
    return Snapshots(vins[order], day[order], (day[order] + 1) * DAY_MS, X,
                     {k: v for p in parts for k, v in p.first_ts.items()},
                     {k: v for p in parts for k, v in p.last_ts.items()}, stats)


def save_snapshots(snap: Snapshots, path: str | Path) -> None:
    """Write snapshots to one ``.npz`` file (a replay cache)."""
    vins = np.array(list(snap.first_ts), dtype="U32")
    np.savez(path, vins=snap.vins, day=snap.day, X=snap.X, per_vin=vins,
             first=np.array([snap.first_ts[v] for v in vins.tolist()], dtype=np.int64),
             last=np.array([snap.last_ts[v] for v in vins.tolist()], dtype=np.int64),
             stats=np.array(repr(snap.stats)))


def load_snapshots(path: str | Path) -> Snapshots:
    """Inverse of :func:`save_snapshots`."""
    import ast

    d = np.load(path)
    if d["X"].shape[1] != N_FEATURES:
        raise ValueError(f"{path}: {d['X'].shape[1]} features, this code has {N_FEATURES}; delete the cache")
    per_vin = d["per_vin"].tolist()
    return Snapshots(d["vins"], d["day"], (d["day"] + 1) * DAY_MS, d["X"],
                     dict(zip(per_vin, d["first"].tolist())), dict(zip(per_vin, d["last"].tolist())),
                     ast.literal_eval(str(d["stats"])))


def main(argv: list[str] | None = None) -> None:
    """``python -m models.risk.replay DIR [WORKERS]``: replay a dataset and print the timing."""
    from models.risk.dataset import dataset_paths, read_fleet, read_maintenance, read_weather

    args = argv if argv is not None else sys.argv[1:]
    paths = dataset_paths(args[0])
    snaps = replay(paths["telemetry"], read_weather(paths["weather"]), read_fleet(paths["fleet"]),
                   EventIndex(read_maintenance(paths["maintenance"])), workers=int(args[1]) if len(args) > 1 else None)
    print({k: round(v, 3) if isinstance(v, float) else v for k, v in snaps.stats.items()})


if __name__ == "__main__":
    main()
