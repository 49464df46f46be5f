"""The HTTP decoding boundary: query parameters and request bodies in, typed values or a 4xx out.

Every handler reads its inputs through these helpers, so a hostile request ends in a 400,
408 or 413 naming the parameter and value, never in a 500:

>>> query_int({"limit": "20"}, "limit", 100, 1, 1000)
20
>>> query_int({"limit": "+5"}, "limit", 100, 1, 1000)
Traceback (most recent call last):
...
streams.http_input.BadInput: query parameter limit='+5' must be a whole number of ASCII digits
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import msgspec
from aiohttp import web as aioweb

from twins.errors import FleetAssuranceError

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Largest request body any endpoint reads, and how long a client may take to send it.
MAX_BODY_BYTES = 64 * 1024
BODY_TIMEOUT_S = 10.0


class BadInput(FleetAssuranceError):
    """A request the API refuses; ``status`` is the HTTP status to answer with (400, 408 or 413)."""

    def __init__(self, message: str, status: int = 400) -> None:
        self.status = status
        super().__init__(message)


def query_int(query: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    """Query parameter ``name`` as an int in [lo, hi]: ASCII digits only (no sign, spaces or other scripts)."""
    raw = query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12):
        raise BadInput(f"query parameter {name}={raw[:40]!r} must be a whole number of ASCII digits")
    value = int(raw)
    if not lo <= value <= hi:
        raise BadInput(f"query parameter {name}={value} must be between {lo} and {hi}")
    return value


async def read_body(request: aioweb.Request, max_bytes: int = MAX_BODY_BYTES,
                    timeout_s: float = BODY_TIMEOUT_S) -> bytes:
    """The request body, at most ``max_bytes`` (else 413), received within ``timeout_s`` (else 408)."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise BadInput(f"request body of {request.content_length} bytes is larger than {max_bytes}", 413)
    async def whole() -> bytes:
        chunks, size = [], 0
        while chunk := await request.content.read(64 * 1024):  # a read returns what has arrived so far
            size += len(chunk)
            if size > max_bytes:
                raise BadInput(f"request body is larger than {max_bytes} bytes", 413)
            chunks.append(chunk)
        return b"".join(chunks)

    try:
        return await asyncio.wait_for(whole(), timeout_s)
    except asyncio.TimeoutError:
        raise BadInput(f"request body not received within {timeout_s:g} s", 408) from None


def decode_body(body: bytes, kind: type[T]) -> T:
    """``body`` as JSON of type ``kind`` (msgspec, strict); an empty body is ``{}``."""
    try:
        return msgspec.json.decode(body if body.strip() else b"{}", type=kind)
    except msgspec.ValidationError as exc:
        raise BadInput(f"invalid request body: {exc}") from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise BadInput(f"request body is not valid JSON: {str(exc)[:200] or type(exc).__name__}") from None


Handler = Callable[[aioweb.Request], Awaitable[aioweb.StreamResponse]]


@aioweb.middleware
async def error_boundary(request: aioweb.Request, handler: Handler) -> aioweb.StreamResponse:
    """:class:`BadInput` -> its status with a JSON error; anything unexpected -> a 500 naming an error id
    that the log has with its traceback (no traceback, file path or exception text reaches the client)."""
    try:
        return await handler(request)
    except BadInput as exc:
        return aioweb.json_response({"error": str(exc)}, status=exc.status)
    except aioweb.HTTPException:
        raise
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - the last line of defence of the API
        error_id = uuid.uuid4().hex[:12]
        log.exception("HTTP %s %s failed (error id %s)", request.method, request.path, error_id)
        return aioweb.json_response({"error": "internal error", "error_id": error_id}, status=500)


def install(web_app: aioweb.Application) -> None:
    """Put :func:`error_boundary` in front of every route of the worker's aiohttp application."""
    web_app.middlewares.append(error_boundary)
