"""Telemetry and real TMY weather through the real broker: arrival order does not change the twin."""

from __future__ import annotations

import json
import random

import pytest
from kafka import KafkaConsumer, KafkaProducer

from models.simulation import FleetSimulator
from streams.dead_letter import decode_headers
from streams.weather_replay import weather_records
from tests.conftest import Stack, http_get, wait_until
from twins import geohash
from twins.weather import HOUR_MS

pytestmark = pytest.mark.integration

START_MS = 1_783_512_000_000  # 2026-07-08 12:00Z: summer, Miami humid, fleet on the road


def fleet_day() -> tuple[list[dict], list[dict]]:
    sim = FleetSimulator(6, seed=21, start_ms=START_MS, regions=["miami", "greensboro", "sand-point"])
    telemetry = [m for _ in range(36) for m in sim.step(300.0)]  # 3 hours, a message every 5 min
    first_hour = START_MS // HOUR_MS - 2
    weather = [r for batch in weather_records(["miami", "greensboro", "sand-point"], first_hour, 6, 4, 2)
               for r in batch]
    return telemetry, weather


def publish(stack: Stack, telemetry: list[dict], weather: list[dict], weather_first: bool) -> None:
    producer = KafkaProducer(bootstrap_servers=stack.broker.bootstrap, linger_ms=5)
    s = stack.settings

    def send_weather() -> None:
        for r in weather:
            producer.send(s.topic_weather, key=r["cell"].encode(), value=json.dumps(r).encode())
        producer.flush()

    if weather_first:
        send_weather()
    for m in telemetry:
        producer.send(s.topic_telemetry, key=m["vin"].encode(), value=json.dumps(m).encode())
    producer.flush()
    if not weather_first:
        send_weather()
    producer.close()


def settle(stack: Stack, port: int, vins: list[str], n_weather: int) -> dict[str, dict]:
    def weather_done() -> bool:
        metrics = http_get(stack.url(port, "/metrics"))[1]
        return f"fleet_weather_records_total {float(n_weather)}" in metrics

    wait_until(weather_done, 120, what=f"{n_weather} weather records applied")
    views = {}
    for vin in vins:
        def ready(vin: str = vin) -> dict | None:
            status, body = http_get(stack.url(port, f"/twins/{vin}"))
            done = status == 200 and body["messages"]["applied"] == 36
            return body if done and body["weather"]["context"] else None

        views[vin] = wait_until(ready, 60, what=f"twin {vin} with weather")
    return views


def test_weather_join_is_independent_of_arrival_order(stack: Stack, broker, tmp_path_factory):
    telemetry, weather = fleet_day()
    vins = sorted({m["vin"] for m in telemetry})
    port = stack.start_worker()
    bad = dict(weather[0], air_temp_c=150.0)
    publish(stack, telemetry, [bad] + weather, weather_first=True)
    in_order = settle(stack, port, vins, len(weather))
    dead = KafkaConsumer(stack.settings.topic_weather_dlq, bootstrap_servers=broker.bootstrap, group_id=None,
                         auto_offset_reset="earliest", consumer_timeout_ms=10_000)
    rec = next(iter(dead))
    dead.close()
    headers = decode_headers(rec.headers)
    assert json.loads(rec.value) == bad
    assert headers["dlq.field"] == "$.air_temp_c" and "150.0" in headers["dlq.reason"]

    # a second, independent deployment receives telemetry first and weather shuffled afterwards
    from tests.conftest import Stack as _Stack
    import uuid
    from streams.topology import ensure_topics

    tag = uuid.uuid4().hex[:8]
    other = _Stack(broker=broker, tmp=tmp_path_factory.mktemp("other"), settings=stack.settings.model_copy(update={
        "app_id": f"fleet-test-{tag}", "topic_telemetry": f"telemetry-{tag}", "topic_telemetry_dlq": f"telemetry-{tag}.dlq",
        "topic_weather": f"weather-{tag}", "topic_weather_dlq": f"weather-{tag}.dlq"}))
    ensure_topics(other.settings, broker.bootstrap)
    try:
        port2 = other.start_worker()
        shuffled = weather[:]
        random.Random(4).shuffle(shuffled)
        publish(other, telemetry, shuffled, weather_first=False)
        reordered = settle(other, port2, vins, len(weather))
    finally:
        other.stop()

    for vin in vins:
        assert reordered[vin]["weather"] == in_order[vin]["weather"], vin
        assert reordered[vin]["history"] == in_order[vin]["history"], vin
        assert in_order[vin]["history"]["history_updates"] == 36 and in_order[vin]["history"]["batt_ah_throughput"] > 0

    # independent expectation from the published records, for vehicles that stayed in one cell
    observed = {(r["cell"], r["ts"] // HOUR_MS): (r["air_temp_c"], r["rel_humidity_pct"])
                for r in weather if r["ts"] == r["issued"]}
    checked = 0
    for vin in vins:
        cells, hours, lat, lon = set(), set(), None, None
        for m in sorted((m for m in telemetry if m["vin"] == vin), key=lambda m: m["ts"]):
            lat = m["signals"].get("Vehicle.CurrentLocation.Latitude", lat)
            lon = m["signals"].get("Vehicle.CurrentLocation.Longitude", lon)
            cells.add(geohash.encode(lat, lon, 4))
            hours.add(m["ts"] // HOUR_MS)
        if len(cells) != 1:
            continue
        cell = cells.pop()
        obs = [observed[(cell, h)] for h in sorted(hours) if (cell, h) in observed]
        want = {"weather_degree_hours_above_35c": sum(max(0.0, t - 35.0) for t, _ in obs),
                "weather_degree_hours_below_minus10c": sum(max(0.0, -10.0 - t) for t, _ in obs),
                "weather_hours_rh_80": float(sum(1 for _, rh in obs if rh >= 80.0)),
                "weather_hours_observed": float(len(obs))}
        got = in_order[vin]["weather"]["exposure_30d"]
        assert got == pytest.approx(want), vin
        assert in_order[vin]["weather"]["cell"] == cell
        checked += 1
    assert checked >= 3
    # real numbers: a July morning in Miami is humid (TMY RH 97 % at 12-13Z) and 23-30 °C
    miami = [v for v in in_order.values() if v["weather"]["cell"].startswith("dh")]
    assert miami and all(v["weather"]["exposure_30d"]["weather_hours_rh_80"] >= 2 for v in miami)
    for view in miami:
        obs = view["weather"]["context"]["observation"]
        assert 20.0 < obs["air_temp_c"] < 35.0 and obs["ts"] == (START_MS // HOUR_MS + 3) * HOUR_MS
    status, cell = http_get(stack.url(port, f"/weather/{miami[0]['weather']['cell']}"))
    assert status == 200 and cell["source"].startswith("NREL TMY 12839")
    assert http_get(stack.url(port, "/weather/zzzz"))[0] == 404
