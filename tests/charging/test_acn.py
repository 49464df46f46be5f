"""The real Caltech ACN month: loads, and the published uncontrolled peak is reproduced."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pytest

from models.charging import PlanConfig, acn_requests, acn_site, load_acn_sessions, load_tariff, plan_site, \
    tariff_signals
from models.charging.acn import ACN_TIMEZONE
from models.charging.heuristics import heuristic_power
from models.charging.outcome import site_load
from models.charging.problem import build_problem


def test_csv_loads_954_sessions():
    s = load_acn_sessions()
    assert len(s) == 954 and len({x.station_id for x in s}) == 47
    assert sum(x.requested_kwh for x in s) == pytest.approx(8900.52, abs=0.01)
    assert {x.max_kw for x in s} == {6.6}
    assert all(x.departure > x.arrival for x in s)
    assert s[0].arrival.isoformat() == "2019-03-01T06:20:00-08:00"
    # periods are wall-clock 5-min indices; after the DST change the UTC offset is -07:00
    late = s[-1]
    assert late.arrival.utcoffset() == timedelta(hours=-7)
    wall = datetime(2019, 3, 1) + timedelta(minutes=5 * late.arrival_period)
    assert wall == late.arrival.replace(tzinfo=None)


def test_uncontrolled_month_peak_matches_published_99kw():
    sessions = load_acn_sessions()
    site = acn_site(sessions, 50.0)
    reqs = acn_requests(sessions, site.id)
    start = datetime(2019, 3, 1, tzinfo=site.tz)
    n = int(np.ceil((max(r.departure for r in reqs).timestamp() - start.timestamp()) / 300))
    grid = tariff_signals(site.id, load_tariff("sce_tou_ev_4_march_2019"), ACN_TIMEZONE, date(2019, 3, 1), 32,
                          slot_minutes=5, demand_charge_scope="all")
    prob = build_problem(site, reqs, grid, start, PlanConfig(slot_minutes=5, n_slots=n, efficiency=1.0))
    load = site_load(prob, heuristic_power(prob, "uncontrolled"))
    assert load.max() == pytest.approx(99.0, abs=0.01)  # 15 stations at 6.6 kW; ACN-Sim reports ~99 kW
    edf = site_load(prob, heuristic_power(prob, "edf"))
    assert edf.max() == pytest.approx(50.0) and edf.sum() == pytest.approx(load.sum(), rel=0.01)


def test_lp_on_a_real_weekday_under_a_tight_cap():
    sessions = [s for s in load_acn_sessions() if s.arrival.date() == date(2019, 3, 20)]  # 53 sessions
    site = acn_site(load_acn_sessions(), 30.0)
    reqs = acn_requests(sessions, site.id)
    start = datetime(2019, 3, 20, tzinfo=site.tz)
    grid = tariff_signals(site.id, load_tariff("sce_tou_ev_4_march_2019"), ACN_TIMEZONE, date(2019, 3, 20), 2,
                          slot_minutes=5, demand_charge_scope="all")
    plan = plan_site(site, reqs, grid, start, PlanConfig(slot_minutes=5, n_slots=288, efficiency=1.0))
    assert len(sessions) == 53 and plan.metrics.max_cap_excess_kw == 0.0
    assert max(plan.site_load_kw) <= 30.0 + 1e-9
    assert plan.metrics.share_met > 0.9
    short = [v for v in plan.vehicles if v.unmet_kwh > 0]
    assert short and all(v.reason_code in ("vehicle_limit", "site_cap") for v in short)
