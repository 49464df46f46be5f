"""A bug in applying a valid reading must not crash-loop the partition (``TwinIngest.handle_batch``):
that vehicle's records of the batch are dead-lettered as ``processing``, every other vehicle is applied,
and the batch's offsets move on."""

from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace
from typing import Any

from faust.types import TP

import streams.ingest as ingest_mod
from streams import metrics
from streams.ingest import TwinIngest

TOPIC = "fleet.telemetry"
GOOD, BAD = "1G1FZ6S09L4100001", "1G1FZ6S09L4100002"


class DeadLetters:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def send(self, rejections: list[Any]) -> None:
        self.sent += rejections


def record(vin: str, seq: int, offset: int, value: bytes | None = None) -> Any:
    value = value or json.dumps({"schema": 1, "vin": vin, "ts": int(time.time() * 1000) - 10_000 + seq, "seq": seq,
                                 "signals": {"Vehicle.Speed": 40.0 + seq}}).encode()
    return SimpleNamespace(key=vin.encode(), value=value, headers=[], offset=offset, timestamp=None)


def test_a_vehicle_whose_merge_raises_is_dead_lettered_and_the_others_are_applied(monkeypatch, caplog):
    real = ingest_mod.merge_into

    def merge_into(twin: Any, readings: Any, seq_jump_max: int) -> None:
        if twin.vin == BAD:
            raise ZeroDivisionError("a bug in a history accumulator")
        real(twin, readings, seq_jump_max)

    monkeypatch.setattr(ingest_mod, "merge_into", merge_into)
    dlq = DeadLetters()
    ingest = TwinIngest(SimpleNamespace(data={}), dlq, lambda: None, 1.0, 10_000, 1)
    ingest.telemetry_topic = TOPIC
    failed_before = metrics.RECORDS_IN.labels("failed")._value.get()
    batch = [record(GOOD, 1, 0), record(BAD, 1, 1), record(BAD, 2, 2, value=b"{not json"), record(GOOD, 2, 3),
             record(BAD, 3, 4)]
    asyncio.run(ingest.handle_batch(TP(TOPIC, 0), batch))
    assert ingest.get_twin(GOOD).n_applied == 2 and ingest.get_twin(BAD) is None
    assert ingest.pending_offsets == {TP(TOPIC, 0): 5}
    by_offset = {r.offset: r.error for r in dlq.sent}
    assert sorted(by_offset) == [1, 2, 4]                                   # the bad JSON once, as invalid
    assert by_offset[2].code == "invalid"
    assert by_offset[1].code == by_offset[4].code == "processing"
    assert "ZeroDivisionError: a bug in a history accumulator" in str(by_offset[1])
    assert metrics.RECORDS_IN.labels("failed")._value.get() - failed_before == 2
    assert "applying the readings of 1G1FZ6S09L4100002" in caplog.text
