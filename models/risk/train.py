"""Train the per-component risk models from a history dataset and write a versioned artifact.

    fleet train --telemetry DIR/telemetry --maintenance DIR/maintenance.csv --out ARTIFACT_DIR \\
        [--fleet DIR/fleet.csv] [--weather DIR/weather.jsonl.gz] [--horizon-days 30]
    (the same as python -m models.risk.train ...)

Steps: replay the telemetry through the twin code into daily feature rows
(``models.risk.replay``), label them per component (``models.risk.labels``: failure
within the horizon, censoring, down time, age reset at replacement), split by vehicle
and time (``models.risk.split``), fit one ``ComponentRiskModel`` per component on the
training rows of vehicles A, calibrate it on their later window, fit the age+mileage
baseline the same way, score the held-out vehicles B, and save the artifact
(``models.risk.artifact``) with the metrics in its metadata.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from datetime import datetime, timezone
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from models.risk.alerts import CostModel, bayes_threshold, choose_alerts, choose_threshold, score_alerts
from models.risk.artifact import save_model_set
from models.risk.dataset import MaintenanceEvent, Vehicle, WeatherStore, read_fleet, read_maintenance, read_weather
from models.risk.feature_names import BASELINE_FEATURES, COMPONENTS, FEATURE_NAMES, FEATURE_SETS
from models.risk.labels import EventIndex, Labels, make_labels
from models.risk.metrics import probability_metrics
from models.risk.model import ComponentRiskModel
from models.risk.replay import Snapshots, concat_snapshots, load_snapshots, replay, save_snapshots
from models.risk.split import CALIB, EVAL, TRAIN, Split, make_split

DEFAULT_BUDGET = 5.0   # alerts per 1,000 vehicles per week


@dataclass
class Inputs:
    """A dataset read into memory (telemetry stays on disk: it is streamed)."""

    telemetry: Path
    events: list[MaintenanceEvent]
    index: EventIndex
    fleet: dict[str, Vehicle]
    weather: WeatherStore
    signature: str


def _stat(p: Path) -> str:
    st = p.stat()
    return f"{p.name}:{st.st_size}:{int(st.st_mtime)}"


def load_inputs(telemetry: str | Path, maintenance: str | Path, fleet: str | Path | None,
                weather: str | Path | None) -> Inputs:
    """Read the maintenance log, fleet list and weather; fingerprint the files for the replay cache.

    Without a fleet list the in-service dates are unknown (vehicle and component ages NaN until a
    repair is logged); without weather the exposure features are 0.
    """
    tel = Path(telemetry)
    events = read_maintenance(maintenance)
    files = sorted(tel.glob("*.jsonl*")) if tel.is_dir() else [tel]
    files += [Path(maintenance)] + ([Path(fleet)] if fleet is not None else [])
    files += [Path(weather)] if weather and Path(weather).exists() else []
    sig = hashlib.sha256(("|".join(_stat(f) for f in files) + "|" + ",".join(FEATURE_NAMES)).encode()).hexdigest()
    return Inputs(tel, events, EventIndex(events), read_fleet(fleet) if fleet is not None else {},
                  read_weather(weather), sig[:16])


def build_snapshots(inputs: Inputs, *, vins: Collection[str] | None = None, workers: int | None = None,
                    cache_dir: str | Path | None = None, progress_every: int = 0, chunks: int = 1) -> Snapshots:
    """Replay (or load from ``cache_dir``) the daily feature rows; a cached full replay serves any ``vins``.

    ``chunks`` > 1 (with a ``cache_dir``) replays the vehicles in that many VIN-hash pieces, each cached
    as it finishes, so an interrupted replay resumes where it stopped (each piece reads all the parts).
    """

    def cache_path(which: Collection[str] | None, piece: str = "") -> Path:
        tag = sorted(which) if which is not None else "*"
        key = hashlib.sha256(f"{inputs.signature}|{tag}|replay-v2{piece}".encode()).hexdigest()[:16]
        return Path(cache_dir) / f"snapshots-{key}{'-' + piece if piece else ''}.npz"  # type: ignore[arg-type]

    if cache_dir is not None and chunks > 1 and not cache_path(vins).exists() and not cache_path(None).exists():
        pieces = []
        for k in range(chunks):
            path = cache_path(vins, f"chunk{k}of{chunks}")
            if not path.exists():
                piece = replay(inputs.telemetry, inputs.weather, inputs.fleet, inputs.index, vins=vins,
                               workers=workers, scratch_dir=cache_dir, progress_every=progress_every,
                               chunk=(k, chunks))
                save_snapshots(piece, path)
            pieces.append(load_snapshots(path))
        snap = concat_snapshots(pieces)
        save_snapshots(snap, cache_path(vins))
        for k in range(chunks):
            cache_path(vins, f"chunk{k}of{chunks}").unlink()
        return snap

    if cache_dir is not None:
        full = cache_path(None)
        if full.exists():
            snap = load_snapshots(full)
            return snap if vins is None else snap.select(np.isin(snap.vins, sorted(vins)))
        if vins is not None and cache_path(vins).exists():
            return load_snapshots(cache_path(vins))
    snap = replay(inputs.telemetry, inputs.weather, inputs.fleet, inputs.index, vins=vins, workers=workers,
                  scratch_dir=cache_dir, progress_every=progress_every)
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        save_snapshots(snap, cache_path(vins))
    return snap


def data_window(snap: Snapshots) -> tuple[int, int]:
    """(first, last) telemetry time over all vehicles."""
    return min(snap.first_ts.values()), max(snap.last_ts.values())


def component_labels(snap: Snapshots, index: EventIndex, component: str, horizon_days: float) -> Labels:
    """Labels of every snapshot row for one component (censored at each vehicle's last telemetry)."""
    return make_labels(snap.vins, snap.now_ms, index, component, horizon_days, end_ms=snap.last_ts)


def fit_component(snap: Snapshots, lab: Labels, roles: np.ndarray, use_features: Sequence[str] | None,
                  params: dict[str, Any]) -> ComponentRiskModel:
    """Fit on TRAIN rows, calibrate on CALIB rows (both grouped by VIN)."""
    tr, ca = roles == TRAIN, roles == CALIB
    model = ComponentRiskModel(feature_names=FEATURE_NAMES, use_features=use_features, **params)
    model.fit(snap.X[tr], lab.y[tr], groups=snap.vins[tr])
    if ca.any():
        model.calibrate(snap.X[ca], lab.y[ca], groups=snap.vins[ca])
    return model


def alert_outcome(snap: Snapshots, mask: np.ndarray, risk: np.ndarray, failures: list[tuple[str, int]],
                  horizon_days: float, budget: float, cost: CostModel, tiebreak: np.ndarray | None = None
                  ) -> dict[str, Any]:
    """Cost and precision/recall of the top-k policy on the rows ``mask``."""
    alert = choose_alerts(snap.vins[mask], snap.day[mask], risk, budget, cooldown_days=horizon_days,
                          tiebreak=tiebreak)
    out = score_alerts(snap.vins[mask], snap.now_ms[mask], alert, failures, horizon_days, cost)
    return out.to_json()


def train(inputs: Inputs, out_dir: str | Path, *, horizon_days: float = 30.0, eval_fraction: float = 0.4,
          train_fraction: float = 0.6, workers: int | None = None, cache_dir: str | Path | None = None,
          components: Sequence[str] = COMPONENTS, params: dict[str, Any] | None = None,
          feature_set: str = "model", versioned: bool = False, progress_every: int = 0, chunks: int = 1,
          budget: float = DEFAULT_BUDGET, cost: CostModel | None = None, log: Any = print) -> Path:
    """The whole pipeline; returns the artifact directory."""
    cost = cost or CostModel()
    params = params or {}
    t0 = time.perf_counter()
    snap = build_snapshots(inputs, workers=workers, cache_dir=cache_dir, progress_every=progress_every,
                           chunks=chunks)
    log(f"replay: {len(snap)} rows, {len(snap.first_ts)} vehicles, {snap.stats} ({time.perf_counter() - t0:.1f} s)")
    start, end = data_window(snap)
    split = make_split(snap.first_ts, start, end, horizon_days=horizon_days, eval_fraction=eval_fraction,
                       train_fraction=train_fraction)
    use = FEATURE_SETS[feature_set]
    models, baselines, metrics = {}, {}, {}
    for comp in components:
        t1 = time.perf_counter()
        lab = component_labels(snap, inputs.index, comp, horizon_days)
        roles = split.roles(snap.vins, snap.now_ms, lab.usable)
        model = fit_component(snap, lab, roles, use, params)
        base = fit_component(snap, lab, roles, BASELINE_FEATURES, params)
        models[comp], baselines[comp] = model, base
        ev = roles == EVAL
        late = ev & (snap.now_ms > split.train_end_ms)
        fails = [f for f in inputs.index.failures(comp) if f[0] in split.eval_vins]
        rows = {name: int((roles == r).sum()) for name, r in (("train", TRAIN), ("calibration", CALIB), ("eval", EVAL))}
        pos = {name: int(lab.y[roles == r].sum()) for name, r in (("train", TRAIN), ("calibration", CALIB),
                                                                  ("eval", EVAL))}
        p_m = model.predict_proba(snap.X[ev])[:, 1]
        p_b = base.predict_proba(snap.X[ev])[:, 1]
        ca = roles == CALIB
        cal_fails = [f for f in inputs.index.failures(comp) if f[0] in split.train_vins]
        thresholds = {}
        for key, mdl in (("model", model), ("baseline", base)):
            t, grid = (choose_threshold(snap.vins[ca], snap.day[ca], snap.now_ms[ca], mdl.predict_proba(
                snap.X[ca])[:, 1], cal_fails, horizon_days, cost) if ca.any() else (bayes_threshold(cost), {}))
            thresholds[key] = {"threshold": t, "calibration_costs": grid}
        metrics[comp] = {
            "alert_thresholds": thresholds,
            "rows": rows, "positives": pos, "model": model.summary(), "baseline_model": base.summary(),
            "eval": probability_metrics(lab.y[ev], p_m),
            "eval_out_of_time": probability_metrics(lab.y[late], model.predict_proba(snap.X[late])[:, 1])
            if late.any() else None,
            "baseline_eval": probability_metrics(lab.y[ev], p_b),
            "alerts": alert_outcome(snap, ev, p_m, fails, horizon_days, budget, cost,
                                    model.decision_function(snap.X[ev])),
            "baseline_alerts": alert_outcome(snap, ev, p_b, fails, horizon_days, budget, cost,
                                             base.decision_function(snap.X[ev])),
        }
        m = metrics[comp]
        log(f"{comp}: rows {rows} positives {pos} | AUC {m['eval']['roc_auc']:.3f} vs baseline "
            f"{m['baseline_eval']['roc_auc']:.3f} | ECE {m['eval']['ece']:.4f} | cost {m['alerts']['cost']:.0f} vs "
            f"{m['baseline_alerts']['cost']:.0f} | {model.calibration_} | {time.perf_counter() - t1:.1f} s")
    meta = {
        "feature_names": list(FEATURE_NAMES), "components": list(components), "horizon_days": horizon_days,
        "label": f"failure of the component within (T, T + {horizon_days:g} d], T = end of the snapshot's UTC day",
        "training_window": {"data_start": _iso(start), "data_end": _iso(end), "train_end": _iso(split.train_end_ms),
                            "train_rows": "vehicles A, T + horizon <= train_end",
                            "calibration_rows": "vehicles A, T > train_end",
                            "evaluation_rows": "vehicles B (held out), all uncensored days"},
        "data": {"vehicles": len(snap.first_ts), "train_vehicles": len(split.train_vins),
                 "eval_vehicles": len(split.eval_vins), "rows": len(snap), "maintenance_events": len(inputs.events),
                 "replay": snap.stats, "dataset_signature": inputs.signature},
        "model_params": {**ComponentRiskModel().get_params(), **params, "feature_names": None},
        "feature_set": feature_set, "model_features": list(use),
        "baseline_features": list(BASELINE_FEATURES),
        "calibration": {c: models[c].calibration_ for c in components},
        "alert_policy": {"budget_per_1000_vehicles_per_week": budget, "cooldown_days": horizon_days,
                         "cost": cost.__dict__, "bayes_threshold": bayes_threshold(cost),
                         "thresholds": {c: {k: metrics[c]["alert_thresholds"][k]["threshold"]
                                            for k in ("model", "baseline")} for c in components}},
        "metrics": metrics,
    }
    path = save_model_set(out_dir, models, meta, baselines, split.to_json(), versioned=versioned)
    log(f"artifact: {path} ({time.perf_counter() - t0:.1f} s)")
    return path


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def main(argv: list[str] | None = None) -> Path:
    """CLI entry point."""
    ap = argparse.ArgumentParser(prog="python -m models.risk.train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--telemetry", required=True, help="directory of part-*.jsonl.gz (or one file)")
    ap.add_argument("--maintenance", required=True)
    ap.add_argument("--fleet", default=None, help="fleet.csv with in-service dates (default: fleet.csv next to "
                    "the maintenance file, if there is one)")
    ap.add_argument("--weather", default=None, help="hourly weather JSON Lines (default: weather.jsonl.gz next "
                    "to the maintenance file, if there is one)")
    ap.add_argument("--out", required=True, help="artifact directory to write")
    ap.add_argument("--versioned", action="store_true",
                    help="--out is a directory of artifacts: write to OUT/<version> (the stream loads the newest)")
    ap.add_argument("--horizon-days", type=float, default=30.0)
    ap.add_argument("--eval-fraction", type=float, default=0.4, help="share of vehicles held out (group B)")
    ap.add_argument("--train-fraction", type=float, default=0.6, help="time cut between training and calibration")
    ap.add_argument("--workers", type=int, default=None, help="replay processes (default: CPU count)")
    ap.add_argument("--threads", type=int, default=None, help="OpenMP threads for the trees (default: all)")
    ap.add_argument("--cache-dir", default=None, help="keep the replayed feature rows here for re-use")
    ap.add_argument("--progress", type=int, default=0, metavar="LINES", help="replay progress every LINES lines")
    ap.add_argument("--chunks", type=int, default=1, help="replay in N resumable VIN pieces (needs --cache-dir)")
    ap.add_argument("--budget", type=float, default=DEFAULT_BUDGET, help="alerts per 1,000 vehicles per week")
    ap.add_argument("--params", default="{}", help="JSON of ComponentRiskModel parameters")
    ap.add_argument("--feature-set", default="model", choices=sorted(FEATURE_SETS),
                    help="columns the models use (model: all but the since-twin-start totals)")
    a = ap.parse_args(argv)
    here = Path(a.maintenance).parent
    fleet = a.fleet or (str(here / "fleet.csv") if (here / "fleet.csv").exists() else None)
    weather = a.weather or (str(here / "weather.jsonl.gz") if (here / "weather.jsonl.gz").exists() else None)
    inputs = load_inputs(a.telemetry, a.maintenance, fleet, weather)
    with threadpool_limits(a.threads):
        return train(inputs, a.out, horizon_days=a.horizon_days, eval_fraction=a.eval_fraction,
                     train_fraction=a.train_fraction, workers=a.workers, cache_dir=a.cache_dir,
                     params=json.loads(a.params), feature_set=a.feature_set, versioned=a.versioned,
                     budget=a.budget, progress_every=a.progress, chunks=a.chunks,
                     log=lambda s: print(s, file=sys.stderr))


if __name__ == "__main__":
    main()
