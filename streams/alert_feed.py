"""Every worker's view of the alerts topic: the latest revision of each alert, and live subscribers.

The feed reads ``fleet.alerts`` (all partitions, no consumer group) from the beginning
and keeps the newest revision per alert id. ``GET /alerts`` answers from it on any
worker, ``GET /alerts/stream`` fans each new record out to SSE subscribers, and a
worker taking over a partition brings its twins' alert books up to it
(:meth:`AlertFeed.wait_caught_up`) before it processes that partition's telemetry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from faust.types import TP

from streams import metrics
from streams.fast_consumer import probe_end_offsets
from twins.alerts.state import Alert, decode_alert

log = logging.getLogger(__name__)
SUBSCRIBER_QUEUE = 1_000


def active_key(alert: Alert) -> tuple[str, str, str]:
    """Labels of an active alert in ``fleet_alerts_active``: severity, component, region (2-character
    geohash prefix, about 1,250 km x 625 km, so the label stays bounded; ``""`` when unknown)."""
    return alert.severity, alert.component, (alert.region or "")[:2]


class AlertFeed:
    """Materialised alerts view of one worker process."""

    def __init__(self, bootstrap: list[str], topic: str, partitions: int, fetch_max_wait_ms: int,
                 keep_resolved_ms: int, verify_end_offsets: bool, client_kwargs: dict[str, Any]) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.partitions = partitions
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.keep_resolved_ms = keep_resolved_ms
        self.verify_end_offsets = verify_end_offsets
        self.client_kwargs = client_kwargs
        self.latest: dict[str, Alert] = {}
        #: open + acknowledged alerts per partition, by (severity, component, region prefix); the
        #: metrics export only the partitions this worker owns (:mod:`streams.worker_metrics`)
        self.active: dict[int, dict[tuple[str, str, str], int]] = {}
        #: next offset to read, per partition
        self.position: dict[int, int] = {}
        self.subscribers: set[asyncio.Queue[Alert]] = set()
        self.invalid = 0
        self._progress = asyncio.Condition()
        self._consumer: AIOKafkaConsumer | None = None

    async def run(self) -> None:
        """Read the topic forever (started as an app task)."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                    fetch_max_wait_ms=self.fetch_max_wait_ms, auto_offset_reset="earliest",
                                    **self.client_kwargs)
        await consumer.start()
        self._consumer = consumer
        try:
            tps = [TopicPartition(self.topic, p) for p in range(self.partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            last_prune = time.monotonic()
            while True:
                batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
                for ktp, records in batches.items():
                    self.apply(records)
                    if records:
                        self.position[ktp.partition] = records[-1].offset + 1
                async with self._progress:
                    self._progress.notify_all()
                if time.monotonic() - last_prune > 60:
                    self.prune(int(time.time() * 1000))
                    last_prune = time.monotonic()
        finally:
            self._consumer = None
            await consumer.stop()

    def apply(self, records: Iterable[Any]) -> None:
        """Fold raw records into the view and hand them to subscribers."""
        for rec in records:
            try:
                alert = decode_alert(rec.value)
            except Exception as exc:  # a foreign or corrupt record must not stop the view
                self.invalid += 1
                log.warning("alerts topic %s[%s]@%s is not an alert record: %s", self.topic, rec.partition,
                            rec.offset, exc)
                continue
            old = self.latest.get(alert.alert_id)
            if old is not None and old.revision >= alert.revision:
                continue
            self.latest[alert.alert_id] = alert
            active = self.active.setdefault(rec.partition, {})
            if old is not None and old.status != "resolved":
                active[active_key(old)] -= 1
            if alert.status != "resolved":
                key = active_key(alert)
                active[key] = active.get(key, 0) + 1
            for q in list(self.subscribers):
                try:
                    q.put_nowait(alert)
                except asyncio.QueueFull:  # a stalled client: dropped (its stream closes) rather than unbounded
                    self.unsubscribe(q)

    def prune(self, now_ms: int) -> int:
        """Forget alerts resolved longer ago than the retention; returns how many."""
        old = [k for k, a in self.latest.items()
               if a.status == "resolved" and now_ms - (a.resolved_ms or a.updated_ms) > self.keep_resolved_ms]
        for k in old:
            del self.latest[k]
        return len(old)

    async def end_offsets(self, partitions: Iterable[int]) -> dict[int, int]:
        """The topic's current end offset per partition (probed on Tansu)."""
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("the alerts feed is not running yet")
        tps = [TopicPartition(self.topic, p) for p in partitions]
        ends = await consumer.end_offsets(tps)
        if self.verify_end_offsets:
            fixed = await probe_end_offsets(self.bootstrap, {TP(t.topic, t.partition): o for t, o in ends.items()},
                                            client_kwargs=self.client_kwargs)
            return {tp.partition: o for tp, o in fixed.items()}
        return {t.partition: o for t, o in ends.items()}

    async def wait_caught_up(self, partitions: Iterable[int], timeout_s: float = 30.0) -> None:
        """Return once every record that was on ``partitions`` when called is in the view."""
        deadline = time.monotonic() + timeout_s
        while self._consumer is None:
            if time.monotonic() > deadline:
                raise TimeoutError("the alerts feed did not start")
            await asyncio.sleep(0.05)
        target = await self.end_offsets(partitions)

        def done() -> bool:
            return all(self.position.get(p, 0) >= end for p, end in target.items())

        async with self._progress:
            await asyncio.wait_for(self._progress.wait_for(done), max(0.1, deadline - time.monotonic()))

    def subscribe(self) -> asyncio.Queue[Alert]:
        """A queue receiving every new alert revision; a queue that fills up is unsubscribed."""
        q: asyncio.Queue[Alert] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self.subscribers.add(q)
        metrics.SSE_CLIENTS.set(len(self.subscribers))
        return q

    def unsubscribe(self, q: asyncio.Queue[Alert]) -> None:
        self.subscribers.discard(q)
        metrics.SSE_CLIENTS.set(len(self.subscribers))

    def close_subscribers(self) -> None:
        """The worker is stopping: unsubscribe everyone and wake each stream so it ends now."""
        for q in list(self.subscribers):
            self.unsubscribe(q)
            while True:
                try:
                    q.put_nowait(None)  # type: ignore[arg-type]  # the end-of-stream marker
                    break
                except asyncio.QueueFull:
                    q.get_nowait()  # make room: the stream ends anyway
