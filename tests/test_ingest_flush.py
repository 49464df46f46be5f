"""The twin flush (``TwinIngest.flush``) with a fake table, producer and consumer: sliced writes,
changelog record batches in order, offsets marked only after their batches are queued, revoked
partitions dropped, and Faust's per-message path when there is no batch-capable producer."""

from __future__ import annotations

import asyncio
from typing import Any

from faust.types import TP

import streams.twin_flush as flush_mod
from streams.ingest import TwinIngest
from twins.twin import decode_twin, new_twin

TOPIC = "fleet.telemetry"


class FakeBatch:
    def __init__(self, max_records: int) -> None:
        self.records: list[tuple[bytes, bytes]] = []
        self.max_records = max_records

    def append(self, *, timestamp: Any, key: bytes, value: bytes, headers: Any) -> Any:
        if len(self.records) >= self.max_records:
            return None
        self.records.append((key, value))
        return object()


class Meta:
    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self.topic_partition = TP(topic, partition)
        self.offset = offset


class FakeProducer:
    def __init__(self, log: list[Any], max_records: int = 3) -> None:
        self.log = log
        self.max_records = max_records
        self.next_offset: dict[int, int] = {}

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.max_records)

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> asyncio.Future[Any]:
        self.log.append(("batch", topic, partition, list(batch.records)))
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        base = self.next_offset.get(partition, 0)
        self.next_offset[partition] = base + len(batch.records)
        fut.set_result(Meta(topic, partition, base))
        return fut


class FakeStore(dict):
    def __init__(self) -> None:
        super().__init__()
        self.persisted: dict[int, int] = {}

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        self.persisted[tp.partition] = offset


class FakeChangelogTopic:
    def get_topic_name(self) -> str:
        return "app-twins-changelog"


class FakeApp:
    in_transaction = False

    def __init__(self, producer: Any) -> None:
        self.producer = type("FaustProducer", (), {"_producer": producer})()


class FakeTable:
    def __init__(self, producer: Any, log: list[Any]) -> None:
        self.data = FakeStore()
        self.changelog_topic = FakeChangelogTopic()
        self.app = FakeApp(producer)
        self.log = log

    def send_changelog(self, partition: int, key: bytes, value: bytes) -> None:
        self.log.append(("message", partition, key))


class FakeConsumer:
    def __init__(self, log: list[Any], assigned: set[TP]) -> None:
        self.log = log
        self.assigned = assigned

    def mark_processed(self, tp: TP, offset: int) -> None:
        self.log.append(("mark", tp, offset))

    def assignment(self) -> set[TP]:
        return self.assigned


def make(log: list[Any], producer: Any, assigned: set[TP]) -> TwinIngest:
    consumer = FakeConsumer(log, assigned)
    ing = TwinIngest(FakeTable(producer, log), None, lambda: consumer, 1.0, 10_000, 2)
    ing.telemetry_topic = TOPIC
    return ing


def dirty_up(ing: TwinIngest, n: int) -> None:
    for i in range(n):
        vin = f"VIN{i:014d}"
        ing.dirty[vin] = new_twin(vin)
        ing.dirty_tp[vin] = TP(TOPIC, i % 2)
    ing.pending_offsets = {TP(TOPIC, 0): 100, TP(TOPIC, 1): 200}


async def drain(ing: TwinIngest) -> None:
    queue = ing._changelog_out
    while not queue.empty():
        await asyncio.sleep(0)
    await asyncio.sleep(0)


def test_batched_flush_writes_every_twin_then_marks_offsets(monkeypatch):
    monkeypatch.setattr(flush_mod, "FLUSH_SLICE", 4)
    log: list[Any] = []

    async def go() -> TwinIngest:
        ing = make(log, FakeProducer(log), {TP(TOPIC, 0), TP(TOPIC, 1)})
        dirty_up(ing, 10)
        assert await ing.flush() == 10
        await drain(ing)
        return ing

    ing = asyncio.run(go())
    assert not ing.dirty and not ing.dirty_tp and not ing.pending_offsets
    assert len(ing.table.data) == 10
    assert decode_twin(ing.table.data[b"VIN00000000000003"]).vin == "VIN00000000000003"
    batches = [e for e in log if e[0] == "batch"]
    sent = [key for e in batches for key, _ in e[3]]
    assert sorted(sent) == sorted(ing.table.data)                      # one changelog record per twin
    assert all(len(e[3]) <= 3 for e in batches)                        # split at the batch limit
    for _, _, partition, records in batches:                           # partition = the source partition
        assert all(int(k[-1:]) % 2 == partition for k, _ in records)
    marks = [i for i, e in enumerate(log) if e[0] == "mark"]
    assert marks and min(marks) > max(i for i, e in enumerate(log) if e[0] == "batch")
    assert {(e[1], e[2]) for e in log if e[0] == "mark"} == {(TP(TOPIC, 0), 100), (TP(TOPIC, 1), 200)}
    assert ing.table.data.persisted == {0: 4, 1: 4}                    # last offset of the delivered batches


def test_twins_changed_between_slices_are_written_before_the_offsets_are_marked(monkeypatch):
    monkeypatch.setattr(flush_mod, "FLUSH_SLICE", 2)
    log: list[Any] = []

    async def go() -> TwinIngest:
        ing = make(log, FakeProducer(log, max_records=100), {TP(TOPIC, 0), TP(TOPIC, 1)})
        dirty_up(ing, 6)

        async def batch_between_slices() -> None:
            await asyncio.sleep(0)
            async with ing._lock:                                      # as handle_batch does
                vin = "VIN00000000000000"                              # written in the first slice
                twin = ing.get_twin(vin)
                twin.n_applied = 7
                ing.dirty[vin] = twin
                ing.dirty_tp[vin] = TP(TOPIC, 0)
                ing.pending_offsets[TP(TOPIC, 0)] = 150

        await asyncio.gather(ing.flush(), batch_between_slices())
        await drain(ing)
        return ing

    ing = asyncio.run(go())
    assert not ing.dirty and not ing.pending_offsets
    assert decode_twin(ing.table.data[b"VIN00000000000000"]).n_applied == 7
    sent = [key for e in log if e[0] == "batch" for key, _ in e[3]]
    assert sent.count(b"VIN00000000000000") == 2                       # again, after its change
    assert ("mark", TP(TOPIC, 0), 150) in log


def test_revoked_partitions_are_neither_sent_nor_marked(monkeypatch):
    log: list[Any] = []

    async def go() -> TwinIngest:
        ing = make(log, FakeProducer(log), {TP(TOPIC, 1)})             # partition 0 revoked meanwhile
        dirty_up(ing, 4)
        await ing.flush()
        await drain(ing)
        return ing

    asyncio.run(go())
    assert {e[2] for e in log if e[0] == "batch"} == {1}
    assert [e for e in log if e[0] == "mark"] == [("mark", TP(TOPIC, 1), 200)]


def test_without_a_batch_producer_each_record_takes_fausts_path():
    log: list[Any] = []

    async def go() -> TwinIngest:
        ing = make(log, None, {TP(TOPIC, 0), TP(TOPIC, 1)})
        dirty_up(ing, 5)
        assert await ing.flush() == 5
        return ing

    ing = asyncio.run(go())
    assert len([e for e in log if e[0] == "message"]) == 5 and len(ing.table.data) == 5
    assert log[-2:] == [("mark", TP(TOPIC, 0), 100), ("mark", TP(TOPIC, 1), 200)]


class ReassigningConsumer(FakeConsumer):
    """Partition 0 is away while the sender looks at the batches, and back when it marks the offsets
    (revoked and given back to the same worker by a rebalance in between)."""

    def __init__(self, log: list[Any], batches: int) -> None:
        super().__init__(log, {TP(TOPIC, 1)})
        self.calls, self.batches = 0, batches

    def assignment(self) -> set[TP]:
        self.calls += 1
        return {TP(TOPIC, 1)} if self.calls <= self.batches else {TP(TOPIC, 0), TP(TOPIC, 1)}


def test_offsets_of_a_skipped_batch_are_not_marked_when_its_partition_comes_back():
    """A batch dropped because its partition was away must not let that partition's offset be committed
    when the partition is back by the time the offsets are marked: that committed records whose twin
    changes never reached the changelog (found by the kill -9 fault test with the default flush interval)."""
    log: list[Any] = []

    async def go() -> None:
        consumer = ReassigningConsumer(log, batches=2)
        ing = TwinIngest(FakeTable(FakeProducer(log, max_records=100), log), None, lambda: consumer, 1.0, 10_000, 2)
        ing.telemetry_topic = TOPIC
        dirty_up(ing, 4)
        await ing.flush()
        await drain(ing)

    asyncio.run(go())
    assert {e[2] for e in log if e[0] == "batch"} == {1}
    assert [e for e in log if e[0] == "mark"] == [("mark", TP(TOPIC, 1), 200)]
