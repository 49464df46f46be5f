"""Benchmark: µs per ``update_history`` on realistic simulator telemetry, and the encoded state size.

Run from the repo root: ``.venv/bin/python -m tests.twins.history.bench_history [vehicles] [hours]``.
Simulates a small fleet at 1 Hz, merges every message into its twin (as the
ingest path does) and times only the ``update_history`` calls.
"""

from __future__ import annotations

import sys
import time

from models.simulation.fleet import FleetSimulator
from twins.history import HistoryState, encode_history, features, update_history
from twins.reading import reading_from_dict
from twins.twin import merge_into, new_twin


def collect(n_vehicles: int, hours: float, seed: int = 7) -> list[tuple[int, int, list]]:
    """(vehicle index, ts_ms, merged values snapshot) per reading, in arrival order."""
    sim = FleetSimulator(n_vehicles, seed=seed)
    twins = [new_twin(v) for v in sim.vins]
    out: list[tuple[int, int, list]] = []
    for batch in sim.run(hours * 3600.0, rate_hz=1.0):
        for i, msg in enumerate(batch):
            r = reading_from_dict(msg)
            merge_into(twins[i], (r,))
            out.append((i, r.ts, list(twins[i].values)))
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    hours = float(sys.argv[2]) if len(sys.argv) > 2 else 12.0
    t0 = time.perf_counter()
    seq = collect(n, hours)
    print(f"simulated {len(seq)} readings ({n} vehicles x {hours} h) in {time.perf_counter() - t0:.1f} s")
    best = float("inf")
    states: list[HistoryState] = []
    for _ in range(5):
        states = [HistoryState() for _ in range(n)]
        upd = update_history
        t0 = time.perf_counter()
        for i, ts, values in seq:
            upd(states[i], ts, values)
        best = min(best, time.perf_counter() - t0)
    print(f"update_history: {best / len(seq) * 1e6:.2f} µs/update (best of 5)")
    sizes = sorted(len(encode_history(s)) for s in states)
    print(f"encoded size: min {sizes[0]} B, median {sizes[len(sizes) // 2]} B, max {sizes[-1]} B")
    t0 = time.perf_counter()
    for s in states:
        features(s)
    print(f"features(): {(time.perf_counter() - t0) / len(states) * 1e6:.0f} µs/call")
    f = max((features(s) for s in states), key=lambda x: x["usage_distance_km"])
    print("busiest vehicle:")
    for k in ("inv_cycles_total", "inv_damage_cips08", "batt_ah_throughput", "batt_efc", "usage_distance_km",
              "lv_wakes", "lv_wake_min_v", "batt_arrhenius_mean_factor", "daily_km_7d"):
        print(f"  {k} = {f[k]:.6g}")


if __name__ == "__main__":
    main()
