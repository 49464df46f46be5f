"""Artifact layout, validation and batch scoring."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from models.risk.artifact import ArtifactError, describe_mismatch, load_model_set, write_manifest
from models.risk.feature_names import FEATURE_NAMES


def _copy(trained, tmp_path):
    dst = tmp_path / "a"
    shutil.copytree(trained.artifact, dst)
    return dst


def test_layout(trained):
    names = {p.name for p in trained.artifact.iterdir()}
    assert {"metadata.json", "model.joblib", "split.json", "MANIFEST.sha256"} <= names
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
    write_manifest(dst)                                  # an edit made on purpose, so it passes the integrity check
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


def _saabas_row(estimator, x):
    """Reference: one row's log-odds and per-column path contributions, walking scikit-learn's nodes in Python."""
    raw = float(np.asarray(estimator._baseline_prediction).ravel()[0])
    contrib = np.zeros(len(x))
    for (pred,) in estimator._predictors:
        nodes = pred.nodes

        def expect(i):
            if nodes["is_leaf"][i]:
                return float(nodes["value"][i]), float(nodes["count"][i])
            (el, cl), (er, cr) = expect(nodes["left"][i]), expect(nodes["right"][i])
            return (cl * el + cr * er) / (cl + cr), cl + cr

        i = 0
        while not nodes["is_leaf"][i]:
            v, f = x[nodes["feature_idx"][i]], nodes["feature_idx"][i]
            go_left = nodes["missing_go_to_left"][i] if np.isnan(v) else v <= nodes["num_threshold"][i]
            child = nodes["left"][i] if go_left else nodes["right"][i]
            contrib[f] += expect(child)[0] - expect(i)[0]
            i = child
        raw += float(nodes["value"][i])
    return raw, contrib


def test_path_contributions_add_up_and_scoring_equals_predict_proba(trained):
    from models.risk.attribution import TreeWalker
    from models.risk.replay import load_snapshots

    rs = load_model_set(trained.artifact)
    X = load_snapshots(next(trained.cache.glob("snapshots-*.npz"))).X[::7].astype(np.float64)
    X[::5, 3::4] = np.nan                                          # missing values take the learned branch
    proba, idx, val = rs.explain(X, k=3)
    np.testing.assert_array_equal(proba, rs.predict_proba(X))    # one walk: the same probabilities, bit for bit
    assert idx.shape == val.shape == (len(X), len(rs.components), 3)
    assert (np.diff(val, axis=2) <= 0).all()                      # risk-raising first
    fitted = [c for c in rs.components if rs.models[c].estimator_ is not None]
    assert fitted
    for c in fitted:
        m = rs.models[c]
        walker = TreeWalker([m.estimator_], [m.columns_])
        raw, (contrib,) = walker.walk(X, [np.arange(len(m.columns_))])
        np.testing.assert_array_equal(raw[:, 0], m.decision_function(X))
        # Saabas: log-odds = baseline + Σ_trees E[root] + Σ_features contributions, exactly
        root_expect = raw[:, 0] - contrib.sum(axis=1)
        np.testing.assert_allclose(root_expect, root_expect[0], rtol=0, atol=1e-9)   # the same for every row
        for r in range(0, len(X), max(1, len(X) // 25)):          # and equal to a plain walk of the nodes
            ref_raw, ref_contrib = _saabas_row(m.estimator_, X[r, m.columns_])
            assert raw[r, 0] == pytest.approx(ref_raw, abs=1e-12)
            np.testing.assert_allclose(contrib[r], ref_contrib, rtol=0, atol=1e-12)
        k = rs.components.index(c)
        cols = [FEATURE_NAMES.index(n) for n in np.array(FEATURE_NAMES)[idx[:, k, 0]]]
        best = contrib[np.arange(len(X)), [list(m.columns_).index(j) for j in cols]]
        np.testing.assert_allclose(val[:, k, 0], best, rtol=0, atol=1e-12)
    lists = rs.top_features(X[:4], k=3)
    assert lists[0][0][0] == (FEATURE_NAMES[idx[0, 0, 0]], val[0, 0, 0])


def _node_walk(estimators, columns, explained, X):
    """Reference: every row walked node by node through scikit-learn's own node arrays, each model's leaf
    values added to its baseline in tree order and each explained split's Δ expectation added to its column
    as the split is passed (the additions, in the order, that ``TreeWalker`` promises)."""
    raw = np.empty((len(X), len(estimators)))
    contrib = [np.zeros((len(X), len(e))) for e in explained]
    for m, (est, cols, ex) in enumerate(zip(estimators, columns, explained)):
        slot = {int(j): q for q, j in enumerate(ex)}
        trees = []
        for (pred,) in est._predictors:
            nodes = pred.nodes

            def expect(i, nodes=nodes):
                if nodes["is_leaf"][i]:
                    return float(nodes["value"][i]), float(nodes["count"][i])
                (el, cl), (er, cr) = expect(nodes["left"][i]), expect(nodes["right"][i])
                return (cl * el + cr * er) / (cl + cr), cl + cr

            trees.append((nodes, [expect(i)[0] for i in range(len(nodes))]))
        for r in range(len(X)):
            x = X[r, cols]
            raw[r, m] = float(np.asarray(est._baseline_prediction).ravel()[0])
            for nodes, ex_value in trees:
                i = 0
                while not nodes["is_leaf"][i]:
                    v, f = x[nodes["feature_idx"][i]], int(nodes["feature_idx"][i])
                    go_left = nodes["missing_go_to_left"][i] if np.isnan(v) else v <= nodes["num_threshold"][i]
                    child = nodes["left"][i] if go_left else nodes["right"][i]
                    if f in slot:
                        contrib[m][r, slot[f]] += ex_value[child] - ex_value[i]
                    i = child
                raw[r, m] += nodes["value"][i]
    return raw, contrib


def test_tree_walker_equals_scikit_learn_and_a_node_walk_with_missing_values():
    """Two models on column subsets of one matrix, trees of unequal depth, missing values learned both ways:
    log-odds equal to ``decision_function`` and contributions equal to a node-by-node walk, bit for bit; ``top``
    equal to a stable argsort of the contributions (ties and short blocks included)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from models.risk.attribution import TreeWalker

    rng = np.random.default_rng(7)
    n = 3000
    X = rng.normal(size=(n, 9))
    X[rng.random(n) < 0.25, 1] = np.nan                      # missing: high risk
    X[rng.random(n) < 0.25, 4] = np.nan                      # missing: low risk
    logit = X[:, 0] + np.where(np.isnan(X[:, 1]), 2.0, X[:, 1]) - np.where(np.isnan(X[:, 4]), 2.0, X[:, 4])
    y = (logit + rng.logistic(size=n) > 0).astype(int)
    columns = [np.array([0, 1, 2, 3, 4, 5]), np.array([4, 8, 1, 0, 6])]
    estimators = [HistGradientBoostingClassifier(max_iter=12, max_leaf_nodes=11, min_samples_leaf=20,
                                                 early_stopping=False, random_state=0).fit(X[:, c], y)
                  for c in columns]
    split = np.concatenate([p.nodes[p.nodes["is_leaf"] == 0] for e in estimators for (p,) in e._predictors])
    assert {0, 1} <= set(split["missing_go_to_left"].tolist())          # both missing-value branches are used
    depths = {int(p.get_max_depth()) for e in estimators for (p,) in e._predictors}
    assert len(depths) > 1                                               # trees of unequal depth

    walker = TreeWalker(estimators, columns)
    Xt = np.vstack([X[:300], np.full((2, 9), np.nan)])                   # with all-missing rows
    for explained in ([np.array([0, 1, 4, 5]), np.array([2, 0])], [np.arange(6), np.arange(5)],
                      [np.array([3]), np.array([], dtype=np.int64)]):
        raw, contrib = walker.walk(Xt, explained)
        ref_raw, ref_contrib = _node_walk(estimators, columns, explained, Xt)
        for m, (est, cols) in enumerate(zip(estimators, columns)):
            np.testing.assert_array_equal(raw[:, m], est.decision_function(Xt[:, cols]))
            np.testing.assert_array_equal(raw[:, m], ref_raw[:, m])
            np.testing.assert_array_equal(contrib[m], ref_contrib[m])
        for k in (0, 1, 3, 5):
            top_raw, order, vals = walker.top(Xt, explained, k)
            np.testing.assert_array_equal(top_raw, raw)
            for m, c in enumerate(contrib):
                kk = min(k, c.shape[1])
                expect = np.argsort(-c, axis=1, kind="stable")[:, :kk]  # ties (e.g. zeros): earlier position first
                np.testing.assert_array_equal(order[:, m, :kk], expect)
                np.testing.assert_array_equal(vals[:, m, :kk], np.take_along_axis(c, expect, axis=1))
                assert (order[:, m, kk:] == 0).all() and (vals[:, m, kk:] == 0).all()
