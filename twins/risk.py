"""The risk a twin carries: per component the calibrated failure probability and why.

Written by the stream's batched scorer (``models.risk.scoring.score_twins``) with the
model set of ``models.risk``; pure data here. The top contributing features are kept
flat (component-major, ``k`` per component) so that a batch of states is built from
two array conversions instead of a nested list per twin.

>>> r = RiskState("m1", 0, 30.0, ["inverter", "lv_battery"], [0.2, 0.01],
...               ["a", "b", "c", "d"], [0.5, 0.1, 0.03, -0.2])
>>> r.top(1)
[('c', 0.03), ('d', -0.2)]
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
    top_features: list[str]          # k names per component, component-major, risk-raising first
    top_contributions: list[float]   # their contributions to the log-odds, aligned with top_features

    def top(self, i: int) -> list[tuple[str, float]]:
        """``(feature, Δ log-odds)`` pairs of component ``components[i]``, largest first."""
        k = len(self.top_features) // len(self.components) if self.components else 0
        return list(zip(self.top_features[i * k:(i + 1) * k], self.top_contributions[i * k:(i + 1) * k]))


def risk_view(risk: RiskState | None) -> dict[str, Any] | None:
    """JSON-ready: one entry per component, highest probability first."""
    if risk is None:
        return None
    comps = sorted(((c, p, risk.top(i)) for i, (c, p) in enumerate(zip(risk.components, risk.probability))),
                   key=lambda c: -c[1])
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
