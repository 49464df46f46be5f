"""Throughput smoke test (no timing assertion: CI machines vary).

Measured on the development container (2 vCPUs, Python 3.11, numpy 2.4), dt = 1 s,
600 steps after warm-up, fleet started Tuesday 2026-01-06:
  *   200 vehicles: ~1.6-1.7 ms/step -> ~117,000-126,000 messages/s
  * 2,000 vehicles: ~4.6-6.0 ms/step -> ~330,000 messages/s mid-morning (most driving),
                    ~435,000 messages/s at night (parked/charging)
  * 5,000 vehicles at dt = 60 s: ~10 ms/step (about 1.5 h of CPU for a simulated year)
About half of a large step is building the per-vehicle message dicts.

History writer (``models.simulation.history``, 5,000 vehicles x 365 days at dt = 3600 s,
8,760 steps, 43.8 M lines, 1.8 GB of gzip parts): ~7.3 min of CPU (physics incl. component
wear ~17 ms/step, message dicts ~15-20 ms, JSON ~5 ms, gzip ~8 ms), peak RSS ~125 MB. A
column-wise JSON fast path (numpy fragments, byte-identical output) was tried and was not
faster in pure Python + numpy: float formatting and fragment joining cost as much as the dicts.
"""

from __future__ import annotations

from models.simulation import FleetSimulator

START = 1_767_711_600_000  # 2026-01-06T15:00:00Z, mid-morning in the US East regions


def test_two_thousand_vehicles_step_in_one_batch() -> None:
    sim = FleetSimulator(2000, seed=0, start_ms=START)
    total = 0
    for _ in range(20):
        batch = sim.step(1.0)
        assert len(batch) == 2000
        total += sum(len(m["signals"]) for m in batch)
    assert total > 2000 * 20 * 0.5       # a good share of the fleet is on the road and reporting
