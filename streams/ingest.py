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
import time
from collections.abc import Sequence
from typing import Any

from aiokafka.partitioner import murmur2
from faust.types import TP

from streams import metrics
from streams.dead_letter import DeadLetters, Rejection
from streams.fast_consumer import BatchingConsumer
from streams.signing_keys import SigningKeys
from streams.twin_flush import TwinFlusher
from twins.errors import InvalidReading
from twins.join import note_residency
from twins.decoding import InputLimits, check_key, check_not_future, decode_input
from twins.maintenance import MaintenanceRecord, apply_maintenance, check_maintenance_time, decode_maintenance
from twins.reading import Reading, decode_reading
from twins.twin import SEQ_JUMP_MAX, Twin, decode_twin, merge_into, new_twin


log = logging.getLogger(__name__)


def partition_of(key: bytes, partitions: int) -> int:
    """The partition of ``key`` under the Kafka default partitioner (murmur2), as producers keyed by VIN use."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class TwinIngest(TwinFlusher):
    """Owns the dirty-twin cache of one worker and the batch handlers of the telemetry and maintenance topics
    (the flush to the changelog: :class:`streams.twin_flush.TwinFlusher`)."""

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
        #: twins changed since the last flush; a ``bytes`` value is a whole new record (the risk scorer queues
        #: a stored twin it decoded and scored as its record: a decoded twin holds ~7x the memory)
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
