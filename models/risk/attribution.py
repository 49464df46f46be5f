"""Per-row feature attribution: "median replacement" differences of the log-odds.

For a row ``x`` and feature ``j`` the contribution is

    c_j(x) = f(x) - f(x with x_j := median_j)

where ``f`` is the model's (uncalibrated) log-odds and ``median_j`` the feature's
median over the training rows. Positive = the feature's value raises the risk
compared with a typical vehicle. It is exact for what it measures (one model call
per feature, no sampling) but ignores interactions beyond one feature at a time.
To stay fast only the ``n_candidates`` globally most important features (mean |c_j|
on a training sample, ``global_importance``) are evaluated per row, all rows and
candidates in one vectorised model call per chunk. Calibration is monotone, so the
ranking is the same on the probability scale.

>>> f = lambda X: 2.0 * X[:, 0] - X[:, 1]
>>> X = np.array([[1.0, 0.0], [0.0, 3.0]]); med = np.zeros(2)
>>> contributions(f, X, med, np.array([0, 1])).tolist()
[[2.0, 0.0], [0.0, -3.0]]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

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


def top_k(contrib: NDArray[np.float64], names: Sequence[str], k: int) -> list[list[tuple[str, float]]]:
    """Per row, the ``k`` largest contributions (risk-raising first) as ``(name, log-odds)``."""
    k = min(k, contrib.shape[1])
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
    vals = np.take_along_axis(contrib, order, axis=1)
    return [[(names[j], float(v)) for j, v in zip(o, r)] for o, r in zip(order.tolist(), vals.tolist())]


class TreePaths:
    """Leaf lookup and path contributions of one fitted binary ``HistGradientBoostingClassifier``.

    Every tree is walked once per row by scikit-learn's own compiled predictor, on a copy
    of the tree whose node values are the node numbers, so the walk returns the leaf of
    each row. From the leaves, in numpy:

    * the log-odds: the baseline plus each tree's leaf value, added in tree order —
      bit for bit what ``decision_function`` returns;
    * per feature, its path contribution (Saabas' decomposition, as in ``treeinterpreter``):
      each split on the path from the root to the leaf moves the expected log-odds — the
      count-weighted mean of the leaf values below a node — from the node to its child;
      that change is credited to the split's feature. Over all features the contributions
      add up to leaf value minus root expectation, so log-odds = baseline + Σ root
      expectations + Σ contributions, exactly.

    One walk per tree gives both the probability and the explanation (median replacement,
    ``contributions``, needs a whole model evaluation per explained feature).
    """

    def __init__(self, estimator: Any, n_columns: int) -> None:
        from sklearn.ensemble._hist_gradient_boosting._predictor import _predict_from_raw_data

        self._predict_raw = _predict_from_raw_data
        self.baseline = float(np.asarray(estimator._baseline_prediction).ravel()[0])
        self._known_cat, self._f_idx_map = estimator._bin_mapper.make_known_categories_bitsets()
        self.trees: list[tuple[Any, Any, NDArray[np.float64], NDArray[np.float64]]] = []
        self._tables: dict[bytes, list[NDArray[np.float64]]] = {}     # per column selection, its table rows
        for (predictor,) in estimator._predictors:
            nodes = predictor.nodes
            walk = nodes.copy()
            walk["value"] = np.arange(len(nodes), dtype=np.float64)     # the walk returns the node number
            self.trees.append((walk, predictor.raw_left_cat_bitsets, nodes["value"].astype(np.float64),
                               _path_table(nodes, n_columns)))

    def leaves(self, X: NDArray[np.float64]) -> list[NDArray[np.intp]]:
        """Leaf node number of every row, per tree (``X``: the model's columns, float64, C or F order)."""
        from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

        n_threads = _openmp_effective_n_threads()
        out = []
        buf = np.empty(len(X), dtype=np.float64)
        for walk, raw_cat, _, _ in self.trees:
            self._predict_raw(walk, X, raw_cat, self._known_cat, self._f_idx_map, n_threads, buf)
            out.append(buf.astype(np.intp))
        return out

    def raw(self, leaves: list[NDArray[np.intp]]) -> NDArray[np.float64]:
        """Log-odds of the rows (equal to the estimator's ``decision_function``)."""
        n = len(leaves[0]) if leaves else 0
        raw = np.full(n, self.baseline)
        for (_, _, values, _), leaf in zip(self.trees, leaves):
            raw += values[leaf]
        return raw

    def contributions(self, leaves: list[NDArray[np.intp]], columns: NDArray[np.int64]) -> NDArray[np.float64]:
        """``(n, len(columns))`` path contributions to the log-odds of the model columns ``columns``."""
        n = len(leaves[0]) if leaves else 0
        key = np.asarray(columns, dtype=np.int64).tobytes()
        tables = self._tables.get(key)
        if tables is None:
            tables = self._tables[key] = [np.ascontiguousarray(t[3][:, columns]) for t in self.trees]
        out = np.zeros((n, len(columns)))
        for table, leaf in zip(tables, leaves):
            out += table[leaf]
        return out


def _path_table(nodes: Any, n_columns: int) -> NDArray[np.float64]:
    """``(n_nodes, n_columns)``: for each leaf, the contribution of every column along its path (0 elsewhere)."""
    n = len(nodes)
    expect = nodes["value"].astype(np.float64).copy()
    count = nodes["count"].astype(np.float64)
    for i in range(n - 1, -1, -1):                       # children come after their parent
        if not nodes["is_leaf"][i]:
            lft, rgt = int(nodes["left"][i]), int(nodes["right"][i])
            w = count[lft] + count[rgt]
            expect[i] = (count[lft] * expect[lft] + count[rgt] * expect[rgt]) / w if w else 0.5 * (
                expect[lft] + expect[rgt])
    table = np.zeros((n, n_columns))
    stack = [(0, np.zeros(n_columns))]
    while stack:
        i, acc = stack.pop()
        if nodes["is_leaf"][i]:
            table[i] = acc
            continue
        f = int(nodes["feature_idx"][i])
        for child in (int(nodes["left"][i]), int(nodes["right"][i])):
            a = acc.copy()
            a[f] += expect[child] - expect[i]
            stack.append((child, a))
    return table


def top_k_arrays(contrib: NDArray[np.float64], k: int) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """Per row, the column positions and values of the ``k`` largest contributions (largest first)."""
    k = min(k, contrib.shape[1])
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(contrib, order, axis=1)
