"""Battery-health policy: risky batteries get lower power and a lower SoC ceiling, in the plan itself."""

from __future__ import annotations

import pytest

from models.charging import HealthPolicy, PlanConfig, apply_health_policy, plan_site
from tests.charging._helpers import T0, assert_caps, depot, evening_tou, hours, request


def soc_request(vin: str, risk: float | None, charger: str):
    return request(vin, 5.0, 19.0, max_kw=50.0, charger=charger, soc_pct=20.0, target_soc_pct=95.0,
                   capacity_kwh=80.0, battery_risk=risk)


def test_tiers_lower_power_and_soc_ceiling_in_the_plan():
    site = depot(cap_kw=200.0, n_ac=0, n_dc=3, dc_kw=50.0)
    reqs = [soc_request("healthy", 0.05, "dc0"), soc_request("medium", 0.3, "dc1"), soc_request("high", 0.7, "dc2")]
    plan = plan_site(site, reqs, evening_tou(), T0)
    v = {s.vin: s for s in plan.vehicles}
    assert [v[k].power_limit_kw for k in ("healthy", "medium", "high")] == [50.0, 37.5, 25.0]
    assert [v[k].target_soc_pct for k in ("healthy", "medium", "high")] == [95.0, 90.0, 80.0]
    assert v["healthy"].planned_kwh == pytest.approx(0.75 * 80.0, abs=1e-6)
    assert v["medium"].planned_kwh == pytest.approx(0.70 * 80.0, abs=1e-6)
    assert v["high"].planned_kwh == pytest.approx(0.60 * 80.0, abs=1e-6)
    assert v["high"].expected_soc_pct == pytest.approx(80.0, abs=1e-6)
    assert max(v["high"].kw) <= 25.0 + 1e-9
    assert "battery risk 0.70 (high): power <= 25.0 kW, target SoC lowered to 80 %" == v["high"].health_note
    assert v["healthy"].health_note == "" and v["healthy"].unmet_kwh == 0.0
    assert_caps(plan, site, reqs)


def test_health_limit_can_make_a_tight_session_infeasible_and_says_so():
    site = depot(cap_kw=200.0, n_ac=0, n_dc=1, dc_kw=150.0)
    # 40 kWh in 30 min needs ~87 kW; the high-risk limit is 50 % of 120 kW = 60 kW
    r = request("risky", 5.0, 5.5, max_kw=120.0, charger="dc0", energy_kwh=40.0, battery_risk=0.9)
    v = plan_site(site, [r], evening_tou(demand_charge=0.0), T0).vehicles[0]
    assert v.reason_code == "vehicle_limit"
    assert v.reason == ("needs 40.0 kWh but can receive at most 27.6 kWh before departure 17:30 at 60.0 kW "
                        "(battery-health limit)")


def test_thresholds_are_parameters_and_energy_requests_use_soc_when_known():
    strict = HealthPolicy(medium_risk=0.1, high_risk=0.25, high_power_factor=0.4, high_soc_ceiling_pct=70.0)
    r = request("E", 5.0, 9.0, max_kw=100.0, energy_kwh=50.0, soc_pct=40.0, capacity_kwh=60.0, battery_risk=0.3)
    d = apply_health_policy(r, strict)
    assert (d.tier, d.power_limit_kw, d.session_need_kwh, d.target_soc_pct) == ("high", 40.0, 18.0, 70.0)
    default = apply_health_policy(r, HealthPolicy())
    assert (default.tier, default.power_limit_kw, default.session_need_kwh) == ("medium", 75.0, 30.0)
    blind = apply_health_policy(request("B", 5.0, 9.0, energy_kwh=50.0, battery_risk=0.8), HealthPolicy())
    assert blind.session_need_kwh == 50.0 and "not applied" in blind.note
    plan = plan_site(depot(100.0, n_dc=1), [r], evening_tou(), T0, PlanConfig(health=strict))
    assert plan.vehicles[0].power_limit_kw == 40.0 and plan.vehicles[0].planned_kwh == pytest.approx(18.0)


def test_policy_validation_names_the_field():
    with pytest.raises(ValueError, match=r"HealthPolicy.medium_risk 0.6 must be <= high_risk 0.5"):
        HealthPolicy(medium_risk=0.6)
    with pytest.raises(ValueError, match=r"HealthPolicy.high_power_factor must be in \(0, 1\], got 0"):
        HealthPolicy(high_power_factor=0)
