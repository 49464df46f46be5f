"""Hazard labels on a hand-made maintenance log: horizon, censoring, down time, age reset."""

from __future__ import annotations

import numpy as np

from models.risk.dataset import MaintenanceEvent
from models.risk.labels import EventIndex, make_labels

D = 86_400_000
H = 5


def _index() -> EventIndex:
    ev = [
        MaintenanceEvent("A", "inverter", "failure", 10 * D + 3_600_000, None),      # day 10, 01:00
        MaintenanceEvent("A", "inverter", "replacement", 12 * D + 7_200_000, None),  # day 12, 02:00
        MaintenanceEvent("A", "inverter", "failure", 20 * D, None),                  # exactly midnight of day 20
        MaintenanceEvent("A", "traction_battery", "inspection_ok", 3 * D, None),
        MaintenanceEvent("B", "inverter", "repair", 2 * D, None),
        MaintenanceEvent("B", "lv_battery", "failure", 29 * D, None),                # after B's censoring point
    ]
    return EventIndex(ev)


def test_labels_match_the_hand_computed_ones():
    # snapshots at the end of days 0..29 (T = (day + 1) * D); A observed until day 30, B until day 31
    days = np.arange(30)
    now = (days + 1) * D
    idx = _index()
    lab = make_labels(["A"] * 30, now, idx, "inverter", H, end_ms={"A": 30 * D, "B": 31 * D})
    # failure at 10 d 1 h: positive for T in [10 d 1 h - 5 d, 10 d 1 h) -> T = 6 d .. 10 d  (days 5..9)
    # failure at 20 d 0 h: positive for T in [15 d, 20 d) -> T = 15 d .. 19 d (days 14..18); T = 20 d is not (T < t_f)
    expected_y = np.zeros(30, dtype=int)
    expected_y[5:10] = 1
    expected_y[14:19] = 1
    assert lab.y.tolist() == expected_y.tolist()
    # down between the first failure and its replacement: T = 11 d, 12 d (days 10, 11); T = 13 d is back in service.
    # The second failure has no later replacement: assumed fixed at once, nothing is down after it.
    expected_down = np.zeros(30, dtype=bool)
    expected_down[10:12] = True
    assert lab.down.tolist() == expected_down.tolist()
    # censored: T + 5 d > 30 d  <=>  T > 25 d  <=> days 25..29 — positives or not
    expected_cens = days + 1 + H > 30
    assert lab.censored.tolist() == expected_cens.tolist()
    assert lab.usable.tolist() == (~expected_down & ~expected_cens).tolist()
    assert np.isclose(lab.days_to_failure[0], (10 * D + 3_600_000 - D) / D)
    assert np.isnan(lab.days_to_failure[25])


def test_other_components_and_vehicles_are_independent():
    idx = _index()
    now = (np.arange(30) + 1) * D
    lab = make_labels(["B"] * 30, now, idx, "lv_battery", H, end_ms={"B": 31 * D})
    # B's 12 V failure at day 29 is only visible to rows T in [24 d, 29 d), but those with T + 5 d > 31 d are censored
    assert lab.y.tolist() == [0] * 23 + [1] * 5 + [0] * 2
    assert lab.usable.tolist() == [True] * 26 + [False] * 4
    none = make_labels(["A"] * 30, now, idx, "drive_motor", H, end_ms=40 * D)
    assert not none.y.any() and none.usable.all()


def test_component_age_resets_at_repair_or_replacement():
    idx = _index()
    ages = idx.component_ages_days("A", 12 * D)                      # before the 02:00 replacement
    assert ages["inverter"] is None                                  # never serviced yet: vehicle age applies
    ages = idx.component_ages_days("A", 15 * D + 7_200_000)
    assert ages["inverter"] == 3.0
    assert ages["traction_battery"] is None                          # inspections do not reset the age
    assert idx.component_ages_days("B", 4 * D)["inverter"] == 2.0   # a repair resets it too


def test_scalar_end_and_mixed_vehicle_rows():
    idx = _index()
    vins = np.array(["B", "A", "B", "A"])
    now = np.array([5, 7, 6, 8]) * D
    lab = make_labels(vins, now, idx, "inverter", H, end_ms=100 * D)
    assert lab.y.tolist() == [0, 1, 0, 1]
