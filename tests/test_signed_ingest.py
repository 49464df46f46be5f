"""Signatures in the telemetry batch handler (``TwinIngest.handle_batch``) and the keys file holder, in process.

``verify`` mode: unsigned records are applied and counted, forged ones dead-lettered; ``off``: headers
are not looked at. The keys file is re-read when it changes; a broken edit keeps the keys in force.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import time
from types import SimpleNamespace
from typing import Any

from faust.types import TP

import streams.signing_keys as signing_keys
from streams import metrics
from streams.ingest import TwinIngest, partition_of
from streams.signing_keys import SigningKeys

TOPIC = "fleet.telemetry"
SECRET = bytes(range(32))
VIN = "1G1FZ6S09L4100001"


def write_keys(path, *keys: tuple[str, bytes]) -> None:
    path.write_text(json.dumps({"keys": [{"kid": k, "secret": base64.b64encode(s).decode()} for k, s in keys]}))


def record(seq: int, offset: int, kid: str | None = None, secret: bytes = SECRET) -> Any:
    value = json.dumps({"schema": 1, "vin": VIN, "ts": int(time.time() * 1000) - 10_000 + seq, "seq": seq,
                        "signals": {"Vehicle.Speed": 40.0}}).encode()
    headers = [] if kid is None else [("fleet-kid", kid.encode()),
                                      ("fleet-sig", hmac.new(secret, value, hashlib.sha256).hexdigest().encode())]
    return SimpleNamespace(key=VIN.encode(), value=value, headers=headers, offset=offset, timestamp=None)


def counts() -> tuple[float, float, float]:
    return (metrics.SIGNED_RECORDS.labels(TOPIC, "valid")._value.get(),
            metrics.SIGNED_RECORDS.labels(TOPIC, "unsigned_accepted")._value.get(),
            metrics.RECORDS_IN.labels("invalid")._value.get())


def test_verify_mode_applies_and_counts_unsigned_records_and_off_mode_ignores_headers(tmp_path):
    keys = tmp_path / "keys.json"
    write_keys(keys, ("gw-1", SECRET))
    tp = TP(TOPIC, partition_of(VIN.encode(), 2))
    for mode, expect in (("verify", (1, 2, 1)), ("off", (0, 0, 0))):
        ingest = TwinIngest(SimpleNamespace(data={}), None, lambda: None, 1.0, 10_000, 2,
                            signing=SigningKeys(mode, keys))
        ingest.telemetry_topic = TOPIC
        before = counts()
        batch = [record(1, 0), record(2, 1, "gw-1"), record(3, 2), record(4, 3, "gw-1", secret=bytes(32))]
        asyncio.run(ingest.handle_batch(tp, batch))
        assert tuple(a - b for a, b in zip(counts(), before)) == expect, mode
        twin = ingest.get_twin(VIN)
        assert twin.n_applied == (3 if mode == "verify" else 4)          # the forged one only when not checked


def test_a_changed_keys_file_is_reloaded_and_a_broken_one_keeps_the_keys_in_force(tmp_path, monkeypatch, caplog):
    keys = tmp_path / "keys.json"
    write_keys(keys, ("gw-1", SECRET))
    holder = SigningKeys("require", keys)
    new = bytes(range(64, 96))
    write_keys(keys, ("gw-1", SECRET), ("gw-2", new))
    os.utime(keys, (time.time() + 5, time.time() + 5))
    monkeypatch.setattr(signing_keys, "RELOAD_CHECK_S", 0.0)
    holder._next_check = 0.0
    rec = record(1, 0, "gw-2", secret=new)
    assert holder.verifier(0).check(rec.key, rec.value, rec.headers)    # picked up on the next batch
    keys.write_text('{"keys": [{"kid": "gw-1", "secret": "%s", "vins": []}]}' % base64.b64encode(SECRET).decode())
    os.utime(keys, (time.time() + 10, time.time() + 10))
    assert not holder.reload()
    assert "keys[0] (gw-1).vins is empty" in caplog.text and base64.b64encode(SECRET).decode() not in caplog.text
    assert holder.verifier(0).check(rec.key, rec.value, rec.headers)    # the keys in force stay
