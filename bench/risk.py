"""Risk-scoring throughput on one core: ``python -m bench.risk [--artifact DIR]`` -> bench/risk_report/scoring.json.

Measures, with OpenMP limited to one thread:

* ``RiskModelSet.predict_proba`` on a 100,000 x n_features matrix (rows/s; target ≥ 100k),
* ``RiskModelSet.top_features(k=3)`` (rows/s),
* building feature rows from twins with ``models.risk.features.feature_matrix`` (twins/s),
* the whole scoring of a batch of twins: features + probabilities + top features (twins/s),
* the training replay (``models.risk.replay``, one process): µs per telemetry reading.

The matrix rows are real feature rows (a replayed synthetic history), resampled to 100k.
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
from models.risk.dataset import dataset_paths, iter_lines, read_fleet, read_maintenance, read_weather, telemetry_parts
from models.risk.features import feature_matrix
from models.risk.labels import EventIndex
from models.risk.replay import replay
from models.risk.synthetic import write_synthetic_history
from twins.join import note_residency
from twins.reading import decode_reading
from twins.twin import merge_into, new_twin

OUT = Path(__file__).resolve().parent / "risk_report"


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
    twins: dict[str, Any] = {}
    for line in iter_lines(telemetry_parts(p["telemetry"])):
        r = decode_reading(line)
        t = twins.get(r.vin)
        if t is None:
            t = twins[r.vin] = new_twin(r.vin)
        merge_into(t, [r])
        note_residency(t, r.ts, r.ts, 4, fleet[r.vin].home_cell())
    ts = list(twins.values())[:limit]
    return ts, read_weather(p["weather"]).lookup, [fleet[t.vin].in_service_ms for t in ts]


def run(artifact: str | None, rows: int = 100_000, repeat: int = 3) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-risk-"))
    data = tmp / "data"
    write_synthetic_history(data, vehicles=60, days=45, seed=11)
    if artifact is None:
        from models.risk import train

        art = tmp / "model"
        with threadpool_limits(1):
            train.main(["--telemetry", str(data / "telemetry"), "--maintenance", str(data / "maintenance.csv"),
                        "--fleet", str(data / "fleet.csv"), "--weather", str(data / "weather.jsonl.gz"),
                        "--out", str(art), "--horizon-days", "20", "--workers", "1"])
        artifact = str(art)
    rs = load_model_set(artifact)
    p = dataset_paths(data)
    snap = replay(p["telemetry"], read_weather(p["weather"]), read_fleet(p["fleet"]),
                  EventIndex(read_maintenance(p["maintenance"])), workers=1)
    twins, lookup, services = _twins(data, 60)
    idx = EventIndex(read_maintenance(dataset_paths(data)["maintenance"]))
    now = max(t.last_seen for t in twins) + 1
    ages = [idx.component_ages_days(t.vin, now) for t in twins]
    with threadpool_limits(1):
        t_feat = _best_of(lambda: feature_matrix(twins, lookup, now_ms=now, in_service_ms=services,
                                                 component_ages_days=ages), repeat)
        base = feature_matrix(twins, lookup, now_ms=now, in_service_ms=services, component_ages_days=ages)
        rng = np.random.default_rng(0)
        X = base[rng.integers(0, len(base), rows)]
        X = X * rng.normal(1.0, 0.02, X.shape)          # resampled real rows, jittered
        rs.predict_proba(X[:1000])                        # warm-up
        t_pred = _best_of(lambda: rs.predict_proba(X), repeat)
        n_top = min(rows, 20_000)
        t_top = _best_of(lambda: rs.top_features(X[:n_top], k=3), 1)
        t_all = _best_of(lambda: (lambda Xt: (rs.predict_proba(Xt), rs.top_features(Xt, k=3)))(
            feature_matrix(twins, lookup, now_ms=now, in_service_ms=services, component_ages_days=ages)), repeat)
    n_trees = {c: int(getattr(m.estimator_, "n_iter_", 0)) for c, m in rs.models.items()}
    return {
        "artifact_version": rs.version, "components": list(rs.components), "n_features": len(rs.feature_names),
        "trees_per_component": n_trees, "rows": rows, "threads": 1,
        "predict_proba_s": t_pred, "rows_per_s": rows / t_pred,
        "top_features_rows_per_s": n_top / t_top,
        "feature_matrix_twins_per_s": len(twins) / t_feat,
        "end_to_end_twins_per_s": len(twins) / t_all,
        "replay_us_per_reading_cpu": snap.stats["us_per_reading_cpu"],
        "replay_readings": snap.stats["readings"], "replay_rows": snap.stats["rows"],
        "note": "end to end = feature_matrix + predict_proba + top_features(k=3) for a batch of twins; "
                "the feature rows (history features + 30-day weather join per twin) dominate",
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.risk", description=__doc__.split("\n\n")[0])
    ap.add_argument("--artifact", default=None)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--out", default=str(OUT))
    a = ap.parse_args()
    res = run(a.artifact, a.rows)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scoring.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
