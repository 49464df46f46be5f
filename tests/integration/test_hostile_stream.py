"""Hostile records on all five input topics through the real broker (issue 14).

Every record the corpus holds must end applied (or counted duplicate / too late) or in its
topic's dead-letter topic with a bounded reason, the worker's counters must agree with the
dead-letter topics, and the worker must still be up and applying valid data afterwards. The
named defects of the issue (crash loops on a tombstone, deep nesting or invalid UTF-8, a
1 MB record, non-JSON on weather/charging/grid, future times, a poisoned seq, a repair in
9999, grid prices out of bounds, a VIN with a newline, a record on the wrong partition) are
all in the corpus, each with the reason code it must get.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer

from streams.dead_letter import decode_headers
from streams.ingest import partition_of
from tests.conftest import Stack, http_get, wait_until

pytestmark = pytest.mark.integration

VINS = ["1G1FZ6S09L4100001", "1G1FZ6S09L4100002", "1G1FZ6S09L4100003"]
SITE = {"sites": [{"id": "depot-a", "timezone": "America/New_York", "cap_kw": 30.0,
                   "location": {"lat": 25.8, "lon": -80.2667}, "tariff": "sce_tou_ev_8_june_2019",
                   "chargers": [{"id": "ac1", "max_kw": 11.0}, {"id": "ac2", "max_kw": 11.0}]}]}


def now_ms() -> int:
    return int(time.time() * 1000)


def reading(vin: str, seq: int, ts: int, speed: float = 40.0) -> dict[str, Any]:
    return {"schema": 1, "vin": vin, "ts": ts, "seq": seq, "signals": {"Vehicle.Speed": speed}}


def mutate(rng: random.Random, doc: dict[str, Any]) -> bytes | None:
    """One of the hostile forms a buggy gateway or an attacker sends (deterministic for a seed)."""
    raw = json.dumps(doc).encode()
    kind = rng.randrange(9)
    if kind == 0:
        return None
    if kind == 1:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80)))
    if kind == 2:
        at = raw.index(b'"', raw.index(b":") + 1) + 1
        return raw[:at] + b"\xff\xfe" + raw[at:]
    if kind == 3:
        return raw[:-1] + b',"x":' + b"[" * 1000 + b"]" * 1000 + b"}"
    if kind == 4:
        key = rng.choice(list(doc))
        return json.dumps({**doc, key: rng.choice([None, [], {}, "", -1, 2**64, 1e308, "\n"])}).encode()
    if kind == 5:
        return raw[: rng.randrange(len(raw))]
    if kind == 6:
        return json.dumps({**doc, "unexpected": 1}).encode()
    if kind == 7:
        return b"[" + raw + b"]"
    return raw  # valid


class Corpus:
    """What was produced, per topic."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.producer = KafkaProducer(bootstrap_servers=stack.broker.bootstrap, max_request_size=4 << 20,
                                      linger_ms=5)
        self.sent: Counter[str] = Counter()
        self.expect: dict[tuple[str, bytes], str] = {}  # (topic, value marker) -> reason code
        self.cut: dict[str, bytes] = {}  # SHA-256 -> values larger than the dead letters keep

    def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None,
             reason: str | None = None) -> None:
        self.producer.send(topic, key=key, value=value, partition=partition)
        self.sent[topic] += 1
        if value is not None and len(value) > 100_000:
            self.cut[hashlib.sha256(value).hexdigest()] = value
        if reason is not None:
            self.expect[(topic, marker(key, value))] = reason

    def close(self) -> None:
        self.producer.flush()
        self.producer.close()


def marker(key: bytes | None, value: bytes | None) -> bytes:
    return value if value is not None else b"<tombstone:" + (key or b"") + b">"


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
    return total


def read_all(stack: Stack, topic: str, expected: int, timeout_ms: int = 20_000) -> list[Any]:
    consumer = KafkaConsumer(topic, bootstrap_servers=stack.broker.bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=timeout_ms, group_id=None, fetch_max_bytes=8 << 20,
                             max_partition_fetch_bytes=8 << 20)
    out = []
    for rec in consumer:
        out.append(rec)
        if len(out) >= expected:
            break
    consumer.close()
    return out


def test_hostile_corpus_is_accounted_for_and_the_worker_keeps_going(stack: Stack, tmp_path, monkeypatch):
    monkeypatch.setenv("FLEET_DLQ_MAX_VALUE_BYTES", "100000")
    sites = tmp_path / "sites.json"
    sites.write_text(json.dumps(SITE))
    stack.settings = stack.settings.model_copy(update={"charging_sites": sites})
    s = stack.settings
    port = stack.start_worker()
    c = Corpus(stack)
    t = now_ms() - 600_000
    rng = random.Random(14)

    # --- the named defects, each with the reason it must get ---
    vin = VINS[0]
    for i in range(3):
        c.send(s.topic_telemetry, vin.encode(), json.dumps(reading(vin, i, t + i * 1000)).encode())
    c.send(s.topic_telemetry, vin.encode(), None, reason="tombstone")
    c.send(s.topic_telemetry, vin.encode(), b'{"schema":1,"vin":' + b"[" * 1000 + b"]" * 1000 + b"}",
           reason="invalid")
    c.send(s.topic_telemetry, vin.encode(), json.dumps(reading(vin, 3, t)).encode().replace(b"Vehicle.Speed",
           b"Vehicle.Sp\xffeed"), reason="invalid")
    big = json.dumps({**reading(vin, 4, t), "pad": "x" * 1_000_000}).encode()
    c.send(s.topic_telemetry, vin.encode(), big, reason="too_large")
    c.send(s.topic_telemetry, vin.encode(), json.dumps(reading(vin, 5, 4_102_444_799_000)).encode(),
           reason="future_ts")  # 2099-12-31: inside the decoder's range, far ahead of the clock
    c.send(s.topic_telemetry, vin.encode(), json.dumps(reading(vin, 6, now_ms() + 86_400_000)).encode(),
           reason="future_ts")
    ghost = vin[:-1] + "9\n"
    c.send(s.topic_telemetry, ghost.encode(), json.dumps(reading(ghost, 0, t)).encode(), reason="invalid")
    c.send(s.topic_telemetry, b"WRONGKEY000000000", json.dumps(reading(vin, 7, t)).encode(), reason="key_mismatch")
    misrouted = VINS[1]
    wrong = (partition_of(misrouted.encode(), s.partitions) + 1) % s.partitions
    c.send(s.topic_telemetry, misrouted.encode(), json.dumps(reading(misrouted, 0, t, 99.0)).encode(),
           partition=wrong, reason="wrong_partition")
    poisoned = VINS[2]
    c.send(s.topic_telemetry, poisoned.encode(), json.dumps(reading(poisoned, 0, t)).encode())
    c.send(s.topic_telemetry, poisoned.encode(), json.dumps(reading(poisoned, 2**63 - 1, t + 1000)).encode())
    c.send(s.topic_maintenance, vin.encode(), None, reason="tombstone")
    c.send(s.topic_maintenance, vin.encode(), json.dumps(
        {"schema": 1, "vin": vin, "component": "inverter", "event": "repair", "time": "9999-12-31T00:00:00Z"}).encode(),
        reason="future_ts")
    c.send(s.topic_weather, b"dhwf", b"<weather>not json</weather>", reason="invalid")
    c.send(s.topic_charging_requests, b"depot-a", b"\x00\x01 not json", reason="invalid")
    c.send(s.topic_grid, b"depot-a", b"{{{", reason="invalid")
    future_at = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    c.send(s.topic_charging_requests, b"depot-a", json.dumps(
        {"type": "plug_out", "site_id": "depot-a", "vin": vin, "at": future_at}).encode(), reason="future_ts")
    start = (datetime.now(timezone.utc) - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    for i, (prices, slot) in enumerate([([-1.0] * 24, 60), ([1e308] * 24, 60), ([0.2] * 100_000, 15),
                                        ([0.2] * 24, 10**9)]):
        c.send(s.topic_grid, b"depot-a", json.dumps({"type": "grid", "at": start.isoformat(), "signals": {
            "site_id": "depot-a", "start": start.isoformat(), "prices_per_kwh": prices, "slot_minutes": slot,
            "demand_charge_per_kw": float(i)}}).encode(), reason="invalid" if i < 2 else
            ("too_large" if i == 2 else "invalid"))

    # --- a few hundred generated records over all topics ---
    base = {
        s.topic_telemetry: lambda i: (VINS[0], reading(VINS[0], 100 + i, t + 100_000 + i * 1000)),
        s.topic_maintenance: lambda i: (VINS[0], {"schema": 1, "vin": VINS[0], "component": "lv_battery",
                                                  "event": "inspection_ok", "time": "2026-11-01T08:00:00Z"}),
        s.topic_weather: lambda i: ("dhwf", {"schema": 1, "cell": "dhwf", "ts": t - i * 3_600_000,
                                             "issued": t - i * 3_600_000, "air_temp_c": 20.0 + i % 10}),
        s.topic_charging_requests: lambda i: ("depot-a", {"type": "plug_out", "site_id": "depot-a",
                                                          "vin": VINS[i % 3], "at": start.isoformat()}),
        s.topic_grid: lambda i: ("depot-a", {"type": "grid", "at": start.isoformat(), "signals": {
            "site_id": "depot-a", "start": start.isoformat(), "prices_per_kwh": [0.1 + i % 7 / 100] * 24,
            "slot_minutes": 60}}),
    }
    for i in range(300):
        topic = rng.choice(list(base))
        key, doc = base[topic](i)
        c.send(topic, key.encode(), mutate(rng, doc))
    c.close()

    def accounted() -> dict[str, tuple[float, float]]:
        m = http_get(stack.url(port, "/metrics"))[1]
        dead = {topic: metric(m, "fleet_dlq_records_total", topic=topic) for topic in base}
        done = {
            s.topic_telemetry: sum(metric(m, "fleet_records_in_total", outcome=o)
                                   for o in ("applied", "duplicate", "too_late", "invalid")) - dead[s.topic_telemetry],
            s.topic_maintenance: metric(m, "fleet_maintenance_records_total"),
            s.topic_weather: metric(m, "fleet_weather_records_total"),
        }
        taken = metric(m, "fleet_charging_messages_total")  # batched: one re-plan per site per batch
        charging = (dead[s.topic_charging_requests] + dead[s.topic_grid] + taken,
                    c.sent[s.topic_charging_requests] + c.sent[s.topic_grid])
        got = {topic: (dead[topic] + done[topic], c.sent[topic]) for topic in done}
        got["charging+grid"] = charging
        return got

    wait_until(lambda: all(a == b for a, b in accounted().values()), 120,
               what="every record applied, counted or dead-lettered")
    assert all(a == b for a, b in accounted().values()), accounted()

    # the dead-letter topics hold exactly what the counters say, with bounded headers and the named reasons
    m = http_get(stack.url(port, "/metrics"))[1]
    seen: dict[tuple[str, bytes], str] = {}
    for dlq, sources in ((s.topic_telemetry_dlq, [s.topic_telemetry]), (s.topic_maintenance_dlq, [s.topic_maintenance]),
                         (s.topic_weather_dlq, [s.topic_weather]),
                         (s.topic_charging_dlq, [s.topic_charging_requests, s.topic_grid])):
        want = sum(metric(m, "fleet_dlq_records_total", topic=src) for src in sources)
        records = read_all(stack, dlq, int(want))
        assert len(records) == want, (dlq, len(records), want)
        for rec in records:
            h = decode_headers(rec.headers)
            assert len(h["dlq.reason"].encode()) <= 1024 and len(h["dlq.value"].encode()) <= 256
            assert h["dlq.source.topic"] in sources and h["dlq.error"]
            assert metric(m, "fleet_dlq_records_total", topic=h["dlq.source.topic"], reason=h["dlq.error"]) >= 1
            value = marker(rec.key, rec.value)
            if len(value) == 100_000:  # cut: identified by the SHA-256 of the whole value
                assert h["dlq.truncated"] == "value" and value == c.cut[h["dlq.original.sha256"]][:100_000]
                value = c.cut[h["dlq.original.sha256"]]
                assert int(h["dlq.original.bytes"]) == len(value)
            seen[(h["dlq.source.topic"], value)] = h["dlq.error"]
    for (topic, value), reason in c.expect.items():
        assert seen.get((topic, value)) == reason, (topic, value[:80], seen.get((topic, value)), reason)

    # the worker is up and keeps applying valid data: the poisoned seq did not freeze its vehicle,
    # the misrouted vehicle has no twin, the ghost VIN none either
    producer = KafkaProducer(bootstrap_servers=stack.broker.bootstrap)
    producer.send(s.topic_telemetry, key=poisoned.encode(), value=json.dumps(reading(poisoned, 1, t + 2000, 77.0)).encode())
    producer.send(s.topic_telemetry, key=vin.encode(), value=json.dumps(reading(vin, 10_000, now_ms(), 55.0)).encode())
    producer.flush()
    producer.close()
    speed = "Vehicle.Speed"
    wait_until(lambda: http_get(stack.url(port, f"/twins/{poisoned}"))[1].get("signals", {}).get(speed, {})
               .get("value") == 77.0, 30, what="the vehicle with a poisoned seq still takes new data")
    wait_until(lambda: http_get(stack.url(port, f"/twins/{vin}"))[1].get("signals", {}).get(speed, {})
               .get("value") == 55.0, 30, what="valid data applied after the corpus")
    assert http_get(stack.url(port, f"/twins/{misrouted}"))[0] == 404
    assert http_get(stack.url(port, "/twins/" + vin[:-1] + "9%0A"))[0] == 400
    assert http_get(stack.url(port, "/healthz"))[0] == 200
    assert stack.workers[port].poll() is None, "the worker died"
