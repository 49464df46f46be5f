"""Signed telemetry through the real broker and a real worker with FLEET_SIGNING_MODE=require (issue 16).

The simulator signs with the keys file; records that are unsigned, forged, signed with a
secret that is not the key id's, changed after signing, signed with an expired key or with a
vehicle's key for another vehicle end in the dead-letter topic with reason ``unsigned`` or
``bad_signature`` and the key id; a signed repair record is applied and an unsigned one is
dead-lettered too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from kafka import KafkaProducer

from streams.dead_letter import decode_headers
from streams.simulate import simulate
from tests.conftest import Stack, http_get, wait_until
from tests.integration.test_hostile_stream import metric, read_all

pytestmark = pytest.mark.integration

GATEWAY, VEHICLE, RETIRED, FORGED = bytes(range(32)), bytes(range(40, 72)), bytes(range(80, 112)), bytes(32)
VIN = "1G1FZ6S09L4100001"
OTHER = "1G1FZ6S09L4100002"


def sign(kid: str, secret: bytes, value: bytes) -> list[tuple[str, bytes]]:
    return [("fleet-kid", kid.encode()), ("fleet-sig", hmac.new(secret, value, hashlib.sha256).hexdigest().encode())]


def reading(vin: str, seq: int) -> bytes:
    return json.dumps({"schema": 1, "vin": vin, "ts": int(time.time() * 1000) - 60_000 + seq, "seq": seq,
                       "signals": {"Vehicle.Speed": 42.0}}).encode()


def test_require_mode_applies_signed_records_and_dead_letters_the_rest(stack: Stack, tmp_path, monkeypatch):
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": [
        {"kid": "gw-2026", "secret": base64.b64encode(GATEWAY).decode(), "vins": "*"},
        {"kid": "veh-0001", "secret": base64.b64encode(VEHICLE).decode(), "vins": [VIN]},
        {"kid": "gw-2025", "secret": base64.b64encode(RETIRED).decode(), "not_after": "2026-01-01T00:00:00Z"},
    ]}))
    monkeypatch.setenv("FLEET_SIGNING_MODE", "require")
    monkeypatch.setenv("FLEET_SIGNING_KEYS", str(keys))
    s = stack.settings = stack.settings.model_copy(update={"signing_mode": "require", "signing_keys": keys})
    port = stack.start_worker()

    sent = simulate(s, vehicles=5, rate_hz=1.0, duration_s=4.0, seed=3, realtime=False)   # signs every record
    producer = KafkaProducer(bootstrap_servers=stack.broker.bootstrap, linger_ms=5)
    good = reading(VIN, 1)
    hostile = {  # value marker -> (headers, expected reason, key id in the dead letter)
        reading(VIN, 2): ([], "unsigned", ""),
        reading(VIN, 3): (sign("gw-2026", FORGED, reading(VIN, 3)), "bad_signature", "gw-2026"),
        reading(VIN, 4): (sign("gw-9999", GATEWAY, reading(VIN, 4)), "bad_signature", "gw-9999"),
        reading(VIN, 5): (sign("gw-2025", RETIRED, reading(VIN, 5)), "bad_signature", "gw-2025"),
        reading(OTHER, 6): (sign("veh-0001", VEHICLE, reading(OTHER, 6)), "bad_signature", "veh-0001"),
    }
    flipped = bytearray(reading(VIN, 7))
    flipped[flipped.index(b"42.0")] = ord("9")                     # 92.0 km/h under the signature of 42.0
    hostile[bytes(flipped)] = (sign("gw-2026", GATEWAY, reading(VIN, 7)), "bad_signature", "gw-2026")
    producer.send(s.topic_telemetry, key=VIN.encode(), value=good, headers=sign("veh-0001", VEHICLE, good))
    for value, (headers, _, _) in hostile.items():
        producer.send(s.topic_telemetry, key=json.loads(value)["vin"].encode(), value=value, headers=headers)
    repair = json.dumps({"schema": 1, "vin": VIN, "component": "inverter", "event": "replacement",
                         "time": "2026-01-02T08:00:00Z", "odometer_km": 1000.0}).encode()
    producer.send(s.topic_maintenance, key=VIN.encode(), value=repair, headers=sign("gw-2026", GATEWAY, repair))
    producer.send(s.topic_maintenance, key=VIN.encode(), value=repair)
    producer.flush()
    producer.close()

    def accounted() -> str | None:
        m = http_get(stack.url(port, "/metrics"))[1]
        done = metric(m, "fleet_records_in_total") >= sent + 1 + len(hostile)
        return m if done and metric(m, "fleet_dlq_records_total", topic=s.topic_maintenance) >= 1 else None

    m = wait_until(accounted, 60, interval=0.5, what="every record accounted for")
    assert metric(m, "fleet_records_in_total", outcome="applied") == sent + 1
    assert metric(m, "fleet_signed_records_total", topic=s.topic_telemetry, outcome="valid") == sent + 1
    assert metric(m, "fleet_signed_records_total", outcome="unsigned_accepted") == 0
    assert metric(m, "fleet_dlq_records_total", topic=s.topic_telemetry, reason="unsigned") == 1
    assert metric(m, "fleet_dlq_records_total", topic=s.topic_telemetry, reason="bad_signature") == len(hostile) - 1
    assert metric(m, "fleet_maintenance_records_total") == 1
    assert metric(m, "fleet_dlq_records_total", topic=s.topic_maintenance, reason="unsigned") == 1

    dead = {rec.value: decode_headers(rec.headers) for rec in read_all(stack, s.topic_telemetry_dlq, len(hostile))}
    assert set(dead) == set(hostile)                              # the original bytes, every one
    for value, (_, reason, kid) in hostile.items():
        h = dead[value]
        assert h["dlq.error"] == reason and h["dlq.field"] == "headers.fleet-kid"
        assert h["dlq.value"] == (json.dumps(kid) if kid else "null") and kid in h["dlq.reason"]
    log = stack.log(port)
    for secret in (GATEWAY, VEHICLE, RETIRED):
        assert base64.b64encode(secret).decode() not in log
