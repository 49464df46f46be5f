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
