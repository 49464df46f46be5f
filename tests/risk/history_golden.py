"""The history columns of the risk feature rows of the test fleet, as computed before the feature math was
rewritten in numpy (numba kernel and per-twin Python, commit 8bb0fd7): an independent check of the history
columns, now that the per-twin reference (``twins.history.features``) runs the same batch code.

``python -m tests.risk.history_golden`` rewrites ``GOLDEN`` from the current code (only to adopt an intended
change of a history feature).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from twins.twin import Twin

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "history-golden" / "varied_twins.npy"


def history_rows(data: Path) -> tuple[list[Twin], NDArray[np.float64]]:
    """The varied twins of ``tests/risk/test_features_replay.py`` and the history columns of their
    ``feature_matrix``."""
    from models.risk.features import feature_matrix
    from tests.risk.test_features_replay import _varied_twins
    from twins.history import FEATURE_NAMES

    twins, _ = _varied_twins(data)
    now = max(t.last_seen for t in twins) + 3_600_000
    return twins, feature_matrix(twins, lambda cell, hour: None, now_ms=now)[:, :len(FEATURE_NAMES)]


def main() -> int:
    from tests.risk.conftest import synthetic_history

    with tempfile.TemporaryDirectory() as tmp:
        synthetic_history(Path(tmp))
        _, rows = history_rows(Path(tmp))
    np.save(GOLDEN, rows)
    print(f"{GOLDEN}: {rows.shape}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
