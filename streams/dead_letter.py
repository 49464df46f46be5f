"""Dead-letter records: the original bytes, untouched, plus why and where from in headers.

Value = the original record value (byte for byte), key = the original key.
Headers (all UTF-8 strings):

``dlq.reason``            human-readable reason naming field and value
``dlq.field``             JSON path of the offending field (``$`` for the whole record)
``dlq.value``             the offending value, JSON-encoded when it could be recovered
``dlq.error``             error class (``InvalidReading``, ``KeyMismatch``)
``dlq.source.topic`` / ``dlq.source.partition`` / ``dlq.source.offset`` / ``dlq.source.timestamp``
"""

from __future__ import annotations

from typing import Any

import msgspec

from twins.errors import InvalidReading


def dlq_headers(error: InvalidReading, kind: str, topic: str, partition: int, offset: int,
                timestamp_ms: int | None) -> list[tuple[str, bytes]]:
    """Kafka headers describing why and where a record was rejected."""
    try:
        value = msgspec.json.encode(error.value)
    except (TypeError, msgspec.EncodeError):
        value = repr(error.value).encode()
    return [
        ("dlq.reason", str(error).encode()),
        ("dlq.field", error.field.encode()),
        ("dlq.value", value[:1024]),
        ("dlq.error", kind.encode()),
        ("dlq.source.topic", topic.encode()),
        ("dlq.source.partition", str(partition).encode()),
        ("dlq.source.offset", str(offset).encode()),
        ("dlq.source.timestamp", str(timestamp_ms if timestamp_ms is not None else "").encode()),
    ]


def decode_headers(headers: Any) -> dict[str, str]:
    """Headers as a ``{name: text}`` dict (for consumers and tests)."""
    return {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in (headers or [])}
