"""ComponentRiskModel follows scikit-learn conventions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from models.risk.model import ComponentRiskModel

PARAMS = {"learning_rate": 0.1, "max_iter": 40, "n_iter_no_change": 5, "min_samples_leaf": 20}


def _data(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    X[rng.random(n) < 0.1, 2] = np.nan                        # missing values are fine
    y = (rng.random(n) < 1 / (1 + np.exp(-(2.0 * X[:, 0] - 3.0)))).astype(int)
    groups = rng.integers(0, 100, n).astype(str)
    return X, y, groups


def test_unfitted_model_raises_not_fitted_error():
    m = ComponentRiskModel()
    X = np.zeros((3, 4))
    for call in (m.predict_proba, m.predict, m.decision_function):
        with pytest.raises(NotFittedError):
            call(X)
    with pytest.raises(NotFittedError):
        m.calibrate(X, np.zeros(3))


def test_constructor_only_stores_params_and_fit_returns_self():
    m = ComponentRiskModel(feature_names=("a", "b", "c", "d"), use_features=("a", "c"), **PARAMS)
    assert m.get_params()["use_features"] == ("a", "c")
    assert not [k for k in vars(m) if k.endswith("_")]          # nothing learned yet
    X, y, g = _data()
    assert m.fit(X, y, groups=g) is m
    learned = [k for k in vars(m) if k not in m.get_params()]
    assert learned and all(k.endswith("_") for k in learned), learned
    assert m.n_features_in_ == 4 and m.columns_.tolist() == [0, 2] and m.classes_.tolist() == [0, 1]
    c = clone(m)
    assert c.get_params() == m.get_params() and not hasattr(c, "estimator_")


def test_calibrated_probabilities_are_sane():
    X, y, g = _data(6000)
    m = ComponentRiskModel(**PARAMS).fit(X[:3000], y[:3000], groups=g[:3000])
    m.calibrate(X[3000:4500], y[3000:4500], groups=g[3000:4500])
    assert m.calibration_ in ("isotonic", "sigmoid") and set(m.calibration_scores_) == {"isotonic", "sigmoid"}
    p = m.predict_proba(X[4500:])
    assert p.shape == (1500, 2) and np.allclose(p.sum(axis=1), 1.0)
    assert abs(p[:, 1].mean() - y[4500:].mean()) < 0.03          # calibrated despite the class weight
    assert m.importances_.argmax() == 0                          # the informative feature
    assert m.predict(X[:5]).dtype.kind == "i"


def test_positive_weight_repeats_the_positive_rows():
    X, y, _ = _data(1500)
    k = 3
    idx = np.concatenate([np.arange(len(y)), np.repeat(np.flatnonzero(y == 1), k - 1)])
    weighted = ComponentRiskModel(positive_weight=k, **PARAMS).fit(X, y)
    repeated = ComponentRiskModel(positive_weight=None, **PARAMS).fit(X[idx], y[idx])
    assert weighted.positive_weight_ == 3 and repeated.positive_weight_ == 1
    assert weighted.n_iter_ == repeated.n_iter_ > 0
    np.testing.assert_allclose(weighted.decision_function(X), repeated.decision_function(X), rtol=0, atol=1e-12)
    sqrt = ComponentRiskModel(positive_weight="sqrt", **PARAMS).fit(X, y)
    assert sqrt.positive_weight_ == round(np.sqrt((y == 0).sum() / y.sum()))


def test_single_class_training_gives_a_constant_model():
    X, _, _ = _data(200)
    m = ComponentRiskModel(**PARAMS).fit(X, np.zeros(200))
    assert m.estimator_ is None
    assert np.allclose(m.predict_proba(X)[:, 1], m.predict_proba(X)[0, 1])


def test_bad_inputs_are_named():
    X, y, _ = _data(100)
    with pytest.raises(ValueError, match="use_features not in feature_names"):
        ComponentRiskModel(feature_names=("a", "b", "c", "d"), use_features=("zz",)).fit(X, y)
    with pytest.raises(ValueError, match="binary"):
        ComponentRiskModel().fit(X, np.arange(100))
    m = ComponentRiskModel(**PARAMS).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        m.predict_proba(X[:, :3])
