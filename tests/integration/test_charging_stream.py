"""Charging through the real broker: a plug-in request and grid signals produce a site schedule;
a demand-response event re-plans under the lowered cap; the request is completed from the twin; several
events sent together (a meter reading, a plug-out, a plug-in) make one re-plan."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from kafka import KafkaConsumer, KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Stack, http_get, wait_until

pytestmark = pytest.mark.integration

TZ = ZoneInfo("America/New_York")
VIN = "1G1FZ6S09L4100001"
SITE = {"sites": [{"id": "depot-a", "timezone": "America/New_York", "cap_kw": 30.0,
                   "location": {"lat": 25.8, "lon": -80.2667}, "tariff": "sce_tou_ev_8_june_2019",
                   "chargers": [{"id": "ac1", "max_kw": 11.0}, {"id": "ac2", "max_kw": 11.0},
                                {"id": "ac3", "max_kw": 11.0}]}]}


def send(stack: Stack, topic: str, key: str, *docs: dict) -> None:
    producer = KafkaProducer(bootstrap_servers=stack.broker.bootstrap)
    for doc in docs:
        producer.send(topic, key=key.encode(), value=json.dumps(doc).encode())
    producer.flush()
    producer.close()


def test_request_and_grid_signal_produce_schedules(stack: Stack, tmp_path):
    sites = tmp_path / "sites.json"
    sites.write_text(json.dumps(SITE))
    stack.settings = stack.settings.model_copy(update={"charging_sites": sites})
    port = stack.start_worker()
    s = stack.settings
    # yesterday noon: every message time lies in the past (times ahead of the worker's clock are dead-lettered)
    t0 = (datetime.now(TZ) - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    # the twin knows the vehicle: a Bolt EV at 25 % SoC (the request below omits SoC, capacity and power)
    send(stack, s.topic_telemetry, VIN, {"schema": 1, "vin": VIN, "ts": int(t0.timestamp() * 1000), "seq": 0,
                                         "signals": {"Vehicle.Powertrain.TractionBattery.StateOfCharge.Current": 25.0,
                                                     "Vehicle.VehicleIdentification.Model": "Bolt EV"}})
    wait_until(lambda: http_get(stack.url(port, f"/twins/{VIN}"))[0] == 200, 30, what="twin exists")
    prices = [0.45 if 16 <= ((12 + i / 4) % 24) < 21 else 0.12 for i in range(96)]
    send(stack, s.topic_grid, "depot-a", {"type": "grid", "at": t0.isoformat(), "signals": {
        "site_id": "depot-a", "start": t0.isoformat(), "prices_per_kwh": prices, "slot_minutes": 15,
        "peak_windows": [{"start": (t0 + timedelta(hours=4)).isoformat(), "end": (t0 + timedelta(hours=9)).isoformat()}],
        "demand_charge_per_kw": 12.0}})
    consumer = KafkaConsumer(s.topic_charging_schedules, bootstrap_servers=stack.broker.bootstrap, group_id=None,
                             auto_offset_reset="earliest", consumer_timeout_ms=30_000)

    def next_plan(trigger: str) -> dict:
        for rec in consumer:  # the two input topics are not ordered against each other: wait for each effect
            plan = json.loads(rec.value)
            assert plan["site_id"] == "depot-a" and rec.key == b"depot-a"
            if plan["trigger"].startswith(trigger):
                return plan
        raise AssertionError(f"no {trigger} plan within 30 s")

    assert next_plan("grid")["vehicles"] == []
    plug_in = t0 + timedelta(hours=5)  # 17:00, inside the evening peak
    send(stack, s.topic_charging_requests, "depot-a", {"type": "plug_in", "at": plug_in.isoformat(), "request": {
        "vin": VIN, "site_id": "depot-a", "plug_in": plug_in.isoformat(),
        "departure": (t0 + timedelta(hours=19)).isoformat(), "target_soc_pct": 85.0, "charger_id": "ac1"}})
    next_plan("plug_in")
    send(stack, s.topic_charging_requests, "depot-a", {"type": "plug_in", "at": plug_in.isoformat(), "request": {
        "vin": "5YJ3E1EA7KF000001", "site_id": "depot-a", "plug_in": plug_in.isoformat(),
        "departure": (t0 + timedelta(hours=19)).isoformat(), "max_kw": 11.0, "energy_kwh": 40.0,
        "charger_id": "ac2"}})
    send(stack, s.topic_charging_requests, "nowhere", {"type": "plug_out", "site_id": "nowhere", "vin": VIN,
                                                        "at": plug_in.isoformat()})
    plan = next_plan("plug_in")
    slot_h = plan["slot_minutes"] / 60
    assert max(plan["site_load_kw"]) <= 30.0 + 1e-6
    bolt = next(v for v in plan["vehicles"] if v["vin"] == VIN)
    # completed from the twin: 25 % -> 85 % of a 66 kWh Bolt, 7.2 kW on-board charger
    assert bolt["requested_kwh"] == pytest.approx(0.60 * 66.0, abs=0.01)
    assert bolt["power_limit_kw"] == pytest.approx(7.2)
    assert bolt["unmet_kwh"] == pytest.approx(0.0, abs=1e-3)
    starts = [datetime.fromisoformat(plan["horizon_start"]) + timedelta(minutes=plan["slot_minutes"] * i)
              for i in range(len(plan["site_load_kw"]))]
    in_peak = [kw for t, kw in zip(starts, plan["site_load_kw"]) if 16 <= t.astimezone(TZ).hour < 21]
    assert max(in_peak) < 1e-6, "the LP moves all charging out of the 16:00-21:00 peak window"
    assert sum(plan["site_load_kw"]) * slot_h >= (0.60 * 66.0 + 40.0) / 0.92 - 0.01

    # demand response: 22:00-02:00 capped at 8 kW -> a re-plan that respects it
    dr_start, dr_end = t0 + timedelta(hours=10), t0 + timedelta(hours=14)
    send(stack, s.topic_grid, "depot-a", {"type": "dr_event", "site_id": "depot-a", "at": plug_in.isoformat(),
                                          "event": {"id": "dr1", "start": dr_start.isoformat(),
                                                    "end": dr_end.isoformat(), "cap_kw": 8.0}})
    replan = next_plan("dr_event")

    # one flush of three events for the site: the agent takes them as one batch -> one re-plan, one plan
    later = plug_in + timedelta(minutes=30)
    send(stack, s.topic_charging_requests, "depot-a",
         {"type": "meter", "site_id": "depot-a", "vin": VIN, "delivered_kwh": 2.0, "at": later.isoformat()},
         {"type": "plug_out", "site_id": "depot-a", "vin": "5YJ3E1EA7KF000001", "at": later.isoformat()},
         {"type": "plug_in", "at": later.isoformat(), "request": {
             "vin": "5YJ3E1EA7KF000002", "site_id": "depot-a", "plug_in": later.isoformat(),
             "departure": (t0 + timedelta(hours=19)).isoformat(), "max_kw": 11.0, "energy_kwh": 20.0,
             "charger_id": "ac3"}})
    batched = next_plan("batch")
    consumer.close()
    assert batched["trigger"] == "batch:3"
    assert sorted(v["vin"] for v in batched["vehicles"]) == [VIN, "5YJ3E1EA7KF000002"]
    assert next(v for v in batched["vehicles"] if v["vin"] == VIN)["delivered_before_kwh"] == pytest.approx(2.0)
    assert replan["trigger"].startswith("dr_event")
    starts = [datetime.fromisoformat(replan["horizon_start"]) + timedelta(minutes=replan["slot_minutes"] * i)
              for i in range(len(replan["site_load_kw"]))]
    during = [kw for t, kw in zip(starts, replan["site_load_kw"]) if dr_start <= t < dr_end]
    assert during and max(during) <= 8.0 + 1e-6
    assert all(v["unmet_kwh"] == pytest.approx(0.0, abs=1e-3) for v in replan["vehicles"])

    assert http_get(stack.url(port, "/sites"))[1]["sites"][0]["id"] == "depot-a"
    status, body = http_get(stack.url(port, "/sites/depot-a/schedule"))
    assert status == 200 and body["trigger"] == batched["trigger"]
    status, m = http_get(stack.url(port, "/sites/depot-a/plan-metrics"))
    assert status == 200 and m["vehicles"] == 2 and m["unmet_vehicles"] == 0 and m["peak_kw"] <= 30.0 + 1e-6
    exported = {s.name: s.value for f in text_string_to_metric_families(http_get(stack.url(port, "/metrics"))[1])
                for s in f.samples if s.name.startswith("fleet_charging_site_") and s.labels == {"site": "depot-a"}}
    assert exported == {"fleet_charging_site_peak_kw": pytest.approx(m["peak_kw"]),
                        "fleet_charging_site_cap_kw": pytest.approx(max(body["cap_kw"])),
                        "fleet_charging_site_cap_excess_kw": pytest.approx(m["max_cap_excess_kw"])}
    assert http_get(stack.url(port, "/sites/elsewhere/schedule"))[0] == 404
    dead = f'fleet_dlq_records_total{{reason="unknown_site",topic="{s.topic_charging_requests}"}} 1.0'
    wait_until(lambda: dead in http_get(stack.url(port, "/metrics"))[1],
               30, what="the unknown site's message dead-lettered")
