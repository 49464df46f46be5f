"""Operating-history accumulators for a vehicle twin: O(1) per reading, bounded memory.

Public API::

    HistoryState()                                   # msgpack-encodable, default-constructible
    update_history(state, ts_ms, values)             # per applied in-order reading (twin's merged values)
    features(state) -> dict[str, float]              # keys and units documented in FEATURES
    batch_features(inputs) -> ndarray                # the same for many rows, from named columns (INPUTS)
    copy_history(state) -> HistoryState              # deep copy (for copy-on-write twins)
    rainflow_count(series, hysteresis=0.0)           # ASTM E1049-85 batch reference

One concept per module: ``rainflow``, ``inverter``, ``battery``, ``motor``,
``lv_battery``, ``usage``, ``daily``; ``state`` holds the entry points and their
integration rules, ``features`` the feature table and its math (numpy, over many rows).
Weather exposure is joined from the weather table instead (``twins.residency``), so it does
not depend on arrival order.
"""

from twins.history.features import FEATURE_NAMES, FEATURES, FeatureDoc, batch_features, features
from twins.history.rainflow import rainflow_count
from twins.history.state import (MAX_STEP_S, SLOTS_READ, HistoryState, copy_history, decode_history,
                                 encode_history, update_history)

__all__ = [
    "FEATURES", "FEATURE_NAMES", "FeatureDoc", "HistoryState", "MAX_STEP_S", "SLOTS_READ", "batch_features",
    "copy_history", "decode_history", "encode_history", "features", "rainflow_count", "update_history",
]
