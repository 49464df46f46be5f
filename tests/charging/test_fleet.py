"""Decomposition over sites: independent per-site LPs, the fleet wrapper, and a scale smoke test."""

from __future__ import annotations

import time

import pytest

from models.charging import PlanConfig, plan_fleet, plan_site
from models.charging.synthetic import synthetic_fleet
from tests.charging._helpers import assert_caps


def test_fleet_equals_per_site_plans_and_respects_caps():
    sites, reqs, sigs, start = synthetic_fleet(4, 30, seed=3)
    fp = plan_fleet(sites, reqs, sigs, start)
    assert [p.site_id for p in fp.plans] == [s.id for s in sites] and fp.n_vehicles == 120
    by_site = {s.id: [r for r in reqs if r.site_id == s.id] for s in sites}
    for site, sig, plan in zip(sites, sigs, fp.plans):
        assert_caps(plan, site, by_site[site.id])
        alone = plan_site(site, by_site[site.id], sig, start)
        assert alone.metrics.cost_usd == pytest.approx(plan.metrics.cost_usd, rel=1e-9)
    dr_site = fp.plans[0]  # every tenth site has a DR event halving the cap at 18:00 local
    assert min(dr_site.cap_kw) == pytest.approx(round(sites[0].cap_kw / 2, 1))
    edf = plan_fleet(sites, reqs, sigs, start, method="edf")
    assert sum(p.metrics.delivered_kwh for p in edf.plans) <= sum(p.metrics.delivered_kwh for p in fp.plans) + 1e-6


def test_fleet_rejects_unknown_sites_and_missing_signals():
    sites, reqs, sigs, start = synthetic_fleet(2, 3, seed=1)
    with pytest.raises(ValueError, match="is not one of the sites"):
        plan_fleet(sites[:1], reqs, sigs, start)
    with pytest.raises(ValueError, match="signals has no GridSignals for site 'site-001'"):
        plan_fleet(sites, reqs, sigs[:1], start)


def test_scale_smoke_1000_vehicles_well_under_budget():
    sites, reqs, sigs, start = synthetic_fleet(10, 100, seed=11)
    t = time.perf_counter()
    fp = plan_fleet(sites, reqs, sigs, start, PlanConfig())
    elapsed = time.perf_counter() - t
    assert fp.n_vehicles == 1000 and all(p.metrics.status == "optimal" for p in fp.plans)
    assert elapsed < 3.0  # the full 10,000 x 96 benchmark (bench/charging.py) takes ~2-3 s on one core
    assert 1 - fp.unmet_kwh / sum(p.metrics.need_kwh for p in fp.plans) > 0.95
