"""The alert policy and its cost; calibration metrics and calibrators."""

from __future__ import annotations

import numpy as np

from models.risk.alerts import CostModel, choose_alerts, score_alerts
from models.risk.calibration import (IsotonicCalibrator, PlattCalibrator, compare_methods,
                                     expected_calibration_error, reliability_curve)

D = 86_400_000


def test_daily_top_k_respects_budget_and_cooldown():
    # 1000 vehicles, 14 days; budget 7 per 1,000 per week = 1 alert per day
    vins = np.repeat(np.array([f"V{i:04d}" for i in range(1000)]), 14)
    day = np.tile(np.arange(14), 1000)
    risk = np.where(vins == "V0007", 0.9, 0.01) + np.where(vins == "V0003", 0.5, 0.0) + day * 1e-5
    alert = choose_alerts(vins, day, risk, budget=7.0, cooldown_days=10)
    assert alert.sum() == 14
    first = sorted(zip(day[alert].tolist(), vins[alert].tolist()))[:2]
    assert first == [(0, "V0007"), (1, "V0003")]                   # V0007 is in cooldown on day 1
    assert ((vins == "V0007") & alert).sum() == 2                   # again on day 10


def test_tiebreak_orders_equal_risks():
    # 100 vehicles, one day, budget 70 per 1,000 per week = 1 alert; all share the same (stepwise) risk
    vins = np.array([f"V{i:03d}" for i in range(100)])
    day = np.zeros(100, dtype=np.int64)
    risk = np.full(100, 0.2)
    assert choose_alerts(vins, day, risk, budget=70.0, cooldown_days=30).nonzero()[0].tolist() == [0]
    raw = np.zeros(100)
    raw[42] = 1.5
    alert = choose_alerts(vins, day, risk, budget=70.0, cooldown_days=30, tiebreak=raw)
    assert alert.nonzero()[0].tolist() == [42]
    risk[7] = 0.3                                                    # the risk itself still comes first
    alert = choose_alerts(vins, day, risk, budget=70.0, cooldown_days=30, tiebreak=raw)
    assert alert.nonzero()[0].tolist() == [7]


def test_costs_of_caught_late_missed_and_needless():
    cost = CostModel(missed=500, late=200, needless=10, true_alert=0, lead_days=3)
    vins = np.array(["A"] * 40 + ["B"] * 40 + ["C"] * 40 + ["E"] * 40)
    days = np.tile(np.arange(40), 4)
    now = (days + 1) * D
    alert = np.zeros(160, bool)
    alert[(vins == "A") & (days == 19)] = True       # A fails at day 30 -> lead 10 d: caught
    alert[(vins == "B") & (days == 28)] = True       # B fails at day 30.5 -> lead 1.5 d: late
    alert[(vins == "E") & (days == 5)] = True        # E never fails: needless
    failures = [("A", 30 * D), ("B", 30 * D + D // 2), ("C", 31 * D), ("Z", 31 * D)]
    out = score_alerts(vins, now, alert, failures, horizon_days=20, cost=cost)
    assert (out.failures, out.caught, out.late, out.missed) == (3, 1, 1, 1)
    assert (out.alerts, out.true_alerts, out.needless_alerts) == (3, 2, 1)
    assert out.cost == 200 + 500 + 10
    assert out.cost_no_alerts == 1500 and out.lead_days == [10.0]
    assert out.precision == 2 / 3 and out.recall == 1 / 3
    # a failure before first decision + horizon cannot be judged fairly and is not counted
    early = score_alerts(vins, now, alert, [("A", 5 * D)], horizon_days=20, cost=cost)
    assert early.failures == 0


def test_ece_and_reliability():
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 1, 200_000)
    y = rng.random(200_000) < p
    assert expected_calibration_error(y, p) < 0.01
    assert abs(expected_calibration_error(y, np.clip(p + 0.1, 0, 1)) - 0.09) < 0.02
    mp, fr, n = reliability_curve(y, p, 10)
    assert len(mp) == 10 and n.sum() == 200_000 and np.allclose(mp, fr, atol=0.01)
    assert expected_calibration_error(y, p, strategy="quantile") < 0.01


def test_platt_and_isotonic_recover_a_known_map():
    rng = np.random.default_rng(2)
    s = rng.normal(0, 2, 50_000)
    true_p = 1 / (1 + np.exp(-(0.5 * s - 3)))
    y = (rng.random(50_000) < true_p).astype(int)
    platt = PlattCalibrator().fit(s, y)
    assert abs(platt.a_ - 0.5) < 0.05 and abs(platt.b_ + 3) < 0.15
    iso = IsotonicCalibrator().fit(s, y)
    q = iso.transform(np.sort(s))
    assert np.all(np.diff(q) >= 0)
    res = compare_methods(s, y, rng.integers(0, 50, 50_000))
    assert set(res) == {"isotonic", "sigmoid"} and all(r["ece"] < 0.01 for r in res.values())


def test_threshold_policy_and_its_choice_on_a_window():
    from models.risk.alerts import bayes_threshold, choose_threshold, threshold_alerts

    assert bayes_threshold(CostModel()) == 0.02
    vins = np.repeat(np.array(["A", "B", "C"]), 40)
    day = np.tile(np.arange(40), 3)
    risk = np.where(vins == "A", 0.3, np.where(vins == "B", 0.04, 0.001))
    alert = threshold_alerts(vins, day, risk, 0.02, cooldown_days=30)
    assert sorted(zip(vins[alert].tolist(), day[alert].tolist())) == [("A", 0), ("A", 30), ("B", 0), ("B", 30)]
    # over 70 days A fails on day 50 (caught by its day-30 alert); B never fails: the best threshold is above B's
    vins = np.repeat(np.array(["A", "B", "C"]), 70)
    day = np.tile(np.arange(70), 3)
    risk = np.where(vins == "A", 0.3, np.where(vins == "B", 0.04, 0.001))
    now = (day + 1) * D
    best, costs = choose_threshold(vins, day, now, risk, [("A", 50 * D)], 30, CostModel())
    assert 0.04 <= best < 0.3 and costs[str(best)] == 2 * 10       # two needless checks of A (days 0, 60), none of B
    assert costs["0.02"] == 2 * 10 + 3 * 10 and costs["1.01"] == 500
