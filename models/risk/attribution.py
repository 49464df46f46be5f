"""Per-row feature attribution: path contributions from a compiled walk of the trees (``TreeWalker``, used
for scoring) and "median replacement" differences of the log-odds (``contributions``, for global importance).

For a row ``x`` and feature ``j`` the median-replacement contribution is

    c_j(x) = f(x) - f(x with x_j := median_j)

where ``f`` is the model's (uncalibrated) log-odds and ``median_j`` the feature's
median over the training rows. Positive = the feature's value raises the risk
compared with a typical vehicle. It is exact for what it measures (one model call
per feature, no sampling) but ignores interactions beyond one feature at a time,
and costs a model evaluation per feature: training uses it for the models' global
importance (mean |c_j| on a training sample, ``global_importance``), which picks the
features the stream explains per row with path contributions. Calibration is
monotone, so rankings are the same on the probability scale.

>>> f = lambda X: 2.0 * X[:, 0] - X[:, 1]
>>> X = np.array([[1.0, 0.0], [0.0, 3.0]]); med = np.zeros(2)
>>> contributions(f, X, med, np.array([0, 1])).tolist()
[[2.0, 0.0], [0.0, -3.0]]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

Decision = Callable[[NDArray[np.float64]], NDArray[np.float64]]


def contributions(decision: Decision, X: NDArray[np.float64], medians: NDArray[np.float64],
                  candidates: NDArray[np.int64], chunk_rows: int = 8192) -> NDArray[np.float64]:
    """``(n, len(candidates))`` log-odds differences ``f(x) - f(x with x_j := median_j)``."""
    n, m = len(X), len(candidates)
    out = np.empty((n, m), dtype=np.float64)
    for a in range(0, n, chunk_rows):
        xb = X[a:a + chunk_rows]
        b = len(xb)
        stack = np.repeat(xb[None, :, :], m + 1, axis=0)
        for k, j in enumerate(candidates):
            stack[k + 1, :, j] = medians[j]
        f = decision(stack.reshape((m + 1) * b, -1)).reshape(m + 1, b)
        out[a:a + b] = (f[0][None, :] - f[1:]).T
    return out


def global_importance(decision: Decision, X: NDArray[np.float64], medians: NDArray[np.float64],
                      sample: int = 2000, random_state: int = 0) -> NDArray[np.float64]:
    """Mean |contribution| of every column over a random sample of ``X`` (training rows)."""
    rng = np.random.default_rng(random_state)
    rows = rng.choice(len(X), size=min(sample, len(X)), replace=False) if len(X) else np.zeros(0, np.int64)
    if len(rows) == 0:
        return np.zeros(X.shape[1])
    c = contributions(decision, X[rows], medians, np.arange(X.shape[1]), chunk_rows=256)
    return np.abs(c).mean(axis=0)


class TreeWalker:
    """Probabilities and path contributions of fitted binary ``HistGradientBoostingClassifier``s.

    The trees of all the given models are flattened into node arrays (feature, threshold,
    children, leaf value) and walked row by row by one compiled loop (numba): each row is
    read once for all models. Per row and model it yields

    * the log-odds: the model's baseline plus each tree's leaf value, added in tree order —
      bit for bit what ``decision_function`` returns;
    * per explained feature, its path contribution (Saabas' decomposition, as in
      ``treeinterpreter``): each split on the path from the root to the leaf moves the
      expected log-odds — the count-weighted mean of the leaf values below a node — from the
      node to its child; that change is credited to the split's feature. Over all features
      the contributions add up to leaf value minus root expectation, so log-odds = baseline +
      Σ root expectations + Σ contributions, exactly (up to rounding).

    ``columns[m]`` maps model ``m``'s feature positions to the columns of the matrices passed
    in, so rows are read in place (no column selection copy). One walk gives both the
    probability and the explanation; the median-replacement method (``contributions``) needs
    a whole model evaluation per explained feature.
    """

    def __init__(self, estimators: Sequence[Any], columns: Sequence[NDArray[np.int64]]) -> None:
        if len(estimators) != len(columns) or not estimators:
            raise ValueError("TreeWalker needs one column map per estimator, and at least one estimator")
        self.baselines = np.array([float(np.asarray(e._baseline_prediction).ravel()[0]) for e in estimators])
        parts, owner, feature = [], [], []
        for m, (est, cols) in enumerate(zip(estimators, columns)):
            for (predictor,) in est._predictors:
                nodes = predictor.nodes
                if nodes["is_categorical"].any():
                    raise ValueError("categorical splits are not supported by TreeWalker")
                parts.append(nodes)
                owner.append(m)
                feature.append(np.asarray(cols, dtype=np.int64)[nodes["feature_idx"]])
        sizes = np.array([len(p) for p in parts], dtype=np.int64)
        self.roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.tree_model = np.array(owner, dtype=np.int64)
        self.n_columns = [len(c) for c in columns]
        nodes = np.concatenate(parts)
        shift = np.repeat(self.roots, sizes)
        self.node_model = np.repeat(self.tree_model, sizes)
        self.model_feature = nodes["feature_idx"].astype(np.int64)   # position among its model's columns
        self.feature = np.concatenate(feature)                       # column of the matrices walked
        self.threshold = nodes["num_threshold"].astype(np.float64)
        self.leaf = nodes["is_leaf"].astype(np.bool_)
        self.left = nodes["left"].astype(np.int64) + shift
        self.right = nodes["right"].astype(np.int64) + shift
        self.missing_left = nodes["missing_go_to_left"].astype(np.bool_)
        self.value = nodes["value"].astype(np.float64)
        self.delta = np.zeros(len(nodes))                     # expected log-odds change parent -> this node
        for part, off in zip(parts, self.roots):
            expect = _expectations(part)
            inner = np.flatnonzero(part["is_leaf"] == 0)
            for side in ("left", "right"):
                child = part[side][inner].astype(np.int64)
                self.delta[off + child] = expect[child] - expect[inner]
        self._slots: dict[bytes, tuple[NDArray[np.int64], NDArray[np.int64]]] = {}

    def _slot(self, explained: Sequence[NDArray[np.int64]]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Per node, the contribution column its split credits (model ``m``'s ``explained[m]`` side by side,
        then one scratch column for everything else); and where each model's block starts."""
        key = b"|".join(np.asarray(e, dtype=np.int64).tobytes() for e in explained)
        hit = self._slots.get(key)
        if hit is None:
            starts = np.concatenate([[0], np.cumsum([len(e) for e in explained])]).astype(np.int64)
            scratch = int(starts[-1])
            slot = np.full(len(self.leaf), scratch, dtype=np.int64)
            for m, e in enumerate(explained):
                where = np.full(self.n_columns[m], scratch, dtype=np.int64)
                where[np.asarray(e, dtype=np.int64)] = starts[m] + np.arange(len(e))
                mine = (self.node_model == m) & ~self.leaf
                slot[mine] = where[self.model_feature[mine]]
            hit = self._slots[key] = (slot, starts)
        return hit

    def _run(self, X: NDArray[np.float64], explained: Sequence[NDArray[np.int64]]
             ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
        """The compiled walk: log-odds, all contribution columns (scratch last) and each model's block start."""
        Xc = np.ascontiguousarray(X, dtype=np.float64)
        slot, starts = self._slot(explained)
        raw = np.empty((len(Xc), len(self.baselines)))
        contrib = np.zeros((len(Xc), int(starts[-1]) + 1))
        _walk(Xc, self.roots, self.tree_model, self.feature, self.threshold, self.left, self.right,
              self.missing_left, self.leaf, self.value, self.delta, slot, self.baselines, raw, contrib)
        return raw, contrib, starts

    def walk(self, X: NDArray[np.float64], explained: Sequence[NDArray[np.int64]]
             ) -> tuple[NDArray[np.float64], list[NDArray[np.float64]]]:
        """Log-odds ``(n, n_models)`` and per model the path contributions ``(n, len(explained[m]))``.

        ``X``: float64 rows holding the columns given to the constructor; ``explained[m]``: the
        feature positions of model ``m`` whose contributions are returned."""
        raw, contrib, starts = self._run(X, explained)
        return raw, [contrib[:, starts[m]:starts[m + 1]] for m in range(len(explained))]

    def top(self, X: NDArray[np.float64], explained: Sequence[NDArray[np.int64]], k: int
            ) -> tuple[NDArray[np.float64], NDArray[np.intp], NDArray[np.float64]]:
        """Log-odds ``(n, n_models)`` and, per row and model, the ``k`` largest path contributions among
        ``explained[m]``: their positions in ``explained[m]`` and values ``(n, n_models, k)``, largest first
        (ties: the earlier position first). Models with fewer than ``k`` explained features are padded
        with position 0 and value 0."""
        raw, contrib, starts = self._run(X, explained)
        order = np.zeros((len(raw), raw.shape[1], k), dtype=np.intp)
        vals = np.zeros((len(raw), raw.shape[1], k))
        _top_k_blocks(contrib, starts, k, order, vals)
        return raw, order, vals


def _expectations(nodes: Any) -> NDArray[np.float64]:
    """Per node of one tree, the count-weighted mean of the leaf values below it (children follow parents)."""
    expect = nodes["value"].astype(np.float64).copy()
    count = nodes["count"].astype(np.float64)
    for i in range(len(nodes) - 1, -1, -1):
        if not nodes["is_leaf"][i]:
            lft, rgt = int(nodes["left"][i]), int(nodes["right"][i])
            w = count[lft] + count[rgt]
            expect[i] = (count[lft] * expect[lft] + count[rgt] * expect[rgt]) / w if w else 0.5 * (
                expect[lft] + expect[rgt])
    return expect


@numba.njit(cache=True, nogil=True)
def _walk(X, roots, tree_model, feature, threshold, left, right, missing_left, leaf, value, delta, slot, baselines,
          raw, contrib):  # pragma: no cover - compiled
    """Every row through every tree: log-odds into ``raw``, contributions (by ``slot``) into ``contrib``.
    Each model's leaf values are added in its tree order, as scikit-learn adds them."""
    for r in range(X.shape[0]):
        for m in range(baselines.shape[0]):
            raw[r, m] = baselines[m]
        for t in range(roots.shape[0]):
            i = roots[t]
            while not leaf[i]:
                x = X[r, feature[i]]
                if np.isnan(x):
                    c = left[i] if missing_left[i] else right[i]
                elif x <= threshold[i]:
                    c = left[i]
                else:
                    c = right[i]
                contrib[r, slot[i]] += delta[c]
                i = c
            raw[r, tree_model[t]] += value[i]


@numba.njit(cache=True, nogil=True)
def _top_k_blocks(contrib, starts, k, order, vals):  # pragma: no cover - compiled
    """Per row and block ``contrib[:, starts[m]:starts[m + 1]]``, the ``k`` largest values, largest first, ties by
    position (= a stable argsort of the negated block): positions in the block into ``order[:, m]``, values into
    ``vals[:, m]``."""
    used = np.zeros(contrib.shape[1], dtype=np.bool_)
    for r in range(contrib.shape[0]):
        for m in range(starts.shape[0] - 1):
            a, b = starts[m], starts[m + 1]
            used[a:b] = False
            for j in range(min(k, b - a)):
                best = -1
                for q in range(a, b):
                    if not used[q] and (best < 0 or contrib[r, q] > contrib[r, best]):
                        best = q
                used[best] = True
                order[r, m, j] = best - a
                vals[r, m, j] = contrib[r, best]
