"""Alerting under a fixed workshop budget, and its cost (Scania Component X style).

Policy (the same for the model and the baseline): every day, the vehicles of a component
are ranked by predicted risk and the top ones are alerted, as many as the budget allows —
``budget`` alerts per 1,000 vehicles per week, spread evenly over the days (fractional
credit carries over). A vehicle alerted for a component is not alerted for it again
within ``cooldown_days`` (default: the horizon). Rows of a component that is down
(failed, awaiting repair) are never alerted.

A second, cost-driven policy has no budget (:func:`threshold_alerts`): a vehicle is alerted when
its calibrated risk exceeds a threshold — at the Bayes rule ``p · C_missed > C_needless`` a
check pays for itself (:func:`bayes_threshold`, 0.02) — with the same cooldown. The
threshold is chosen per component on the calibration window (:func:`choose_threshold`,
vehicles A after the time cut), by the same procedure for the model and the baseline.

Outcomes, with the constants of :class:`CostModel` (all configurable):

* an alert followed by a failure of that component within the horizon is **true**;
  otherwise it is **needless** (a check that finds nothing): ``needless`` = 10;
* a failure is **caught** if a true alert came at least ``lead_days`` before it
  (``true_alert`` = 0), **late** if the only alerts came later than that
  (``late`` = 200: the vehicle still breaks down, but the part may be ready), and
  **missed** without any alert in the horizon before it (``missed`` = 500).

Only failures whose whole alert window lies inside the decision period count
(``first decision + horizon <= t_f <= last decision + lead``), the same for both models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

DAY_MS = 86_400_000


@dataclass(frozen=True)
class CostModel:
    """Cost constants (arbitrary units; Scania Component X uses 200-500 for late/missed, ~10 for a check)."""

    missed: float = 500.0
    late: float = 200.0
    needless: float = 10.0
    true_alert: float = 0.0
    lead_days: float = 3.0


@dataclass
class AlertOutcome:
    """What a policy did on one component."""

    alerts: int
    true_alerts: int
    needless_alerts: int
    failures: int
    caught: int
    late: int
    missed: int
    cost: float
    cost_no_alerts: float
    vehicle_weeks: float
    lead_days: list[float] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.true_alerts / self.alerts if self.alerts else float("nan")

    @property
    def recall(self) -> float:
        return self.caught / self.failures if self.failures else float("nan")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        lead = d.pop("lead_days")
        d.update(precision=self.precision, recall=self.recall,
                 recall_incl_late=(self.caught + self.late) / self.failures if self.failures else float("nan"),
                 cost_per_1000_vehicle_years=self.cost / self.vehicle_weeks * 52_000 if self.vehicle_weeks else None,
                 lead_days_median=float(np.median(lead)) if lead else None)
        return d


def choose_alerts(vins: NDArray[np.str_], day: NDArray[np.int64], risk: NDArray[np.float64], budget: float,
                  cooldown_days: float, tiebreak: NDArray[np.float64] | None = None) -> NDArray[np.bool_]:
    """Which rows raise an alert under the daily top-k policy (rows: one vehicle-day of one component).

    ``tiebreak`` orders rows of equal ``risk`` (e.g. the uncalibrated score under a stepwise
    isotonic calibration); without it ties go by row order.
    """
    alert = np.zeros(len(day), dtype=bool)
    if len(day) == 0:
        return alert
    last: dict[str, int] = {}
    credit = 0.0
    keys = (-risk, day) if tiebreak is None else (-tiebreak, -risk, day)
    order = np.lexsort(keys)                    # by day, then risk descending
    d_sorted = day[order]
    bounds = np.flatnonzero(np.r_[True, d_sorted[1:] != d_sorted[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:]):
        rows = order[a:b]
        today = int(day[rows[0]])
        credit += budget * len(rows) / 1000.0 / 7.0
        k = int(credit)
        if k <= 0:
            continue
        taken = 0
        for r in rows:
            v = str(vins[r])
            prev = last.get(v)
            if prev is not None and today - prev < cooldown_days:
                continue
            alert[r] = True
            last[v] = today
            taken += 1
            if taken == k:
                break
        credit -= taken
    return alert


#: Thresholds tried on the calibration window by :func:`choose_threshold` (with the Bayes one added).
THRESHOLD_GRID: tuple[float, ...] = (0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2,
                                     0.3, 0.5, 0.75, 1.01)


def bayes_threshold(cost: CostModel) -> float:
    """Alert when p · C_missed > C_needless: the risk at which a check pays for itself (0.02 by default)."""
    return cost.needless / cost.missed


def threshold_alerts(vins: NDArray[np.str_], day: NDArray[np.int64], risk: NDArray[np.float64], threshold: float,
                     cooldown_days: float) -> NDArray[np.bool_]:
    """Cost-driven policy, no budget: alert every vehicle-day whose risk exceeds ``threshold``, at most once
    per ``cooldown_days`` per vehicle (rows: one vehicle-day of one component)."""
    alert = np.zeros(len(day), dtype=bool)
    cand = np.flatnonzero(risk > threshold)
    if not len(cand):
        return alert
    cand = cand[np.lexsort((day[cand], vins[cand]))]
    last_vin, last_day = None, 0
    for r, v, d in zip(cand.tolist(), vins[cand].tolist(), day[cand].tolist()):
        if v != last_vin or d - last_day >= cooldown_days:
            alert[r] = True
            last_vin, last_day = v, d
    return alert


def choose_threshold(vins: NDArray[np.str_], day: NDArray[np.int64], now_ms: NDArray[np.int64],
                     risk: NDArray[np.float64], failures: Sequence[tuple[str, int]], horizon_days: float,
                     cost: CostModel) -> tuple[float, dict[str, float]]:
    """The threshold of :func:`threshold_alerts` with the lowest cost on these rows (the calibration window;
    ties go to the higher threshold, fewer alerts), and the cost of every candidate."""
    costs = {}
    for t in sorted(set(THRESHOLD_GRID) | {bayes_threshold(cost)}):
        alert = threshold_alerts(vins, day, risk, t, horizon_days)
        costs[t] = score_alerts(vins, now_ms, alert, failures, horizon_days, cost).cost
    best = min(costs.values())
    return max(t for t, c in costs.items() if c == best), {str(t): c for t, c in costs.items()}


def score_alerts(vins: NDArray[np.str_], now_ms: NDArray[np.int64], alert: NDArray[np.bool_],
                 failures: Sequence[tuple[str, int]], horizon_days: float, cost: CostModel) -> AlertOutcome:
    """Outcome of the alerts (rows ``alert``) against the failures ``(vin, time_ms)`` of the component."""
    h = int(round(horizon_days * DAY_MS))
    lead = int(round(cost.lead_days * DAY_MS))
    by_vin: dict[str, list[int]] = {}
    for v, t in failures:
        by_vin.setdefault(v, []).append(int(t))
    for ts in by_vin.values():
        ts.sort()
    alert_times: dict[str, list[int]] = {}
    true = needless = 0
    for v, t in zip(vins[alert].tolist(), now_ms[alert].tolist()):
        alert_times.setdefault(v, []).append(t)
        fs = by_vin.get(v, ())
        if any(t < f <= t + h for f in fs):
            true += 1
        else:
            needless += 1
    n_vehicles_days = len(now_ms)
    first, last = (int(now_ms.min()), int(now_ms.max())) if len(now_ms) else (0, -1)
    counted = caught = late = missed = 0
    leads: list[float] = []
    in_eval = set(vins.tolist())
    for v, fs in by_vin.items():
        if v not in in_eval:
            continue
        for f in fs:
            if not first + h <= f <= last + lead:
                continue
            counted += 1
            before = [t for t in alert_times.get(v, ()) if f - h <= t < f]
            timely = [t for t in before if f - t >= lead]
            if timely:
                caught += 1
                leads.append((f - min(timely)) / DAY_MS)
            elif before:
                late += 1
            else:
                missed += 1
    total = (true * cost.true_alert + needless * cost.needless + late * cost.late + missed * cost.missed)
    return AlertOutcome(alerts=true + needless, true_alerts=true, needless_alerts=needless, failures=counted,
                        caught=caught, late=late, missed=missed, cost=float(total),
                        cost_no_alerts=float(counted * cost.missed), vehicle_weeks=n_vehicles_days / 7.0,
                        lead_days=leads)
