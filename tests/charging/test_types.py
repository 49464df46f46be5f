"""Input validation: clear ValueErrors naming the field and value; JSON in, Structs out."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from models.charging import Charger, DemandResponseEvent, GridSignals, PlanConfig, SessionRequest, Site, plan_site
from tests.charging._helpers import T0, depot, evening_tou, hours, request


@pytest.mark.parametrize("build, message", [
    (lambda: Charger("c", 0.0), "Charger.max_kw must be > 0, got 0.0"),
    (lambda: Charger("c", 7.0, "XX"), "Charger.kind must be 'AC' or 'DC', got 'XX'"),
    (lambda: Site("s", "Mars/Olympus", 10.0, (Charger("c", 7.0),)), "Site.timezone must be an IANA time zone, got 'Mars/Olympus'"),
    (lambda: Site("s", "UTC", -1.0, (Charger("c", 7.0),)), "Site.cap_kw must be >= 0, got -1.0"),
    (lambda: Site("s", "UTC", 1.0, (Charger("c", 7.0), Charger("c", 7.0))), "Site.chargers has duplicate ids ['c']"),
    (lambda: request("V", 5, 4), "SessionRequest.departure .* must be after plug_in"),
    (lambda: request("V", 1, 4, battery_risk=1.5), "SessionRequest.battery_risk must be in [0, 1], got 1.5"),
    (lambda: request("V", 1, 4, soc_pct=20.0, target_soc_pct=120.0, capacity_kwh=50.0, energy_kwh=None),
     "SessionRequest.target_soc_pct must be in [0, 100], got 120.0"),
    (lambda: request("V", 1, 4, energy_kwh=5.0, target_soc_pct=80.0), "give energy_kwh or target_soc_pct"),
    (lambda: request("V", 1, 4, energy_kwh=-2.0), "SessionRequest.energy_kwh must be >= 0, got -2.0"),
    (lambda: request("V", 1, 4, max_kw=float("nan")), "SessionRequest.max_kw must be > 0, got nan"),
    (lambda: SessionRequest("V", "s", datetime(2026, 1, 1), datetime(2026, 1, 2), 7.0, energy_kwh=1.0),
     "SessionRequest.plug_in must be a timezone-aware datetime"),
    (lambda: DemandResponseEvent("d", hours(2), hours(1), 5.0), "DemandResponseEvent.end .* must be after start"),
    (lambda: GridSignals("s", T0, (0.1, float("inf"))), r"GridSignals.prices_per_kwh\[1\] must be in \[-0.5, 5\] per kWh, got inf"),
    (lambda: GridSignals("s", T0, (-1.0,)), r"GridSignals.prices_per_kwh\[0\] must be in \[-0.5, 5\] per kWh, got -1.0"),
    (lambda: GridSignals("s", T0, (1e308,)), r"prices_per_kwh\[0\] must be in \[-0.5, 5\] per kWh, got 1e\+308"),
    (lambda: GridSignals("s", T0, (0.1,) * 100_000), "has 100000 slots of 15 min; at most 62 days"),
    (lambda: GridSignals("s", T0, (0.1,), slot_minutes=10**9), "slot_minutes must be a divisor of 1440"),
    (lambda: GridSignals("s", T0, (0.1,), demand_charge_scope="night"), "GridSignals.demand_charge_scope must be"),
    (lambda: PlanConfig(slot_minutes=7), "PlanConfig.slot_minutes must be a positive divisor of 1440, got 7"),
    (lambda: PlanConfig(efficiency=1.2), r"PlanConfig.efficiency must be in \(0, 1\], got 1.2"),
])
def test_validation_messages_name_field_and_value(build, message):
    with pytest.raises(ValueError, match=message if "*" in message or "\\" in message else _escape(message)):
        build()


def _escape(s: str) -> str:
    import re

    return re.escape(s)


def test_site_level_checks():
    site = depot(30.0, n_ac=2)
    with pytest.raises(ValueError, match="SessionRequest.charger_id 'nope' is not a charger of site 'depot'"):
        plan_site(site, [request("A", 5, 9, charger="nope")], evening_tou(), T0)
    with pytest.raises(ValueError, match="charger_id 'ac0' has overlapping sessions A and B"):
        plan_site(site, [request("A", 5, 9, charger="ac0"), request("B", 8, 10, charger="ac0")], evening_tou(), T0)
    with pytest.raises(ValueError, match="SessionRequest.vin 'A' appears twice"):
        plan_site(site, [request("A", 5, 9), request("A", 5, 9)], evening_tou(), T0)
    with pytest.raises(ValueError, match="departure .* is not after the plan start"):
        plan_site(site, [request("A", -5, -1)], evening_tou(), T0)
    with pytest.raises(ValueError, match="GridSignals.site_id 'x' does not match site 'depot'"):
        plan_site(site, [], GridSignals("x", T0, (0.1,)), T0)


def test_json_decoding_validates_too():
    raw = msgspec.json.encode({"vin": "V", "site_id": "s", "plug_in": "2026-03-03T17:00:00-08:00",
                               "departure": "2026-03-04T07:00:00-08:00", "max_kw": 11,
                               "soc_pct": 30, "target_soc_pct": 80, "capacity_kwh": 64.0, "battery_risk": 0.1})
    req = msgspec.json.decode(raw, type=SessionRequest)
    assert req.requested_kwh == pytest.approx(32.0) and req.plug_in.utcoffset() == timedelta(hours=-8)
    bad = raw.replace(b'"max_kw":11', b'"max_kw":-11')
    with pytest.raises(msgspec.ValidationError, match="SessionRequest.max_kw must be > 0, got -11"):
        msgspec.json.decode(bad, type=SessionRequest)
    with pytest.raises(msgspec.ValidationError, match="unknown field `colour`"):
        msgspec.json.decode(raw[:-1] + b',"colour":"red"}', type=SessionRequest)
    assert datetime(2026, 3, 3, tzinfo=timezone.utc) < req.departure
