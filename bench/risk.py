"""Risk-scoring throughput on one core: ``python -m bench.risk [--artifact DIR]`` -> bench/risk_report/scoring.json.

Measures, with OpenMP limited to one thread:

* ``RiskModelSet.predict_proba`` on a 100,000 x n_features matrix (rows/s),
* ``RiskModelSet.explain(k=3)``: probabilities + top-3 features per component as arrays (rows/s), and
  with the ``RiskState`` each twin stores built from them (``models.risk.scoring.risk_states``),
* building feature rows from twins with ``models.risk.features.feature_matrix`` (twins/s),
* **end to end**, a batch of ``--batch`` twins (default 4,000 = the stream's ``risk_batch_max``)
  scored as the stream scores them, twins scored per second on one core:

  - *stored twins* (the stream keeps a flushed twin as its record): every record decoded
    (``decode_twin``), scored as a twin, and encoded again with its new ``RiskState`` (as the next
    flush writes it) — records in, records out;
  - *twin objects* (twins with changes not flushed yet): ``models.risk.scoring.score_twins`` —
    feature rows, probabilities, top features and the ``RiskState`` of every twin;

  both with the weather days of the exposure features kept across batches and their version
  checked as the stream's scorer does, in a process set up as the worker's (``streams.twin_flush.tune_gc``,
  ``keep_large_buffers_out_of_heap``), each batch's new records replacing the last batch's as in the
  worker's table,
* the training replay (``models.risk.replay``, one process): µs per telemetry reading,
* stored twins read per second in full (``decode_twin``) and as briefs (``twins.brief``, what fleet
  listings and the staleness sweep read), side by side.

The twins are built with the stream's calls from a synthetic history (200 vehicles x 60 days,
hourly) at its end and copied to the batch size, each copy a distinct vehicle with a distinct
residency list (its first stay starts one hour earlier per copy); the matrix rows are their
feature rows, resampled and jittered.
Without ``--artifact`` a model set is trained on a small synthetic history first.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from models.risk.artifact import load_model_set
from models.risk.dataset import dataset_paths, read_fleet, read_maintenance, read_weather
from models.risk.exposure import ExposureCache
from models.risk.features import feature_matrix
from models.risk.labels import EventIndex
from models.risk.replay import replay
from models.risk.scoring import risk_states, score_twins, warm_up
from models.risk.synthetic import stream_twins, write_synthetic_history
from streams.twin_flush import keep_large_buffers_out_of_heap, tune_gc
from twins.brief import decode_brief
from twins.twin import copy_twin, decode_twin, encode_twin
from twins.weather import day_key

OUT = Path(__file__).resolve().parent / "risk_report"


def _best_of_alternating(fns: dict[str, Any], repeat: int) -> dict[str, float]:
    """The best time of each function, called in turns (a drift of the machine's speed hits all alike)."""
    best = {name: float("inf") for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def _best_of(fn: Any, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _twins(data: Path, limit: int) -> tuple[list[Any], Any, list[int | None]]:
    """Twins of the synthetic history, built with the stream's calls."""
    p = dataset_paths(data)
    fleet = read_fleet(p["fleet"])
    ts = list(stream_twins(data)[0].values())[:limit]
    return ts, read_weather(p["weather"]).lookup, [fleet[t.vin].in_service_ms for t in ts]


def run(artifact: str | None, rows: int = 100_000, repeat: int = 5, batch: int = 4_000) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-risk-"))
    data = tmp / "data"
    write_synthetic_history(data, vehicles=200, days=60, seed=11)
    if artifact is None:
        from models.risk import train

        art = tmp / "model"
        with threadpool_limits(1):
            train.main(["--telemetry", str(data / "telemetry"), "--maintenance", str(data / "maintenance.csv"),
                        "--fleet", str(data / "fleet.csv"), "--weather", str(data / "weather.jsonl.gz"),
                        "--out", str(art), "--horizon-days", "20", "--workers", "1"])
        artifact = str(art)
    rs = load_model_set(artifact)
    tune_gc()                                             # the worker's process settings (streams.twin_flush)
    keep_large_buffers_out_of_heap()
    p = dataset_paths(data)
    snap = replay(p["telemetry"], read_weather(p["weather"]), read_fleet(p["fleet"]),
                  EventIndex(read_maintenance(p["maintenance"])), workers=1)
    base_twins, lookup, base_services = _twins(data, 10_000)
    twins = [copy_twin(base_twins[i % len(base_twins)]) for i in range(batch)]
    for i, t in enumerate(twins):
        t.vin = f"{t.vin[:12]}{i:05d}"                      # distinct vehicles
        if t.residency.starts:
            t.residency.starts[0] -= 1 + i // len(base_twins)   # and residency lists
    services = [base_services[i % len(base_twins)] for i in range(batch)]
    idx = EventIndex(read_maintenance(dataset_paths(data)["maintenance"]))
    now = max(t.last_seen for t in twins) + 1
    ages = [idx.component_ages_days(t.vin, now) for t in twins]
    ages = [a if a and any(v is not None for v in a.values()) else None for a in ages]   # as the stream passes them
    # as the stream's scorer: weather days kept across batches while the stored day record is unchanged
    stored_days: dict[bytes, bytes] = {}
    weather = ExposureCache(lookup, day_version=lambda cell, day: stored_days.get(day_key(cell, day).encode()))
    with threadpool_limits(1):
        def features() -> Any:
            return feature_matrix(twins, weather, now_ms=now, in_service_ms=services, component_ages_days=ages)

        features()                                        # the weather days of the batch are looked up
        t_feat = _best_of(features, repeat)
        base = features()
        rng = np.random.default_rng(0)
        X = base[rng.integers(0, len(base), rows)]
        X = X * rng.normal(1.0, 0.02, X.shape)          # resampled real rows, jittered
        rs.predict_proba(X[:1000])                        # warm-up (and the tree walk's compilation)
        rs.explain(X[:1000], k=3)

        def end_to_end() -> Any:
            return score_twins(rs, twins, weather, now_ms=now, in_service_ms=services, component_ages_days=ages)

        records = [encode_twin(t) for t in twins]        # as the stream stores them
        warm_up(rs)

        stored: list[Any] = [None]

        def from_records() -> Any:
            # as the stream's scorer: decoded, scored as twins, and encoded by the next flush; the new records
            # replace the last batch's, as in the worker's table (the old ones are freed after)
            decoded = [decode_twin(r) for r in records]
            for twin, state in zip(decoded, score_twins(rs, decoded, weather, now_ms=now, in_service_ms=services,
                                                        component_ages_days=ages)):
                twin.risk = state
            stored[0] = [encode_twin(t) for t in decoded]
            return stored[0]

        def states(X: Any) -> Any:
            return risk_states(rs, *rs.explain(X, k=3), now)

        t_pred = _best_of(lambda: rs.predict_proba(X), repeat)
        t_score = _best_of(lambda: states(X), repeat)
        both = _best_of_alternating({"objects": end_to_end, "records": from_records}, 2 * repeat - 1)
        t_all, t_records = both["objects"], both["records"]
        t_arrays = _best_of(lambda: rs.explain(features(), k=3), repeat)
        reads = _best_of_alternating({"full": lambda: [decode_twin(r) for r in records],
                                      "brief": lambda: [decode_brief(r) for r in records]}, repeat)
    n_trees = {c: int(getattr(m.estimator_, "n_iter_", 0)) for c, m in rs.models.items()}
    return {
        "artifact_version": rs.version, "components": list(rs.components), "n_features": len(rs.feature_names),
        "trees_per_component": n_trees, "rows": rows, "threads": 1,
        "batch_twins": batch, "distinct_twins": len(base_twins),
        "predict_proba_s": t_pred, "rows_per_s": rows / t_pred,
        "score_rows_per_s": rows / t_score,
        "explain_rows_per_s": rows / _best_of(lambda: rs.explain(X, k=3), repeat),
        "feature_matrix_twins_per_s": len(twins) / t_feat,
        "end_to_end_twins_per_s": len(twins) / t_records,
        "end_to_end_objects_twins_per_s": len(twins) / t_all,
        "end_to_end_arrays_twins_per_s": len(twins) / t_arrays,
        "record_bytes_mean": sum(map(len, records)) / len(records),
        "decode_full_twins_per_s": len(records) / reads["full"],
        "decode_brief_twins_per_s": len(records) / reads["brief"],
        "replay_us_per_reading_cpu": snap.stats["us_per_reading_cpu"],
        "replay_readings": snap.stats["readings"], "replay_rows": snap.stats["rows"],
        "note": "end_to_end_twins_per_s = stored twins scored per second end to end, one core: their records "
                "decoded (decode_twin), feature rows, probabilities, top features, and each twin encoded again "
                "with its new RiskState (records in, records out, as the stream's scorer and the next flush do "
                "for flushed twins) on a batch of batch_twins twins (distinct "
                "residency lists), best of 9 called in turns with the object path (best of 5 for the other figures), weather days already looked up; "
                "*_objects_* = the same from twin objects (models.risk.scoring.score_twins: the stream's "
                "path for twins with unflushed changes), the RiskStates as objects; "
                "*_arrays_* = feature_matrix + RiskModelSet.explain (top features as index/value arrays, no RiskState); "
                "score_rows_per_s = RiskModelSet.explain + the RiskStates on a ready feature matrix",
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.risk", description=__doc__.split("\n\n")[0])
    ap.add_argument("--artifact", default=None)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=4_000, help="twins per scoring batch (the stream's risk_batch_max)")
    ap.add_argument("--out", default=str(OUT))
    a = ap.parse_args()
    res = run(a.artifact, a.rows, batch=a.batch)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scoring.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
