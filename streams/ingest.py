"""The telemetry fast path: fetched batch -> decode -> group by VIN -> merge -> coalesced table writes.

Per fetched partition batch the handler checks each record's signature when
``FLEET_SIGNING_MODE`` asks for it (``twins.signing``, one verifier per batch, before
the value is parsed), decodes every record (msgspec, strict), sends invalid ones to the
dead-letter topic, groups the rest by VIN and merges
each group into the VIN's twin with the pure ``twins.twin.merge_into``. Changed
twins stay in a dirty cache and are written to the changelog-backed table once
per flush interval, so a vehicle sending ten records in that interval costs one
table write. Only after that write are the batch offsets marked committable.
"""

from __future__ import annotations

import asyncio
import logging
import ctypes
import gc
import itertools
import time
from collections.abc import Sequence
from typing import Any

from aiokafka.partitioner import murmur2
from faust.types import TP

from streams import metrics
from streams.dead_letter import DeadLetters, Rejection
from streams.fast_consumer import BatchingConsumer
from streams.signing_keys import SigningKeys
from twins.errors import InvalidReading
from twins.join import note_residency
from twins.decoding import InputLimits, check_key, check_not_future, decode_input
from twins.maintenance import MaintenanceRecord, apply_maintenance, check_maintenance_time, decode_maintenance
from twins.reading import Reading, decode_reading
from twins.twin import SEQ_JUMP_MAX, Twin, decode_twin, encode_twin, merge_into, new_twin


log = logging.getLogger(__name__)
#: After a flush of this many twins, hand freed heap memory back to the OS.
TRIM_AFTER_WRITES = 5_000
#: Twins written per slice of a flush (under the ingest lock, 5-15 ms); batches run between slices.
FLUSH_SLICE = 1_000


#: Trim only when at least this much freed memory sits in glibc's heap (see :func:`release_free_memory`).
TRIM_MIN_FREE_BYTES = 32 << 20


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def release_free_memory(min_free_bytes: int = 0) -> None:
    """glibc keeps freed heap pages of the decode/encode churn; ``malloc_trim`` returns them (no-op elsewhere).

    With ``min_free_bytes``, only if the heap holds that much free memory: a steady flush frees
    about what the next one allocates again, and trimming it each time costs the next one the
    page faults (decode measured ~20 % slower after a trim).
    """
    if _libc is None:
        return
    if min_free_bytes and _mallinfo2 is not None and _mallinfo2().fordblks < min_free_bytes:
        return
    _libc.malloc_trim(0)


#: Cyclic-GC thresholds for the worker (CPython's default is 700, 10, 10); see :func:`tune_gc`.
GC_THRESHOLDS = (10_000, 10, 10)


def tune_gc() -> None:
    """Collect less often: the twin fast path allocates ~15 GC-tracked lists per decoded twin.

    Twins live in the dirty cache for a flush interval, so at the default thresholds they survive
    into the oldest generation and trigger full collections over the whole process (Faust, aiokafka,
    every module): measured 21 µs per decoded twin while thousands are held, 16 µs with these
    thresholds, 13 µs with no GC at all. Twins hold no reference cycles; a young-generation pass
    stays ~1 ms. Higher thresholds (50,000) gained little more CPU but let other garbage cycles
    pin ~400 B more RSS per twin at 100k twins (bench/state.py, measured).
    """
    gc.set_threshold(*GC_THRESHOLDS)


_M_MMAP_THRESHOLD = -3
#: Allocations from this size up get their own mapping, returned to the OS when freed.
MMAP_THRESHOLD_BYTES = 256 * 1024


def keep_large_buffers_out_of_heap() -> None:
    """Pin glibc's mmap threshold (no-op elsewhere).

    glibc raises the threshold to the size of each freed mapping (up to 32 MB), so after the first
    1 MB changelog batch buffer is freed the next ones grow inside the heap, between long-lived
    encoded twins, and leave holes there when sent. A fixed threshold keeps them in mappings.
    """
    if _libc is not None:
        _libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


try:
    _libc: Any = ctypes.CDLL("libc.so.6")
except OSError:  # not glibc
    _libc = None
_mallinfo2: Any = getattr(_libc, "mallinfo2", None)  # glibc >= 2.33
if _mallinfo2 is not None:
    _mallinfo2.restype = _MallInfo2


def _encoded(state: Twin | bytes) -> bytes:
    """A dirty entry as the table stores it."""
    return state if type(state) is bytes else encode_twin(state)  # type: ignore[arg-type]


def partition_of(key: bytes, partitions: int) -> int:
    """The partition of ``key`` under the Kafka default partitioner (murmur2), as producers keyed by VIN use."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class TwinIngest:
    """Owns the dirty-twin cache of one worker and the batch handler for the telemetry topic."""

    telemetry_topic: str = "fleet.telemetry"

    def __init__(self, table: Any, dead_letters: DeadLetters | None, consumer_getter: Any,
                 flush_interval_s: float, flush_max_dirty: int, partitions: int,
                 cell_precision: int = 4, home_cells: dict[str, str] | None = None,
                 default_home_cell: str = "dhwf", *, maintenance_dead_letters: DeadLetters | None = None,
                 limits: InputLimits = InputLimits(), seq_jump_max: int = SEQ_JUMP_MAX,
                 in_service_ms: dict[str, int] | None = None, signing: SigningKeys | None = None) -> None:
        self.table = table
        #: record signatures (:mod:`twins.signing`); None or mode ``off``: not checked
        self.signing = signing
        self.cell_precision = cell_precision
        self.home_cells = home_cells or {}
        self.default_home_cell = default_home_cell
        self.dead_letters = dead_letters
        self.maintenance_dead_letters = maintenance_dead_letters
        self.limits = limits
        self.seq_jump_max = seq_jump_max
        self.in_service_ms = in_service_ms or {}
        #: key -> murmur2 partition of keys already seen valid (bounded by the fleet's VINs)
        self._key_partition: dict[bytes, int] = {}
        self._consumer_getter = consumer_getter
        self.flush_interval_s = flush_interval_s
        self.flush_max_dirty = flush_max_dirty
        self.partitions = partitions
        #: twins changed since the last flush; a ``bytes`` value is a stored record rewritten as a whole (the
        #: risk scorer writes new risk states into records without decoding them)
        self.dirty: dict[str, Twin | bytes] = {}
        self.dirty_tp: dict[str, TP] = {}
        #: VINs changed since they were last risk-scored; ``urgent``: due now (e.g. a repair record).
        self.changed: set[str] = set()
        self.urgent: set[str] = set()
        self.pending_offsets: dict[TP, int] = {}
        self._lock = asyncio.Lock()
        self.batches = 0
        self.records = 0
        #: the worker's :class:`streams.alerting.AlertService` (None: no alerting)
        self.alerts: Any = None

    @property
    def consumer(self) -> BatchingConsumer:
        return self._consumer_getter()

    def get_twin(self, vin: str) -> Twin | None:
        """Freshest local state of ``vin``: the dirty cache first, then the table (decoded: a caller that
        changes it hands it back with :meth:`mark_dirty`)."""
        state = self.stored(vin)
        return decode_twin(state) if type(state) is bytes else state

    def stored(self, vin: str) -> Twin | bytes | None:
        """Freshest local state of ``vin`` as it is kept: a twin not flushed yet, else its record."""
        state = self.dirty.get(vin)
        return state if state is not None else self.table.data.get(vin.encode())

    def partition_of_key(self, key: bytes) -> int:
        """murmur2 partition of a (valid) key, cached: one hash per vehicle, not per record."""
        part = self._key_partition.get(key)
        if part is None:
            if len(self._key_partition) >= 2_000_000:
                self._key_partition.clear()
            part = self._key_partition[key] = partition_of(key, self.partitions)
        return part

    def _check_partition(self, tp: TP, key: bytes) -> None:
        if self.partition_of_key(key) != tp.partition:
            expected = self.partition_of_key(key)
            raise InvalidReading(
                f"record for {key.decode()!r} is on partition {tp.partition} of {tp.topic}, but murmur2 of its key "
                f"gives partition {expected}: configure the producer's partitioner as murmur2 (README, Producing "
                "telemetry) and publish this record again", "$.vin", key.decode(), code="wrong_partition")

    async def handle_batch(self, tp: TP, records: Sequence[Any]) -> None:
        """Batch handler registered with :class:`BatchingConsumer` for the telemetry topic.

        Every record ends applied, counted (duplicate / too late) or dead-lettered; the dead letters
        are delivered before the batch's offsets can be marked.
        """
        started = time.perf_counter()
        groups: dict[str, list[Reading]] = {}
        rejected: list[Rejection] = []
        oldest_ts = 0
        limits = self.limits
        now_ms = int(time.time() * 1000)
        latest_ts = now_ms + limits.max_future_skew_ms
        verifier = self.signing.verifier(now_ms) if self.signing is not None else None
        signed = 0
        for rec in records:
            try:
                valid_sig = verifier is not None and rec.value is not None and verifier.check(  # before decoding:
                    rec.key, rec.value, rec.headers)  # unauthenticated bytes are not parsed
                reading = decode_input(rec.value, decode_reading, limits)
                key = rec.key
                vin = reading.vin
                if key != vin.encode():
                    check_key(key, vin, "$.vin", "VIN")
                if reading.ts > latest_ts:
                    check_not_future(reading.ts, now_ms, limits, "$.ts")
                if self.partition_of_key(key) != tp.partition:
                    self._check_partition(tp, key)
            except InvalidReading as exc:
                rejected.append(Rejection(rec.key, rec.value, exc, tp.partition, rec.offset, rec.timestamp))
                continue
            signed += valid_sig
            group = groups.get(vin)
            if group is None:
                groups[vin] = [reading]
            else:
                group.append(reading)
            if reading.ts < oldest_ts or not oldest_ts:
                oldest_ts = reading.ts
        invalid = len(rejected)
        if verifier is not None:
            self._count_signed(self.telemetry_topic, signed, len(records) - invalid)
        if rejected and self.dead_letters is not None:
            await self.dead_letters.send(rejected)
        applied = duplicate = too_late = 0
        alerts = self.alerts
        if alerts is not None and tp.partition not in alerts.reconciled:
            await alerts.reconcile_or_degrade(tp.partition)  # first batch since it came: adopt the topic's alerts
        raised: list[Any] = []
        failed: list[Rejection] = []
        async with self._lock:
            for vin, readings in groups.items():
                twin = self.get_twin(vin) or new_twin(vin)
                a, d, t = twin.n_applied, twin.n_duplicate, twin.n_too_late
                try:
                    seed = alerts.before(twin) if alerts is not None else None
                    merge_into(twin, readings, self.seq_jump_max)
                    first_ts = min(r.ts for r in readings)
                    last_ts = max(r.ts for r in readings)
                    note_residency(twin, first_ts, last_ts, self.cell_precision,
                                   self.home_cells.get(vin, self.default_home_cell))
                    if alerts is not None:
                        raised += alerts.observe(twin, readings, seed)
                except Exception as exc:  # noqa: BLE001 - a bug must not crash-loop the partition: see below
                    lost = self._processing_failed(tp, vin, records, exc, {r.offset for r in rejected})
                    metrics.RECORDS_IN.labels("failed").inc(len(lost))
                    failed += lost
                    continue
                applied += twin.n_applied - a
                duplicate += twin.n_duplicate - d
                too_late += twin.n_too_late - t
                self.dirty[vin] = twin
                self.dirty_tp[vin] = tp
            self.changed.update(groups)
            if failed and self.dead_letters is not None:
                await self.dead_letters.send(failed)  # delivered before the offsets can be marked
            self.pending_offsets[tp] = records[-1].offset + 1
            if raised:
                await alerts.publish(raised)
        self.batches += 1
        self.records += len(records)
        metrics.RECORDS_IN.labels("applied").inc(applied)
        metrics.RECORDS_IN.labels("duplicate").inc(duplicate)
        metrics.RECORDS_IN.labels("too_late").inc(too_late)
        metrics.RECORDS_IN.labels("invalid").inc(invalid)
        metrics.BATCH_RECORDS.observe(len(records))
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        if oldest_ts:
            metrics.EVENT_LAG_SECONDS.observe(max(0.0, time.time() - oldest_ts / 1000.0))
        metrics.DIRTY_TWINS.set(len(self.dirty))
        if len(self.dirty) >= self.flush_max_dirty:
            await self.flush()

    def _processing_failed(self, tp: TP, vin: str, records: Sequence[Any], exc: Exception,
                           rejected: set[int]) -> list[Rejection]:
        """Dead letters for a vehicle whose valid readings could not be applied (a bug, not bad input).

        Crashing would replay the same batch forever and stall every vehicle of the partition. The
        vehicle's records of the batch go to the dead-letter topic (reason ``processing``) instead;
        its twin is not written (a twin read from the store stays as stored; one with unflushed
        changes keeps whatever the failed merge changed), and the error is logged with its traceback.
        """
        log.exception("applying the readings of %s from %s failed; they go to the dead-letter topic", vin, tp)
        error = InvalidReading(f"applying the reading failed: {type(exc).__name__}: {str(exc)[:200]}", "$", None,
                               code="processing")
        key = vin.encode()
        out = [Rejection(r.key, r.value, error, tp.partition, r.offset, r.timestamp) for r in records
               if r.key == key and r.offset not in rejected]
        return out

    @staticmethod
    def _count_signed(topic: str, signed: int, accepted: int) -> None:
        """Count a batch's accepted records as validly signed or (``verify`` mode) unsigned."""
        metrics.SIGNED_RECORDS.labels(topic, "valid").inc(signed)
        metrics.SIGNED_RECORDS.labels(topic, "unsigned_accepted").inc(max(0, accepted - signed))

    def local_vins(self) -> set[str]:
        """VINs with state on this worker (stored or not yet flushed)."""
        return {k.decode() for k, v in self.table.data.items() if v is not None} | set(self.dirty)

    def mark_dirty(self, twin: Twin) -> None:
        """Queue a twin changed outside a batch (e.g. by the scorer) for the next flush; caller holds the lock."""
        self.put_record(twin.vin, twin)

    def put_record(self, vin: str, state: Twin | bytes) -> None:
        """Queue ``vin``'s new state — a twin, or its whole record — for the next flush; caller holds the lock."""
        if vin not in self.dirty_tp:
            self.dirty_tp[vin] = TP(self.telemetry_topic, partition_of(vin.encode(), self.partitions))
        self.dirty[vin] = state

    async def handle_maintenance_batch(self, tp: TP, records: Sequence[Any]) -> None:
        """Batch handler for ``fleet.maintenance`` (co-partitioned with telemetry: same owner per VIN)."""
        groups: dict[str, list[MaintenanceRecord]] = {}
        rejected: list[Rejection] = []
        now_ms = int(time.time() * 1000)
        verifier = self.signing.verifier(now_ms) if self.signing is not None else None
        signed = 0
        for rec in records:
            try:
                valid_sig = verifier is not None and rec.value is not None and verifier.check(
                    rec.key, rec.value, rec.headers)
                m = decode_input(rec.value, decode_maintenance, self.limits)
                check_key(rec.key, m.vin, "$.vin", "VIN")
                self._check_partition(tp, rec.key)
                check_maintenance_time(m, now_ms, self.in_service_ms.get(m.vin), self.limits)
            except InvalidReading as exc:
                rejected.append(Rejection(rec.key, rec.value, exc, tp.partition, rec.offset, rec.timestamp))
                continue
            signed += valid_sig
            groups.setdefault(m.vin, []).append(m)
        if verifier is not None:
            self._count_signed(tp.topic, signed, len(records) - len(rejected))
        if rejected and self.maintenance_dead_letters is not None:
            await self.maintenance_dead_letters.send(rejected)
        failed: list[Rejection] = []
        async with self._lock:
            for vin, recs in groups.items():
                twin = self.get_twin(vin) or new_twin(vin)
                try:
                    for m in recs:
                        apply_maintenance(twin.maintenance, m)
                except Exception as exc:  # noqa: BLE001 - as in handle_batch: dead-letter, do not crash-loop
                    failed += self._processing_failed(tp, vin, records, exc, {r.offset for r in rejected})
                    continue
                self.dirty[vin] = twin
                self.dirty_tp[vin] = tp
            if failed and self.maintenance_dead_letters is not None:
                await self.maintenance_dead_letters.send(failed)
            self.changed.update(groups)
            self.urgent.update(groups)
            self.pending_offsets[tp] = records[-1].offset + 1
        metrics.MAINTENANCE_IN.inc(sum(len(r) for r in groups.values()))

    async def flush(self) -> int:
        """Write dirty twins to the table (one changelog record each); then free their offsets.

        Written in slices of :data:`FLUSH_SLICE` twins, each under the ingest lock, with the event
        loop free in between: a flush of 5,000 twins held the lock (and so every batch) for
        ~100-250 ms, now 5-15 ms at a time. A written twin leaves the dirty cache at once (the store
        has it), so a batch between slices reads it from there and, if it changes it again,
        dirties it again. The last slice takes every twin still dirty together with all pending
        offsets, so the changes behind each offset are written when it is marked.

        Changelog records go to the producer as record batches, one per partition and slice,
        handed to a sender task (:meth:`_changelog_sender`) in order: a Faust message per record
        cost ~40 µs of Python (future, pending message, serializer lookups, buffer task), a batch
        ~1 µs per record. The sender marks a flush's offsets after queueing its batches in the
        producer, and Faust's commit flushes the producer before committing, so a committed offset
        never runs ahead of the changelog. Batches and offsets of a partition revoked meanwhile are
        dropped (the new owner replays those records).
        """
        serial = self.__dict__.get("_flush_serial")
        if serial is None:  # flushes (timer, dirty limit) run one at a time: changelog order per key
            serial = self._flush_serial = asyncio.Lock()
        async with serial:
            return await self._flush_slices()

    async def _flush_slices(self) -> int:
        started = time.perf_counter()
        out = self._changelog_queue()
        budget = -1
        written = 0
        while True:
            async with self._lock:
                if budget < 0:
                    if not self.dirty and not self.pending_offsets:
                        return 0
                    budget = len(self.dirty)
                if self.alerts is not None:
                    await self.alerts.durable()  # no twin in the changelog ahead of its alert records
                last = len(self.dirty) <= FLUSH_SLICE or written >= budget
                written += self._write_slice(len(self.dirty) if last else FLUSH_SLICE, out)
                if last:
                    offsets, self.pending_offsets = self.pending_offsets, {}
                    if out is None:
                        self._mark_processed(offsets)
                    else:
                        out.put_nowait(offsets)
                    break
            await asyncio.sleep(0)  # let batches (and everything else) run between slices
        since_trim = self.__dict__.get("_written_since_trim", 0) + written
        if since_trim >= TRIM_AFTER_WRITES:
            since_trim = 0
            if out is None:
                release_free_memory(TRIM_MIN_FREE_BYTES)
            else:
                out.put_nowait(lambda: release_free_memory(TRIM_MIN_FREE_BYTES))  # once sent (and freed)
        self._written_since_trim = since_trim
        metrics.TWINS_WRITTEN.inc(written)
        metrics.FLUSH_SECONDS.observe(time.perf_counter() - started)
        metrics.DIRTY_TWINS.set(len(self.dirty))
        return written

    def _write_slice(self, n: int, out: asyncio.Queue[Any] | None) -> int:
        """Encode, store and changelog ``n`` dirty twins and drop them from the cache; caller holds the lock.

        ``out``: the sender's queue, for one record batch per partition; ``None``: Faust's path.
        """
        dirty = self.dirty
        dirty_tp = self.dirty_tp
        vins = list(dirty) if n >= len(dirty) else list(itertools.islice(dirty, n))
        # Keys live as long as the store: made in one go, before the slice's twins are freed, so they
        # pack into few memory pools instead of pinning many pools of freed twin objects (RSS).
        keys = [vin.encode() for vin in vins]
        if out is None:
            for vin, key in zip(vins, keys):
                self._write(dirty_tp.pop(vin).partition, key, _encoded(dirty.pop(vin)))
            return len(vins)
        producer = self._batch_producer()
        batches: dict[int, list[Any]] = {}  # partition -> [batch builder, records in it]
        for vin, key in zip(vins, keys):
            partition = dirty_tp.pop(vin).partition
            value = _encoded(dirty.pop(vin))
            self._store(partition, key, value)
            open_batch = batches.get(partition)
            if open_batch is None:
                open_batch = batches[partition] = [producer.create_batch(), 0]
            if open_batch[0].append(timestamp=None, key=key, value=value, headers=[]) is None:
                if open_batch[1]:
                    out.put_nowait((partition, open_batch[0], open_batch[1]))
                open_batch[:] = [producer.create_batch(), 0]
                if open_batch[0].append(timestamp=None, key=key, value=value, headers=[]) is None:
                    self.table.send_changelog(partition, key, value)  # larger than a batch: the broker judges
                    open_batch[:] = [producer.create_batch(), 0]
                    continue
            open_batch[1] += 1
        for partition, (batch, count) in batches.items():
            if count:
                out.put_nowait((partition, batch, count))
        return len(vins)

    def _changelog_queue(self) -> asyncio.Queue[Any] | None:
        """The batch sender's queue (started on first use), or ``None`` when records take Faust's path."""
        sender = self.__dict__.get("_sender_task")
        if sender is not None and sender.done() and not sender.cancelled() and sender.exception() is not None:
            raise sender.exception()  # a failed send: stop here, as a failed Faust send would
        queue: asyncio.Queue[Any] | None = self.__dict__.get("_changelog_out")
        if queue is None:
            producer = self._batch_producer()
            if producer is None:
                return None
            queue = self._changelog_out = asyncio.Queue()
            keep_large_buffers_out_of_heap()
            self._sender_task = asyncio.ensure_future(self._changelog_sender(producer, queue))
        return queue

    def _batch_producer(self) -> Any:
        """The running aiokafka producer behind Faust's, or ``None``: then records take Faust's path.

        Faust's path is kept for transactions (exactly-once commits changelog offsets with the
        transaction) and for anything that is not the aiokafka transport (tests, other drivers).
        """
        app = getattr(self.table, "app", None)
        if app is None or getattr(app, "in_transaction", True):
            return None
        producer = getattr(getattr(app, "producer", None), "_producer", None)
        if producer is None or not hasattr(producer, "create_batch") or not hasattr(producer, "send_batch"):
            return None
        return producer

    async def _changelog_sender(self, producer: Any, queue: asyncio.Queue[Any]) -> None:
        """Queue batches in the producer in flush order, then mark each flush's offsets.

        ``send_batch`` returns once a batch is in the producer's queue (it waits while the previous
        batch of the same partition is not yet taken for sending). A delivered batch records its
        last offset as the store's persisted changelog offset, as Faust does per message (RocksDB
        recovery starts after it).
        """
        topic = self.table.changelog_topic.get_topic_name()
        store = self.table.data
        last_sent: asyncio.Future[Any] | None = None
        skipped: set[int] = set()  # partitions with a batch dropped since the last offsets were marked
        while True:
            item = await queue.get()
            if isinstance(item, dict):
                # A partition whose batch was dropped (away at that moment) may be back by now, given to this
                # worker again by the same rebalance: its offset must still not be marked, or records whose twin
                # changes never reached the changelog would be committed.
                self._mark_processed({tp: offset for tp, offset in item.items() if tp.partition not in skipped})
                skipped.clear()
                continue
            if callable(item):  # run once everything sent so far is delivered
                if last_sent is not None and not last_sent.done():
                    last_sent.add_done_callback(lambda _f, fn=item: fn())
                else:
                    item()
                continue
            partition, batch, count = item
            assigned = self._assigned_partitions()
            if assigned is not None and TP(self.telemetry_topic, partition) not in assigned:
                skipped.add(partition)
                continue  # revoked since written: the new owner replays these records
            last_sent = await producer.send_batch(batch, topic, partition=partition)

            def persisted(done: asyncio.Future[Any], count: int = count) -> None:
                if not done.cancelled() and done.exception() is None:
                    meta = done.result()
                    store.set_persisted_offset(meta.topic_partition, meta.offset + count - 1)

            last_sent.add_done_callback(persisted)

    def _mark_processed(self, offsets: dict[TP, int]) -> None:
        """Mark offsets committable, for partitions still assigned."""
        consumer = self.consumer
        assigned = self._assigned_partitions()
        for tp, offset in offsets.items():
            if assigned is None or tp in assigned:
                consumer.mark_processed(tp, offset)

    def _assigned_partitions(self) -> set[TP] | None:
        """Partitions the consumer holds now (``None``: unknown, e.g. no Faust consumer)."""
        try:
            return set(self.consumer.assignment())
        except Exception:  # noqa: BLE001 - no consumer (tests) or not started
            return None

    def _write(self, partition: int, key: bytes, value: bytes) -> None:
        """Store + changelog write for ``partition`` (the source partition, as Faust tables do).

        ``Table.__setitem__`` needs a current stream event to find the partition,
        which a batch does not have, so we do its two steps explicitly.
        """
        self._store(partition, key, value)
        self.table.send_changelog(partition, key, value)

    def _store(self, partition: int, key: bytes, value: bytes) -> None:
        """The store half of :meth:`_write`."""
        store = self.table.data
        db_for_partition = getattr(store, "_db_for_partition", None)
        if db_for_partition is not None:  # RocksDB store: one DB per partition
            db_for_partition(partition).put(key, value)
            store._key_index[key] = partition
        else:
            store[key] = value

    async def on_revoked(self, revoked: set[TP]) -> None:
        """Partitions moved away: drop their unflushed twins and offsets; the new owner replays them.

        Replayed records already in the changelog state are recognised by their ``seq``
        and not applied twice.
        """
        async with self._lock:
            for vin in [v for v, tp in self.dirty_tp.items() if tp in revoked]:
                del self.dirty[vin]
                del self.dirty_tp[vin]
            for tp in revoked:
                self.pending_offsets.pop(tp, None)
        self.consumer.forget_partitions(revoked)

    async def run_flusher(self) -> None:
        """Background loop: flush every ``flush_interval_s``; started with the worker, so it tunes the GC too."""
        tune_gc()
        while True:
            await asyncio.sleep(self.flush_interval_s)
            await self.flush()
