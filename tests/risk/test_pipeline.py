"""End to end: synthetic history -> train CLI -> artifact -> ranking on held-out vehicles -> evaluation report."""

from __future__ import annotations

import json

import numpy as np
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from models.risk.artifact import load_metadata, load_model_set, load_split
from models.risk.dataset import dataset_paths
from models.risk.feature_names import COMPONENTS, FEATURE_NAMES
from models.risk.split import Split
from models.risk.train import build_snapshots, load_inputs


def _held_out_snapshots(trained):
    p = dataset_paths(trained.data)
    inputs = load_inputs(p["telemetry"], p["maintenance"], p["fleet"], p["weather"])
    snap = build_snapshots(inputs, cache_dir=trained.cache)      # the training replay, from the cache
    split = Split.from_json(load_split(trained.artifact))
    return snap.select(np.isin(snap.vins, sorted(split.eval_vins))), split


def test_artifact_loads_with_the_documented_interface(trained):
    rs = load_model_set(trained.artifact)
    assert rs.components == COMPONENTS
    assert rs.feature_names == FEATURE_NAMES
    assert rs.horizon_days == 14.0
    assert rs.version.startswith("risk-")
    meta = load_metadata(trained.artifact)
    assert meta["data"]["vehicles"] == 56
    for comp in COMPONENTS:
        assert comp in meta["metrics"] and meta["calibration"][comp] in ("isotonic", "sigmoid", "none")
    X = np.zeros((5, len(FEATURE_NAMES)))
    p = rs.predict_proba(X)
    assert p.shape == (5, 4) and np.all((p >= 0) & (p <= 1))


def test_stressed_vehicles_rank_above_unstressed_on_held_out_data(trained):
    rs = load_model_set(trained.artifact)
    held, split = _held_out_snapshots(trained)
    assert len(split.eval_vins) >= 15
    with threadpool_limits(1):
        proba = rs.predict_proba(held.X)
        base = rs.baseline_proba(held.X)
    vins = sorted(set(held.vins.tolist()))
    stressed = np.array([v in trained.truth.stressed for v in vins])
    assert 0 < stressed.sum() < len(vins)
    for comp in ("inverter", "traction_battery"):
        k = COMPONENTS.index(comp)
        mean_risk = np.array([proba[held.vins == v, k].mean() for v in vins])
        mean_base = np.array([base[held.vins == v, k].mean() for v in vins])
        auc = roc_auc_score(stressed, mean_risk)
        assert auc > 0.9, (comp, auc)
        assert auc > roc_auc_score(stressed, mean_base)
        # the stressed mean risk is well above the unstressed one
        assert mean_risk[stressed].mean() > 3 * mean_risk[~stressed].mean()


def test_top_features_explain_inverter_risk_by_temperature(trained):
    rs = load_model_set(trained.artifact)
    held, _ = _held_out_snapshots(trained)
    k = COMPONENTS.index("inverter")
    p = rs.predict_proba(held.X)[:, k]
    top_rows = np.argsort(-p)[:20]
    expl = rs.top_features(held.X[top_rows], k=3)
    assert len(expl) == 20 and all(len(r) == 4 and all(len(c) == 3 for c in r) for r in expl)
    names = [n for r in expl for n, _ in r[k]]
    assert all(isinstance(v, float) for r in expl for n, v in r[k])
    assert any("inv" in n for n in names), names
    assert expl[0][k][0][1] >= expl[0][k][1][1] >= expl[0][k][2][1]   # risk-raising first


def test_evaluation_report(trained, tmp_path):
    from models.risk import evaluate

    out = tmp_path / "report"
    with threadpool_limits(1):
        res = evaluate.main(["--artifact", str(trained.artifact), "--data", str(trained.data), "--out", str(out),
                             "--budget", "60", "--workers", "2", "--cache-dir", str(trained.cache)])
    report = (out / "report.md").read_text()
    for comp in COMPONENTS:
        assert (out / f"{comp}.png").stat().st_size > 10_000
        assert f"| {comp} |" in report
    inv = res["components"]["inverter"]
    assert inv["model"]["alerts"]["failures"] > 0
    assert inv["model"]["alerts"]["cost"] < inv["baseline"]["alerts"]["cost"]
    assert inv["model"]["metrics"]["roc_auc"] > inv["baseline"]["metrics"]["roc_auc"]
    saved = json.loads((out / "results.json").read_text())
    assert saved["eval_vehicles"] == res["eval_vehicles"]


def test_score_twins_stores_what_the_model_set_computes(trained):
    """The stream's batch call: one RiskState per twin, equal to predict_proba / top_features on its feature row."""
    from models.risk.dataset import read_fleet, read_weather
    from models.risk.features import feature_matrix
    from models.risk.scoring import score_twins
    from models.risk.synthetic import stream_twins

    rs = load_model_set(trained.artifact)
    p = dataset_paths(trained.data)
    fleet = read_fleet(p["fleet"])
    twins = list(stream_twins(trained.data)[0].values())
    lookup = read_weather(p["weather"]).lookup
    now = max(t.last_seen for t in twins) + 1
    services = [fleet[t.vin].in_service_ms for t in twins]
    states = score_twins(rs, twins, lookup, now_ms=now, in_service_ms=services)
    X = feature_matrix(twins, lookup, now_ms=now, in_service_ms=services)
    proba, expl = rs.predict_proba(X), rs.top_features(X, k=3)
    assert len(states) == len(twins) == 56
    assert len({tuple(s.probability) for s in states}) > 5                   # real, varied scores
    for i, s in enumerate(states):
        assert (s.version, s.scored_ms, s.horizon_days, tuple(s.components)) == (rs.version, now, 14.0, COMPONENTS)
        assert s.probability == proba[i].tolist()
        for k in range(len(COMPONENTS)):
            assert s.top(k) == expl[i][k]
    assert score_twins(rs, [], lookup, now_ms=now, in_service_ms=[]) == []
