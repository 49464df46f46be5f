"""The risk a twin carries: per component the calibrated failure probability and why.

Written by the stream's batched scorer (``streams/risk_scoring.py``) with the model
set of ``models.risk``; pure data here.
"""

from __future__ import annotations

from typing import Any

import msgspec


class RiskState(msgspec.Struct, array_like=True, gc=False):
    """Scores of one model version at one time. ``probability[i]`` belongs to ``components[i]``."""

    version: str
    scored_ms: int
    horizon_days: float
    components: list[str]
    probability: list[float]
    top_features: list[list[tuple[str, float]]]


def risk_view(risk: RiskState | None) -> dict[str, Any] | None:
    """JSON-ready: one entry per component, highest probability first."""
    if risk is None:
        return None
    comps = sorted(zip(risk.components, risk.probability, risk.top_features), key=lambda c: -c[1])
    return {
        "model_version": risk.version,
        "scored_ms": risk.scored_ms,
        "horizon_days": risk.horizon_days,
        "components": [
            {"component": c, "probability": round(p, 6), "horizon_days": risk.horizon_days,
             "top_features": [{"feature": f, "contribution": round(v, 4)} for f, v in top]}
            for c, p, top in comps
        ],
    }
