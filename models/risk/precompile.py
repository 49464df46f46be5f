"""Fill numba's cache for the risk scoring loops: ``python -m models.risk.precompile [ARTIFACT]``.

The compiled loops (weather exposure, tree walk; the feature math is numpy) are
compiled on first use and cached next to their modules (``__pycache__``); on a machine with an
empty cache that first use takes several seconds. ``make`` runs this once after installing, so workers and
tests start with the cache filled. Without ``ARTIFACT`` the newest committed model
(``models/artifacts/risk``) is used; the machine code does not depend on the model.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from models.risk.artifact import load_model_set
from models.risk.scoring import warm_up

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "risk"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    found = sorted(ARTIFACTS.glob("risk-*"))
    path = Path(args[0]) if args else (found[-1] if found else None)
    if path is None:
        print("models.risk.precompile: no artifact given and none in models/artifacts/risk; nothing compiled")
        return 0
    started = time.perf_counter()
    warm_up(load_model_set(path))
    print(f"models.risk.precompile: scoring loops compiled and cached in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
