"""Writing dirty twins to the changelog-backed table, and the worker's memory settings.

:class:`TwinFlusher` is the flush half of :class:`streams.ingest.TwinIngest`: dirty twins are
written in slices as changelog record batches, and the batch offsets they cover are marked
committable only once those batches are in the producer. It uses the ingest's ``table``,
``dirty``/``dirty_tp`` cache, ``pending_offsets``, ``_lock``, ``alerts``, ``consumer``,
``telemetry_topic`` and ``flush_interval_s``.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import itertools
import time
from typing import Any

from faust.types import TP

from streams import metrics
from twins.twin import Twin, encode_twin

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


class TwinFlusher:
    """The flush of :class:`streams.ingest.TwinIngest` (see the module docstring for what it uses)."""

    table: Any
    dirty: dict[str, Twin | bytes]
    dirty_tp: dict[str, TP]
    pending_offsets: dict[TP, int]
    telemetry_topic: str
    flush_interval_s: float
    alerts: Any
    _lock: asyncio.Lock
    consumer: Any

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

    async def run_flusher(self) -> None:
        """Background loop: flush every ``flush_interval_s``; started with the worker, so it tunes the GC too."""
        tune_gc()
        while True:
            await asyncio.sleep(self.flush_interval_s)
            await self.flush()
