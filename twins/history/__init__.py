"""Operating-history accumulators for a vehicle twin: O(1) per reading, bounded memory.

Public API::

    HistoryState()                                   # msgpack-encodable, default-constructible
    update_history(state, ts_ms, values)             # per applied in-order reading (twin's merged values)
    update_weather(state, ts_ms, air_temp_c, rel_humidity)
    features(state) -> dict[str, float]              # keys and units documented in FEATURES
    rainflow_count(series, hysteresis=0.0)           # ASTM E1049-85 batch reference

One concept per module: ``rainflow``, ``inverter``, ``battery``, ``motor``,
``lv_battery``, ``usage``, ``daily``, ``weather_exposure``; ``state`` holds the
entry points and their integration rules, ``features`` the feature table.
"""

from twins.history.features import FEATURE_NAMES, FEATURES, FeatureDoc, features
from twins.history.rainflow import rainflow_count
from twins.history.state import (MAX_STEP_S, SLOTS_READ, HistoryState, decode_history, encode_history,
                                 update_history, update_weather)

__all__ = [
    "FEATURES", "FEATURE_NAMES", "FeatureDoc", "HistoryState", "MAX_STEP_S", "SLOTS_READ", "decode_history",
    "encode_history", "features", "rainflow_count", "update_history", "update_weather",
]
