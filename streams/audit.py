"""The audit trail: every ack, resolve, rules reload, model switch and refused request on ``fleet.audit``.

A record (JSON, key = the acting user)::

    {"ts": 1767225600000, "who": "ops.jane", "action": "ack", "target": "1G1FZ6S09L4100001:inv-hot:1",
     "source": "10.1.2.3", "outcome": "ok", "detail": "", "worker": "http://127.0.0.1:6066"}

``action``: ``ack``, ``resolve``, ``rules_reload``, ``model_switch``, ``authorization``; ``outcome``:
``ok``, ``failed`` (the change did not happen), ``denied`` (401/403), ``rejected`` (a file that did
not validate). The topic is append-only for the service (its ACL grants write, never delete);
``GET /audit`` (scope ``admin``) reads it back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams import metrics

log = logging.getLogger(__name__)

ACTIONS = ("ack", "resolve", "rules_reload", "model_switch", "authorization")
OUTCOMES = ("ok", "failed", "denied", "rejected")
SCAN_MAX = 200_000


class AuditRecord(msgspec.Struct, frozen=True):
    """One line of the audit trail."""

    ts: int
    who: str
    action: str
    target: str
    source: str
    outcome: str
    detail: str = ""
    worker: str = ""


_decoder = msgspec.json.Decoder(AuditRecord)


class AuditLog:
    """Writes audit records (and counts them by action and outcome)."""

    def __init__(self, topic: Any, worker: str) -> None:
        self.topic = topic
        self.worker = worker
        for action in ACTIONS:
            for outcome in OUTCOMES:
                metrics.AUDIT_RECORDS.labels(action, outcome)

    async def record(self, who: str, action: str, target: str, source: str, outcome: str, detail: str = "",
                     wait: bool = False) -> AuditRecord:
        """Append one record; ``wait``: until the broker has it (state changes), else fire and forget."""
        rec = AuditRecord(int(time.time() * 1000), who[:128], action, target[:256], source[:64], outcome,
                          detail[:512], self.worker)
        metrics.AUDIT_RECORDS.labels(action, outcome).inc()
        try:
            delivered = await self.topic.send(key=rec.who.encode(), value=msgspec.json.encode(rec))
            if wait:
                await delivered
        except Exception as exc:  # noqa: BLE001 - the trail must not take the API down; the log keeps it
            log.error("audit record not written (%s: %s): %s", type(exc).__name__, exc, msgspec.json.encode(rec))
        return rec


async def read_audit(bootstrap: list[str], topic: str, since_ms: int, sub: str | None, limit: int,
                     timeout_s: float = 5.0, **client: Any) -> list[AuditRecord]:
    """Records of ``topic`` at or after ``since_ms`` (of ``sub`` only, when given), oldest first, at most ``limit``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **client)
    await consumer.start()
    out: list[AuditRecord] = []
    try:
        partitions = sorted((await consumer.topics()) and (consumer.partitions_for_topic(topic) or set()))
        tps = [TopicPartition(topic, p) for p in partitions]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        started, scanned, idle = loop.time(), 0, 0
        while loop.time() < deadline and scanned < SCAN_MAX and not (idle >= 3 and loop.time() - started > 1.0):
            batches = await consumer.getmany(*tps, timeout_ms=200, max_records=5_000)
            idle = 0 if batches else idle + 1
            for records in batches.values():
                for r in records:
                    scanned += 1
                    try:
                        rec = _decoder.decode(r.value)
                    except (msgspec.DecodeError, TypeError):
                        continue
                    if rec.ts >= since_ms and (sub is None or rec.who == sub):
                        out.append(rec)
    finally:
        await consumer.stop()
    out.sort(key=lambda r: r.ts)
    return out[-limit:]
