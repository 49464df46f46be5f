"""Dead letters: the original bytes plus why and where from in bounded headers, always delivered.

Value = the original record value, key = the original key, byte for byte, up to
``FLEET_DLQ_MAX_VALUE_BYTES`` (a larger value, or a key over 1 KB, is cut there and the
``dlq.truncated`` / ``dlq.original.bytes`` / ``dlq.original.sha256`` headers say so).
Headers (UTF-8, each bounded):

``dlq.error``             reason code (``twins.decoding.REASONS``: tombstone, too_large, invalid, ...)
``dlq.reason``            human-readable reason naming field and value (at most 1 KB)
``dlq.field``             JSON path of the offending field (``$`` for the whole record)
``dlq.value``             the offending value, JSON-encoded where possible (at most 256 B)
``dlq.source.topic`` / ``dlq.source.partition`` / ``dlq.source.offset`` / ``dlq.source.timestamp``

A dead letter that the broker refuses is sent again without key and value (headers only,
``dlq.send_error`` saying why); if that fails too the error propagates, so the source
offset is never committed past a record that is not accounted for.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from streams import metrics
from twins.decoding import REASONS
from twins.errors import InvalidReading

log = logging.getLogger(__name__)

REASON_MAX_BYTES = 1024
FIELD_MAX_BYTES = 256
VALUE_EXCERPT_MAX_BYTES = 256
KEY_MAX_BYTES = 1024


def _cut(text: str | bytes, limit: int) -> bytes:
    data = text.encode("utf-8", "backslashreplace") if isinstance(text, str) else text
    if len(data) <= limit:
        return data
    return data[: limit - 3].decode("utf-8", "ignore").encode() + b"..."


def dlq_headers(error: InvalidReading, topic: str, partition: int, offset: int,
                timestamp_ms: int | None) -> list[tuple[str, bytes]]:
    """Kafka headers describing why and where a record was rejected (every one bounded)."""
    try:
        value = msgspec.json.encode(error.value)
    except (TypeError, ValueError, OverflowError, RecursionError):
        value = repr(error.value).encode("utf-8", "backslashreplace")
    return [
        ("dlq.error", _cut(error.code, 64)),
        ("dlq.reason", _cut(str(error), REASON_MAX_BYTES)),
        ("dlq.field", _cut(error.field, FIELD_MAX_BYTES)),
        ("dlq.value", _cut(value, VALUE_EXCERPT_MAX_BYTES)),
        ("dlq.source.topic", _cut(topic, 256)),
        ("dlq.source.partition", str(partition).encode()),
        ("dlq.source.offset", str(offset).encode()),
        ("dlq.source.timestamp", str(timestamp_ms if timestamp_ms is not None else "").encode()),
    ]


def decode_headers(headers: Any) -> dict[str, str]:
    """Headers as a ``{name: text}`` dict (for consumers and tests)."""
    return {k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)) for k, v in (headers or [])}


@dataclass(frozen=True)
class Rejection:
    """One record that goes to a dead-letter topic, and why."""

    key: bytes | None
    value: bytes | None
    error: InvalidReading
    partition: int
    offset: int
    timestamp_ms: int | None


class DeadLetters:
    """The dead-letter topic of one input topic: bounded records, delivery awaited, counted by reason."""

    def __init__(self, topic: Any, source_topic: str, partitions: int, max_value_bytes: int) -> None:
        self.topic = topic
        self.source_topic = source_topic
        self.partitions = partitions
        self.max_value_bytes = max_value_bytes
        for reason in REASONS:  # every series present at 0, so increase() sees the first dead letter
            metrics.DLQ_OUT.labels(source_topic, reason)

    def record(self, r: Rejection) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:
        """Key, value and headers of the dead letter for ``r`` (cut to the limits)."""
        headers = dlq_headers(r.error, self.source_topic, r.partition, r.offset, r.timestamp_ms)
        key, value, cut = r.key, r.value, []
        if key is not None and len(key) > KEY_MAX_BYTES:
            key, cut = key[:KEY_MAX_BYTES], ["key"]
        if value is not None and len(value) > self.max_value_bytes:
            headers += [("dlq.original.bytes", str(len(value)).encode()),
                        ("dlq.original.sha256", hashlib.sha256(value).hexdigest().encode())]
            value, cut = value[: self.max_value_bytes], cut + ["value"]
        if cut:
            headers.append(("dlq.truncated", ",".join(cut).encode()))
        return key, value, headers

    async def send(self, rejections: Sequence[Rejection]) -> None:
        """Write every rejection and wait until the broker has each one (or its headers-only stand-in)."""
        if not rejections:
            return
        results = await asyncio.gather(*(self._send_one(r, minimal=False) for r in rejections),
                                       return_exceptions=True)
        for r, result in zip(rejections, results):
            if isinstance(result, BaseException):
                log.warning("dead letter of %s[%d]@%d refused (%s: %s); sending it headers only",
                            self.source_topic, r.partition, r.offset, type(result).__name__, result)
                await self._send_one(r, minimal=True, why=f"{type(result).__name__}: {result}")
            metrics.DLQ_OUT.labels(self.source_topic, r.error.code).inc()

    async def _send_one(self, r: Rejection, minimal: bool, why: str = "") -> Any:
        key, value, headers = self.record(r)
        if minimal:
            key, value = None, None
            headers.append(("dlq.send_error", _cut(why, REASON_MAX_BYTES)))
        future = await self.topic.send(key=key, value=value, partition=r.partition % self.partitions,
                                       headers=headers, force=True)
        return await future
