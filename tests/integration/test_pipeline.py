"""End to end through the real broker: producer -> worker fast path -> twin table -> HTTP API."""

from __future__ import annotations

import json
import random
import signal
import time
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer

from streams.dead_letter import decode_headers
from tests.conftest import Stack, http_get, wait_until

pytestmark = pytest.mark.integration

T0 = 1_767_225_600_000
VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
SIGNALS = {
    "Vehicle.Speed": lambda r: round(r.uniform(0, 130), 2),
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current": lambda r: round(r.uniform(5, 100), 2),
    "Vehicle.Powertrain.TractionInverter.Temperature": lambda r: round(r.uniform(-10, 110), 1),
    "Vehicle.Powertrain.TractionBattery.Charging.IsCharging": lambda r: r.random() < 0.3,
    "Vehicle.Diagnostics.DTCList": lambda r: r.choice([[], ["P0A7F"], ["P0AA6", "U0100"]]),
    "Vehicle.LowVoltageBattery.CurrentVoltage": lambda r: round(r.uniform(11.5, 14.4), 2),
}


def make_vin(i: int) -> str:
    rng = random.Random(i)
    return "TST" + "".join(rng.choice(VIN_CHARS) for _ in range(10)) + f"{i:04d}"


def make_messages(vehicles: int, per_vehicle: int, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Returns (unique messages, send order with local reordering and duplicates)."""
    rng = random.Random(seed)
    unique: list[dict[str, Any]] = []
    per_vin: list[list[dict[str, Any]]] = []
    for v in range(vehicles):
        vin = make_vin(v)
        msgs = []
        for seq in range(per_vehicle):
            chosen = rng.sample(sorted(SIGNALS), rng.randint(1, 4))
            msgs.append({"schema": 1, "vin": vin, "ts": T0 + seq * 1000 + rng.randint(0, 999), "seq": seq,
                         "signals": {p: SIGNALS[p](rng) for p in chosen}})
        unique.extend(msgs)
        order = msgs[:]
        for start in range(0, len(order), 10):  # reorder inside blocks of 10 (well within the seq window)
            block = order[start:start + 10]
            rng.shuffle(block)
            order[start:start + 10] = block
        with_dups: list[dict[str, Any]] = []
        for m in order:
            with_dups.append(m)
            if rng.random() < 0.15:
                with_dups.append(m)  # immediate duplicate
            if with_dups and rng.random() < 0.1:
                with_dups.append(rng.choice(with_dups[-15:]))  # late duplicate
        per_vin.append(with_dups)
    # interleave vehicles the way a live fleet does
    send = [m for i in range(max(map(len, per_vin))) for msgs in per_vin if i < len(msgs) for m in [msgs[i]]]
    return unique, send


def reference_twins(unique: list[dict[str, Any]], sent: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Independent expectation: newest value per signal by event time; each seq counted once."""
    ref: dict[str, dict[str, Any]] = {}
    for m in unique:
        t = ref.setdefault(m["vin"], {"signals": {}, "applied": 0, "first": m["ts"], "last": m["ts"], "sent": 0})
        t["applied"] += 1
        t["first"] = min(t["first"], m["ts"])
        t["last"] = max(t["last"], m["ts"])
        for path, value in m["signals"].items():
            held = t["signals"].get(path)
            if held is None or m["ts"] > held["ts"]:
                t["signals"][path] = {"value": value, "ts": m["ts"]}
    for m in sent:
        ref[m["vin"]]["sent"] += 1
    return ref


def produce(stack: Stack, messages: list[dict[str, Any]], raw: list[tuple[bytes | None, bytes]] = ()) -> None:
    producer = KafkaProducer(bootstrap_servers=stack.broker.bootstrap, linger_ms=5)
    for m in messages:
        producer.send(stack.settings.topic_telemetry, key=m["vin"].encode(), value=json.dumps(m).encode())
    for key, value in raw:
        producer.send(stack.settings.topic_telemetry, key=key, value=value)
    producer.flush()
    producer.close()


def assert_twins_match(stack: Stack, port: int, ref: dict[str, dict[str, Any]]) -> None:
    for vin, want in ref.items():
        status, body = http_get(stack.url(port, f"/twins/{vin}"))
        assert status == 200, body
        got_signals = {p: {"value": s["value"], "ts": s["ts"]} for p, s in body["signals"].items()}
        assert got_signals == want["signals"], vin
        assert body["messages"]["applied"] == want["applied"], vin
        assert body["messages"]["applied"] + body["messages"]["duplicate"] == want["sent"], vin
        assert (body["first_seen_ms"], body["last_seen_ms"]) == (want["first"], want["last"])


def total_applied(stack: Stack, port: int) -> int:
    return http_get(stack.url(port, "/fleet/summary"))[1]["messages_applied"]


def test_twins_equal_reference_with_reordering_and_duplicates(stack: Stack):
    port = stack.start_worker()
    unique, sent = make_messages(vehicles=30, per_vehicle=60, seed=11)
    assert len(sent) > len(unique) * 1.2
    produce(stack, sent)
    ref = reference_twins(unique, sent)
    wait_until(lambda: total_applied(stack, port) == len(unique), 60, what="all unique messages applied")
    assert_twins_match(stack, port, ref)
    status, summary = http_get(stack.url(port, "/fleet/summary"))
    assert summary["vehicles"] == 30
    assert summary["messages_duplicate"] == len(sent) - len(unique)
    status, listing = http_get(stack.url(port, "/twins?limit=7"))
    assert listing["count"] == 7 and len(listing["twins"]) == 7
    status, body = http_get(stack.url(port, "/twins/" + "X" * 17))
    assert status == 404 and "XXXXXXXXXXXXXXXXX" in body["error"]
    status, body = http_get(stack.url(port, "/twins/nope"))
    assert status == 400 and "'nope' is not a VIN" in body["error"]


def test_invalid_records_go_to_dlq_and_worker_keeps_going(stack: Stack):
    port = stack.start_worker()
    good = {"schema": 1, "vin": make_vin(1), "ts": T0, "seq": 0, "signals": {"Vehicle.Speed": 12.5}}
    bad_range = {**good, "seq": 1, "signals": {"Vehicle.Speed": 999.0}}
    after = {**good, "seq": 2, "ts": T0 + 2000, "signals": {"Vehicle.Speed": 33.0}}
    produce(stack, [good], raw=[
        (good["vin"].encode(), b"{not json"),
        (good["vin"].encode(), json.dumps(bad_range).encode()),
        (b"WRONGKEY000000000", json.dumps({**good, "seq": 5}).encode()),
    ])
    produce(stack, [after])
    wait_until(lambda: http_get(stack.url(port, f"/twins/{good['vin']}"))[1].get("messages", {}).get("applied") == 2,
               30, what="valid records applied around the bad ones")
    consumer = KafkaConsumer(stack.settings.topic_telemetry_dlq, bootstrap_servers=stack.broker.bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=20_000, group_id=None)
    dead = []
    for rec in consumer:
        dead.append(rec)
        if len(dead) == 3:
            break
    consumer.close()
    assert len(dead) == 3
    by_value = {rec.value: decode_headers(rec.headers) for rec in dead}
    h = by_value[b"{not json"]
    assert "not valid JSON" in h["dlq.reason"] and h["dlq.source.topic"] == stack.settings.topic_telemetry
    assert int(h["dlq.source.offset"]) >= 0 and h["dlq.source.partition"].isdigit()
    h = by_value[json.dumps(bad_range).encode()]
    assert h["dlq.field"] == "$.signals.Vehicle.Speed" and "999.0" in h["dlq.reason"] and h["dlq.value"] == "999.0"
    h = by_value[json.dumps({**good, "seq": 5}).encode()]
    assert h["dlq.error"] == "key_mismatch" and "WRONGKEY" in h["dlq.reason"]
    metrics = http_get(stack.url(port, "/metrics"))[1]
    assert 'fleet_records_in_total{outcome="invalid"} 3.0' in metrics
    assert 'fleet_records_in_total{outcome="applied"} 2.0' in metrics


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_state_and_offsets_survive_sigkill(stack: Stack, store: str):
    """Offsets are committed only after twin changes are in the changelog: after kill -9 and
    restart, replay neither loses an update nor applies one twice (memory store: rebuilt from
    the changelog; RocksDB: local files plus the changelog tail)."""
    stack.settings = stack.settings.model_copy(update={"store": store})
    port = stack.start_worker(data_name="state")
    unique, sent = make_messages(vehicles=20, per_vehicle=40, seed=5)
    half = len(sent) // 2
    produce(stack, sent[:half])
    first_half_unique = {(m["vin"], m["seq"]) for m in sent[:half]}
    wait_until(lambda: total_applied(stack, port) == len(first_half_unique), 60, what="first half applied")
    time.sleep(1.5)  # let a commit happen, then kill without any chance to flush or commit
    stack.kill_worker(port, signal.SIGKILL)
    port2 = stack.start_worker(data_name="state")
    produce(stack, sent[half:])
    wait_until(lambda: total_applied(stack, port2) == len(unique), 90, what="all applied after restart")
    ref = reference_twins(unique, sent)
    for vin, want in ref.items():
        status, body = http_get(stack.url(port2, f"/twins/{vin}"))
        got = {p: {"value": s["value"], "ts": s["ts"]} for p, s in body["signals"].items()}
        assert got == want["signals"], vin
        assert body["messages"]["applied"] == want["applied"], vin


def test_two_workers_answer_for_every_vin(stack: Stack):
    a = stack.start_worker()
    b = stack.start_worker(wait_ready=False)
    unique, sent = make_messages(vehicles=24, per_vehicle=10, seed=3)
    produce(stack, sent)

    def both_see_everything() -> bool:
        sa = http_get(stack.url(a, "/fleet/summary"))[1]
        sb = http_get(stack.url(b, "/fleet/summary"))[1]
        return (sa.get("workers") == 2 and sb.get("workers") == 2
                and sa["messages_applied"] == sb["messages_applied"] == len(unique))

    wait_until(both_see_everything, 120, interval=0.5, what="both workers serving the whole fleet")
    ref = reference_twins(unique, sent)
    for port in (a, b):
        for vin, want in ref.items():
            # a late rebalance may still move a partition: a 503 with Retry-After is the honest answer then
            # (never 404 or 500), and a client retries it
            status, body = wait_until(lambda p=port, v=vin: (r := http_get(stack.url(p, f"/twins/{v}")))[0] != 503
                                      and r, 30, interval=0.5, what=f"an answer for {vin}")
            assert status == 200, (port, vin, body)
            assert body["messages"]["applied"] == want["applied"]
        listing = http_get(stack.url(port, "/twins?limit=1000"))[1]
        assert sorted(t["vin"] for t in listing["twins"]) == sorted(ref)


def test_maintenance_log_import_reaches_the_twin(stack: Stack, tmp_path):
    import os
    import subprocess
    import sys

    port = stack.start_worker()
    vin = make_vin(7)
    produce(stack, [{"schema": 1, "vin": vin, "ts": T0, "seq": 0, "signals": {"Vehicle.Speed": 1.0}}])
    log = tmp_path / "repairs.csv"
    log.write_text("vin,component,event,time,odometer_km\n"
                   f"{vin},inverter,failure,2026-03-04T10:15:00Z,48211.5\n"
                   f"{vin},inverter,replacement,2026-03-06T08:00:00Z,48230.0\n"
                   f"{vin},lv_battery,inspection_ok,2026-02-01T00:00:00Z,\n")
    env = stack.env(port) | {"PYTHONPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "streams.cli", "maintenance-import", str(log)], env=env,
                         capture_output=True, text=True, timeout=60, cwd=os.getcwd())
    assert out.returncode == 0, out.stderr
    assert "published 3 maintenance records" in out.stdout

    def serviced() -> dict | None:
        status, body = http_get(stack.url(port, f"/twins/{vin}"))
        m = body.get("maintenance", {}) if status == 200 else {}
        return m if m.get("inverter", {}).get("last_service") else None

    m = wait_until(serviced, 30, what="maintenance applied to the twin")
    assert m["inverter"] == {"last_failure": "2026-03-04T10:15:00Z", "last_service": "2026-03-06T08:00:00Z"}
    assert m["lv_battery"] == {"last_failure": None, "last_service": None}

    bad = tmp_path / "bad.csv"
    bad.write_text(f"vin,component,event,time,odometer_km\n{vin},wiper,failure,2026-03-04T10:15:00Z,1\n")
    out = subprocess.run([sys.executable, "-m", "streams.cli", "maintenance-import", str(bad)], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "line 2" in out.stderr and "'wiper'" in out.stderr
