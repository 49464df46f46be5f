"""Probability calibration (isotonic or Platt on the model's log-odds) and calibration metrics.

``expected_calibration_error`` uses 10 equal-width bins by default (the usual ECE);
``strategy="quantile"`` gives equal-mass bins, a stricter check when nearly every
probability is small (rare failures put almost all rows in the first equal-width bin).

>>> y = np.array([0, 0, 1, 1]); p = np.array([0.1, 0.2, 0.8, 0.9])
>>> round(expected_calibration_error(y, p), 3)
0.15
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from sklearn.isotonic import IsotonicRegression

METHODS = ("isotonic", "sigmoid")


def _bins(p: NDArray[np.float64], n_bins: int, strategy: str) -> NDArray[np.int64]:
    if strategy == "uniform":
        return np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    if strategy == "quantile":
        edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)[1:-1]))
        return np.searchsorted(edges, p, side="right")
    raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}")


def reliability_curve(y: ArrayLike, p: ArrayLike, n_bins: int = 10, strategy: str = "uniform"
                      ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """Per non-empty bin: mean predicted probability, observed frequency, row count."""
    yy, pp = np.asarray(y, dtype=np.float64), np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    b = _bins(pp, n_bins, strategy)
    k = int(b.max()) + 1 if len(b) else 0
    counts = np.bincount(b, minlength=k)
    sum_p = np.bincount(b, weights=pp, minlength=k)
    sum_y = np.bincount(b, weights=yy, minlength=k)
    nz = counts > 0
    return sum_p[nz] / counts[nz], sum_y[nz] / counts[nz], counts[nz]


def expected_calibration_error(y: ArrayLike, p: ArrayLike, n_bins: int = 10, strategy: str = "uniform") -> float:
    """Σ_bins (n_b / n) · |mean p_b - mean y_b|."""
    mean_p, freq, counts = reliability_curve(y, p, n_bins, strategy)
    n = counts.sum()
    return float(np.sum(counts / n * np.abs(mean_p - freq))) if n else float("nan")


def brier_score(y: ArrayLike, p: ArrayLike) -> float:
    """Mean squared error of the probabilities."""
    yy, pp = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    return float(np.mean((pp - yy) ** 2)) if len(yy) else float("nan")


def log_loss(y: ArrayLike, p: ArrayLike, eps: float = 1e-7) -> float:
    """Mean negative log-likelihood."""
    yy, pp = np.asarray(y, dtype=np.float64), np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return float(-np.mean(yy * np.log(pp) + (1 - yy) * np.log(1 - pp))) if len(yy) else float("nan")


class PlattCalibrator:
    """p = sigmoid(a · score + b), maximum likelihood (Platt 1999, with his target smoothing); ``a ≥ 0``.

    The slope is bounded at zero so calibration can never flip the model's ranking (a
    negative fit means the scores carry no usable signal on the calibration rows: the
    map then degrades to the constant base rate).
    """

    def __init__(self) -> None:
        self.a_ = 1.0
        self.b_ = 0.0

    def fit(self, score: ArrayLike, y: ArrayLike) -> "PlattCalibrator":
        s, yy = np.asarray(score, dtype=np.float64), np.asarray(y, dtype=np.float64)
        n_pos, n_neg = yy.sum(), len(yy) - yy.sum()
        t = np.where(yy > 0, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))

        def nll(w: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
            z = w[0] * s + w[1]
            loss = np.sum(np.logaddexp(0.0, z) - t * z)
            g = 1.0 / (1.0 + np.exp(-z)) - t
            return float(loss), np.array([np.dot(g, s), g.sum()])

        res = minimize(nll, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B", bounds=[(0.0, None), (None, None)])
        self.a_, self.b_ = float(res.x[0]), float(res.x[1])
        return self

    def transform(self, score: ArrayLike) -> NDArray[np.float64]:
        z = self.a_ * np.asarray(score, dtype=np.float64) + self.b_
        return 1.0 / (1.0 + np.exp(-z))


class IsotonicCalibrator:
    """Monotone step function of the score (sklearn ``IsotonicRegression``, clipped outside the range)."""

    def __init__(self) -> None:
        self.iso_: IsotonicRegression | None = None

    def fit(self, score: ArrayLike, y: ArrayLike) -> "IsotonicCalibrator":
        self.iso_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True)
        self.iso_.fit(np.asarray(score, dtype=np.float64), np.asarray(y, dtype=np.float64))
        return self

    def transform(self, score: ArrayLike) -> NDArray[np.float64]:
        assert self.iso_ is not None
        return np.asarray(self.iso_.predict(np.asarray(score, dtype=np.float64)), dtype=np.float64)


Calibrator = PlattCalibrator | IsotonicCalibrator


def make_calibrator(method: str) -> Calibrator:
    """A fresh calibrator: ``"isotonic"`` or ``"sigmoid"`` (Platt)."""
    if method == "isotonic":
        return IsotonicCalibrator()
    if method == "sigmoid":
        return PlattCalibrator()
    raise ValueError(f"calibration method must be one of {METHODS}, got {method!r}")


def compare_methods(score: ArrayLike, y: ArrayLike, groups: ArrayLike, n_splits: int = 2, seed: int = 0
                    ) -> dict[str, dict[str, float]]:
    """Cross-validated (folds grouped by ``groups``, e.g. VIN) ECE, quantile ECE and Brier per method."""
    s, yy, g = np.asarray(score, dtype=np.float64), np.asarray(y), np.asarray(groups)
    uniq = np.unique(g)
    rng = np.random.default_rng(seed)
    fold_of = dict(zip(uniq.tolist(), rng.permutation(len(uniq)) % n_splits))
    fold = np.array([fold_of[v] for v in g.tolist()])
    out: dict[str, dict[str, float]] = {}
    for method in METHODS:
        pred = np.empty(len(s))
        for k in range(n_splits):
            test = fold == k
            train = ~test
            if yy[train].sum() == 0 or train.sum() == 0:
                pred[test] = yy[train].mean() if train.any() else 0.0
                continue
            pred[test] = make_calibrator(method).fit(s[train], yy[train]).transform(s[test])
        out[method] = {"ece": expected_calibration_error(yy, pred),
                       "ece_quantile": expected_calibration_error(yy, pred, strategy="quantile"),
                       "brier": brier_score(yy, pred), "log_loss": log_loss(yy, pred)}
    return out


def choose_method(results: dict[str, dict[str, Any]]) -> str:
    """The method with the lower cross-validated ECE (Brier breaks ties)."""
    return min(results, key=lambda m: (round(results[m]["ece"], 6), results[m]["brier"]))
