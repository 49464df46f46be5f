"""Row-level metrics of one component's probabilities: ranking (ROC AUC, average precision) and calibration.

>>> m = probability_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]))
>>> m["roc_auc"], round(m["ece"], 3)
(1.0, 0.15)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import average_precision_score, roc_auc_score

from models.risk.calibration import brier_score, expected_calibration_error, log_loss


def probability_metrics(y: ArrayLike, p: ArrayLike) -> dict[str, Any]:
    """n, positives, base rate, mean prediction, ROC AUC, AP, Brier, log loss, ECE (10 uniform / quantile bins)."""
    yy = np.asarray(y).astype(np.int8)
    pp = np.asarray(p, dtype=np.float64)
    both = 0 < yy.sum() < len(yy)
    return {
        "n": int(len(yy)), "positives": int(yy.sum()),
        "base_rate": float(yy.mean()) if len(yy) else float("nan"),
        "mean_prediction": float(pp.mean()) if len(pp) else float("nan"),
        "roc_auc": float(roc_auc_score(yy, pp)) if both else float("nan"),
        "average_precision": float(average_precision_score(yy, pp)) if both else float("nan"),
        "brier": brier_score(yy, pp), "log_loss": log_loss(yy, pp),
        "ece": expected_calibration_error(yy, pp) if len(yy) else float("nan"),
        "ece_quantile": expected_calibration_error(yy, pp, strategy="quantile") if len(yy) else float("nan"),
    }
