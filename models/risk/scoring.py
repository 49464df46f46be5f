"""Batch scoring of twins: feature rows, probabilities and top features, as the ``RiskState`` each twin stores.

One call per batch (the stream's scorer and the benchmark use it): the feature rows come
from :func:`models.risk.features.feature_matrix` (the code training used), every
component model walks its trees once per row for probability and explanation
(:meth:`models.risk.artifact.RiskModelSet.explain`), and the states are built from whole
arrays (``tolist``), not row by row. All states of a batch share one ``components`` list.
The stream calls it as::

    states = score_twins(model_set, due_twins, exposure_cache, now_ms=now, in_service_ms=[...])
    for twin, state in zip(due_twins, states):
        twin.risk = state
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from models.risk.artifact import RiskModelSet
from models.risk.exposure import ExposureCache
from models.risk.features import feature_matrix, paused_gc
from twins.maintenance import COMPONENTS as LOG_COMPONENTS
from twins.maintenance import ComponentLog, component_age_days
from twins.residency import HourlyLookup, Residency
from twins.risk import RiskState
from twins.twin import Twin, new_twin


def risk_states(models: RiskModelSet, proba: NDArray[np.float64], idx: NDArray[np.intp], val: NDArray[np.float64],
                scored_ms: int) -> list[RiskState]:
    """One ``RiskState`` per row of :meth:`RiskModelSet.explain`'s arrays."""
    n = len(proba)
    names = models.feature_name_array
    comps = list(models.components)
    version, horizon = models.version, models.horizon_days
    with paused_gc():
        top = names[idx.reshape(n, -1)].tolist()
        contrib = val.reshape(n, -1).tolist()
        return [RiskState(version, scored_ms, horizon, comps, p, t, c)
                for p, t, c in zip(proba.tolist(), top, contrib)]


def component_ages(log: ComponentLog, now_ms: int, in_service_ms: int | None) -> dict[str, float | None] | None:
    """Days since each component's last repair or replacement at ``now_ms``; None (every age is the
    vehicle's) for a vehicle never serviced. The ``component_ages_days`` entry the stream passes."""
    if not any(log.serviced_ms):
        return None
    return {c: component_age_days(log, c, now_ms, in_service_ms) for c in LOG_COMPONENTS}


def warm_up(models: RiskModelSet) -> None:
    """Compile the batch's numba loops (exposure, tree walk) now, not in the first batch:
    a few seconds once per machine (numba caches the machine code), well under a second afterwards."""
    twin = new_twin("WARMUP00000000000")
    twin.residency = Residency(["s000"], [0], [0])
    score_twins(models, [twin], ExposureCache(lambda cell, hour: None), now_ms=0, in_service_ms=[None])


def score_twins(models: RiskModelSet, twins: Sequence[Twin], hourly_lookup: "HourlyLookup | ExposureCache", *,
                now_ms: int, in_service_ms: Sequence[int | None],
                component_ages_days: Sequence[Mapping[str, float | None] | None] | None = None,
                k: int = 3) -> list[RiskState]:
    """Score ``twins`` at ``now_ms``: the ``RiskState`` of each, in order (arguments as ``feature_matrix``)."""
    if not twins:
        return []
    X = feature_matrix(twins, hourly_lookup, now_ms=now_ms, in_service_ms=in_service_ms,
                       component_ages_days=component_ages_days)
    proba, idx, val = models.explain(X, k=k)
    return risk_states(models, proba, idx, val, now_ms)
