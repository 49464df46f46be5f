"""Artifact layout, validation and batch scoring."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from models.risk.artifact import ArtifactError, describe_mismatch, load_model_set
from models.risk.features import FEATURE_NAMES


def _copy(trained, tmp_path):
    dst = tmp_path / "a"
    shutil.copytree(trained.artifact, dst)
    return dst


def test_layout(trained):
    names = {p.name for p in trained.artifact.iterdir()}
    assert {"metadata.json", "model.joblib", "split.json"} <= names
    meta = json.loads((trained.artifact / "metadata.json").read_text())
    for key in ("format_version", "version", "created", "feature_names", "components", "horizon_days",
                "training_window", "data", "metrics", "calibration", "baseline_features", "model_sha256"):
        assert key in meta, key
    assert meta["baseline_features"] == ["vehicle_age_days", "odometer_km"]
    for comp in meta["components"]:
        m = meta["metrics"][comp]
        assert {"eval", "baseline_eval", "alerts", "baseline_alerts"} <= set(m)


def test_wrong_feature_list_is_rejected_with_a_clear_message(trained, tmp_path):
    dst = _copy(trained, tmp_path)
    meta = json.loads((dst / "metadata.json").read_text())
    meta["feature_names"] = [n for n in meta["feature_names"] if n != "odometer_km"] + ["odometer_miles"]
    (dst / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError) as err:
        load_model_set(dst)
    msg = str(err.value)
    assert "odometer_km" in msg and "odometer_miles" in msg and "FEATURE_NAMES" in msg


def test_reordered_features_and_other_problems_are_named(tmp_path, trained):
    names = list(FEATURE_NAMES)
    swapped = names[:]
    swapped[3], swapped[4] = swapped[4], swapped[3]
    assert "different order" in describe_mismatch(swapped, names)
    assert describe_mismatch(names, names) is None
    dst = _copy(trained, tmp_path)
    (dst / "model.joblib").write_bytes((dst / "model.joblib").read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ArtifactError, match="sha256"):
        load_model_set(dst)
    with pytest.raises(ArtifactError, match="not a risk-model artifact"):
        load_model_set(tmp_path / "nowhere")


def test_batch_scoring_shapes_and_nan_rows(trained):
    rs = load_model_set(trained.artifact)
    X = np.full((7, len(FEATURE_NAMES)), np.nan)
    p = rs.predict_proba(X)
    assert p.shape == (7, len(rs.components)) and np.isfinite(p).all()
    top = rs.top_features(X, k=2)
    assert len(top) == 7 and all(len(per_comp) == 2 for row in top for per_comp in row)
    with pytest.raises(ValueError, match="shape"):
        rs.predict_proba(X[:, :5])
