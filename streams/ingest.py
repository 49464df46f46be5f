"""The telemetry fast path: fetched batch -> decode -> group by VIN -> merge -> coalesced table writes.

Per fetched partition batch the handler decodes every record (msgspec, strict),
sends invalid ones to the dead-letter topic, groups the rest by VIN and merges
each group into the VIN's twin with the pure ``twins.twin.merge_into``. Changed
twins stay in a dirty cache and are written to the changelog-backed table once
per flush interval, so a vehicle sending ten records in that interval costs one
table write. Only after that write are the batch offsets marked committable.
"""

from __future__ import annotations

import asyncio
import ctypes
import time
from collections.abc import Sequence
from typing import Any

from aiokafka.partitioner import murmur2
from faust.types import TP

from streams import metrics
from streams.dead_letter import dlq_headers
from streams.fast_consumer import BatchingConsumer
from twins.errors import InvalidReading
from twins.join import note_residency
from twins.maintenance import MaintenanceRecord, apply_maintenance, decode_maintenance
from twins.reading import Reading, decode_reading
from twins.twin import Twin, decode_twin, encode_twin, merge_into, new_twin


#: After a flush of this many twins, hand freed heap memory back to the OS.
TRIM_AFTER_WRITES = 5_000


def release_free_memory() -> None:
    """glibc keeps freed heap pages of the decode/encode churn; ``malloc_trim`` returns them (no-op elsewhere)."""
    if _libc is not None:
        _libc.malloc_trim(0)


try:
    _libc: Any = ctypes.CDLL("libc.so.6")
except OSError:  # not glibc
    _libc = None


class TwinIngest:
    """Owns the dirty-twin cache of one worker and the batch handler for the telemetry topic."""

    maintenance_dlq_topic: Any = None
    telemetry_topic: str = "fleet.telemetry"

    def __init__(self, table: Any, dlq_topic: Any, consumer_getter: Any,
                 flush_interval_s: float, flush_max_dirty: int, partitions: int,
                 cell_precision: int = 4, home_cells: dict[str, str] | None = None,
                 default_home_cell: str = "dhwf") -> None:
        self.table = table
        self.cell_precision = cell_precision
        self.home_cells = home_cells or {}
        self.default_home_cell = default_home_cell
        self.dlq_topic = dlq_topic
        self._consumer_getter = consumer_getter
        self.flush_interval_s = flush_interval_s
        self.flush_max_dirty = flush_max_dirty
        self.partitions = partitions
        self.dirty: dict[str, Twin] = {}
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
        """Freshest local state of ``vin``: the dirty cache first, then the table."""
        twin = self.dirty.get(vin)
        if twin is not None:
            return twin
        raw = self.table.data.get(vin.encode())
        return decode_twin(raw) if raw is not None else None

    async def handle_batch(self, tp: TP, records: Sequence[Any]) -> None:
        """Batch handler registered with :class:`BatchingConsumer` for the telemetry topic."""
        started = time.perf_counter()
        groups: dict[str, list[Reading]] = {}
        invalid = 0
        oldest_ts = 0
        for rec in records:
            try:
                reading = decode_reading(rec.value)
                if rec.key is None or rec.key.decode("utf-8", "replace") != reading.vin:
                    raise InvalidReading(
                        f"record key {rec.key!r} does not match vin {reading.vin!r}; producers must key by VIN",
                        "$.vin", reading.vin)
            except InvalidReading as exc:
                invalid += 1
                self._dead_letter(tp, rec, exc)
                continue
            group = groups.get(reading.vin)
            if group is None:
                groups[reading.vin] = [reading]
            else:
                group.append(reading)
            if reading.ts < oldest_ts or not oldest_ts:
                oldest_ts = reading.ts
        applied = duplicate = too_late = 0
        alerts = self.alerts
        if alerts is not None and tp.partition not in alerts.reconciled:
            await alerts.reconcile({tp.partition})  # first batch since the partition came: adopt the topic's alerts
        raised: list[Any] = []
        async with self._lock:
            for vin, readings in groups.items():
                twin = self.get_twin(vin) or new_twin(vin)
                a, d, t = twin.n_applied, twin.n_duplicate, twin.n_too_late
                merge_into(twin, readings)
                first_ts = min(r.ts for r in readings)
                last_ts = max(r.ts for r in readings)
                note_residency(twin, first_ts, last_ts, self.cell_precision,
                               self.home_cells.get(vin, self.default_home_cell))
                if alerts is not None:
                    raised += alerts.observe(twin, readings)
                applied += twin.n_applied - a
                duplicate += twin.n_duplicate - d
                too_late += twin.n_too_late - t
                self.dirty[vin] = twin
                self.dirty_tp[vin] = tp
            self.changed.update(groups)
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

    def local_vins(self) -> set[str]:
        """VINs with state on this worker (stored or not yet flushed)."""
        return {k.decode() for k, v in self.table.data.items() if v is not None} | set(self.dirty)

    def mark_dirty(self, twin: Twin) -> None:
        """Queue a twin changed outside a batch (e.g. by the scorer) for the next flush; caller holds the lock."""
        vin = twin.vin
        if vin not in self.dirty_tp:
            partition = (murmur2(vin.encode()) & 0x7FFFFFFF) % self.partitions
            self.dirty_tp[vin] = TP(self.telemetry_topic, partition)
        self.dirty[vin] = twin

    async def handle_maintenance_batch(self, tp: TP, records: Sequence[Any]) -> None:
        """Batch handler for ``fleet.maintenance`` (co-partitioned with telemetry: same owner per VIN)."""
        groups: dict[str, list[MaintenanceRecord]] = {}
        for rec in records:
            try:
                m = decode_maintenance(rec.value)
                if rec.key is None or rec.key.decode("utf-8", "replace") != m.vin:
                    raise InvalidReading(f"record key {rec.key!r} does not match vin {m.vin!r}; key by VIN",
                                         "$.vin", m.vin)
            except InvalidReading as exc:
                self._dead_letter(tp, rec, exc, self.maintenance_dlq_topic)
                continue
            groups.setdefault(m.vin, []).append(m)
        async with self._lock:
            for vin, recs in groups.items():
                twin = self.get_twin(vin) or new_twin(vin)
                for m in recs:
                    apply_maintenance(twin.maintenance, m)
                self.dirty[vin] = twin
                self.dirty_tp[vin] = tp
            self.changed.update(groups)
            self.urgent.update(groups)
            self.pending_offsets[tp] = records[-1].offset + 1
        metrics.MAINTENANCE_IN.inc(sum(len(r) for r in groups.values()))

    def _dead_letter(self, tp: TP, rec: Any, exc: InvalidReading, topic: Any = None) -> None:
        kind = "KeyMismatch" if "does not match vin" in exc.reason else "InvalidReading"
        (topic or self.dlq_topic).send_soon(
            key=rec.key, value=rec.value, partition=tp.partition % self.partitions,
            headers=dlq_headers(exc, kind, tp.topic, tp.partition, rec.offset, rec.timestamp),
        )
        metrics.DLQ_OUT.labels(kind).inc()

    async def flush(self) -> int:
        """Write dirty twins to the table (one changelog record each); then free their offsets."""
        async with self._lock:
            if not self.dirty and not self.pending_offsets:
                return 0
            if self.alerts is not None:
                await self.alerts.durable()  # no twin in the changelog ahead of its alert records
            started = time.perf_counter()
            n = len(self.dirty)
            for vin, twin in self.dirty.items():
                self._write(self.dirty_tp[vin].partition, vin.encode(), encode_twin(twin))
            self.dirty.clear()
            self.dirty_tp.clear()
            consumer = self.consumer
            for tp, offset in self.pending_offsets.items():
                consumer.mark_processed(tp, offset)
            self.pending_offsets.clear()
        if n >= TRIM_AFTER_WRITES:
            release_free_memory()
        metrics.TWINS_WRITTEN.inc(n)
        metrics.FLUSH_SECONDS.observe(time.perf_counter() - started)
        metrics.DIRTY_TWINS.set(0)
        return n

    def _write(self, partition: int, key: bytes, value: bytes) -> None:
        """Store + changelog write for ``partition`` (the source partition, as Faust tables do).

        ``Table.__setitem__`` needs a current stream event to find the partition,
        which a batch does not have, so we do its two steps explicitly.
        """
        store = self.table.data
        db_for_partition = getattr(store, "_db_for_partition", None)
        if db_for_partition is not None:  # RocksDB store: one DB per partition
            db_for_partition(partition).put(key, value)
            store._key_index[key] = partition
        else:
            store[key] = value
        self.table.send_changelog(partition, key, value)

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
        """Background loop: flush every ``flush_interval_s``."""
        while True:
            await asyncio.sleep(self.flush_interval_s)
            await self.flush()
