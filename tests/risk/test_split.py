"""Vehicle- and time-disjoint split."""

from __future__ import annotations

import numpy as np

from models.risk.split import CALIB, EVAL, TRAIN, Split, make_split, vin_fraction

D = 86_400_000


def test_no_vehicle_in_train_and_eval_and_stable_assignment():
    vins = [f"VIN{i:014d}" for i in range(500)]
    s = make_split(vins, 0, 300 * D, horizon_days=30, eval_fraction=0.4)
    assert not (s.train_vins & s.eval_vins)
    assert s.train_vins | s.eval_vins == set(vins)
    assert 0.3 < len(s.eval_vins) / 500 < 0.5
    # a VIN's group does not depend on the other VINs
    s2 = make_split(vins[:100], 0, 300 * D, horizon_days=30, eval_fraction=0.4)
    assert s2.eval_vins == s.eval_vins & set(vins[:100])
    assert all(0 <= vin_fraction(v) < 1 for v in vins[:10])


def test_row_roles_respect_the_time_cut():
    vins = [f"VIN{i:014d}" for i in range(60)]
    s = make_split(vins, 0, 100 * D, horizon_days=10, eval_fraction=0.5, train_fraction=0.6)
    assert s.train_end_ms == 60 * D
    row_vins = np.repeat(np.array(vins), 100)
    now = np.tile((np.arange(100) + 1) * D, 60)
    usable = now + 10 * D <= 100 * D
    roles = s.roles(row_vins, now, usable)
    train, calib, ev = roles == TRAIN, roles == CALIB, roles == EVAL
    assert set(row_vins[train]) <= s.train_vins and set(row_vins[calib]) <= s.train_vins
    assert set(row_vins[ev]) == s.eval_vins
    # training labels end before the cut; calibration starts after it
    assert (now[train] + 10 * D).max() <= s.train_end_ms
    assert now[calib].min() > s.train_end_ms
    assert now[calib].min() > (now[train] + 10 * D).max() - 1
    assert not (roles[~usable] != 0).any()
    assert Split.from_json(s.to_json()) == s


def test_artifact_split_is_disjoint(trained):
    from models.risk.artifact import load_split

    s = Split.from_json(load_split(trained.artifact))
    assert not (s.train_vins & s.eval_vins)
    assert len(s.train_vins) + len(s.eval_vins) == 56
    assert s.data_start_ms < s.train_end_ms < s.data_end_ms
