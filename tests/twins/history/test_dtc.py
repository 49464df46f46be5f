"""Trouble-code sightings (``twins.history.dtc``), hand-computed."""

from __future__ import annotations

import math

from twins.history import FEATURE_NAMES, HistoryState, copy_history, features, update_history
from twins.history.dtc import DtcState, update_dtc
from twins.history.features import batch_features, state_inputs
from twins.signals import N_SIGNALS, SLOT

H = 3_600_000
D = 24 * H
_DTC = SLOT["Vehicle.Diagnostics.DTCList"]


def test_last_seen_and_decayed_onsets_by_hand():
    s = DtcState()
    t0 = 1_767_225_600_000
    update_dtc(s, t0, None)                      # unknown: nothing
    update_dtc(s, t0 + H, ["P0A3C"])             # onset 1
    update_dtc(s, t0 + 2 * H, ["P0A3C", "U0100"])  # still active: no onset, seen again
    update_dtc(s, t0 + 3 * H, None)              # unknown keeps the state
    update_dtc(s, t0 + 4 * H, [])                # cleared
    update_dtc(s, t0 + 10 * D + H, ["P0A3C-1"])  # onset 2, ten days after the first (J2012 sub-code)
    assert s.last_seen_ms[0] == t0 + 10 * D + H and s.last_seen_ms[1:] == [0, 0, 0]
    assert math.isclose(s.onsets[0], math.exp(-10 / 30) + 1.0, rel_tol=1e-12)
    now = t0 + 40 * D + H                       # 30 days after the second onset
    inputs = state_inputs(HistoryState(last_ms=now, dtc=s))
    f = dict(zip(FEATURE_NAMES, batch_features(inputs)[0].tolist()))
    assert math.isclose(f["dtc_onsets_30d_P0A3C"], (math.exp(-10 / 30) + 1.0) * math.exp(-1.0), rel_tol=1e-12)
    assert f["dtc_days_since_P0A3C"] == 30.0
    assert math.isnan(f["dtc_days_since_P0A7F"]) and f["dtc_onsets_30d_P0A7F"] == 0.0


def test_history_features_and_copy():
    st = HistoryState()
    values = [None] * N_SIGNALS
    t0 = 1_767_225_600_000
    for k in range(6):                           # hourly readings, P0562 active at hours 1 and 2
        values[_DTC] = ["P0562"] if k in (1, 2) else []
        update_history(st, t0 + k * H, values)
    f = features(st)
    assert f["dtc_days_since_P0562"] == 3 / 24                  # last seen at hour 2, last reading at hour 5
    assert math.isclose(f["dtc_onsets_30d_P0562"], math.exp(-(4 / 24) / 30), rel_tol=1e-12)
    assert math.isnan(f["dtc_days_since_P0A3C"]) and f["dtc_onsets_30d_P0A3C"] == 0.0
    c = copy_history(st)
    c.dtc.last_seen_ms[3] = 1
    assert st.dtc.last_seen_ms[3] == t0 + 2 * H
