"""The decoding boundary of every input: raw bytes in, a typed record or :class:`InvalidReading` out.

Each input topic (telemetry, maintenance, weather, charging requests, grid) hands its raw
Kafka value to :func:`decode_input` with that topic's decoder. Nothing a producer can send
escapes it as anything but :class:`~twins.errors.InvalidReading` with a short ``code``
(one of :data:`REASONS`), the JSON path of the offending field and its value:

>>> from twins.reading import decode_reading
>>> limits = InputLimits(max_record_bytes=4096)
>>> decode_input(None, decode_reading, limits)
Traceback (most recent call last):
...
twins.errors.InvalidReading: tombstone: the record has no value (null); a tombstone deletes nothing here
>>> try:
...     decode_input(b'{"schema":1,"vin":' + b"[" * 1000 + b"]" * 1000 + b"}", decode_reading, limits)
... except InvalidReading as exc:
...     print(exc.code, exc.field, exc.reason[:35])
invalid $.vin Expected `str`, got `array` - at `$

Plausibility checks that need the worker's clock take ``now_ms`` as plain data
(:func:`check_not_future`), so this module stays pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from twins.errors import InvalidReading

T = TypeVar("T")

#: Every reason code a dead letter can carry (the ``dlq.error`` header and the counter's ``reason`` label).
REASONS: tuple[str, ...] = (
    "tombstone",        # null value
    "too_large",        # value over FLEET_MAX_RECORD_BYTES, not decoded
    "invalid",          # not JSON, wrong type, out of range, unknown field
    "key_mismatch",     # the Kafka key is not the record's VIN / cell / site
    "future_ts",        # event time further ahead of the worker's clock than FLEET_MAX_FUTURE_SKEW_S
    "implausible",      # well-formed but impossible (maintenance before service, prices beyond bounds)
    "wrong_partition",  # keyed right but produced to another partition than murmur2(key) gives
    "unknown_site",     # a charging/grid message for a site this deployment does not have
    "processing",       # decoded, but applying it failed (the record is kept, the worker goes on)
    "unsigned",         # no fleet-kid/fleet-sig headers while FLEET_SIGNING_MODE=require (twins.signing)
    "bad_signature",    # unknown/expired/unauthorised key id or an HMAC that does not match the value
)


@dataclass(frozen=True)
class InputLimits:
    """Bounds every input is checked against before and after decoding (from the worker's settings)."""

    max_record_bytes: int = 256 * 1024
    max_future_skew_ms: int = 5 * 60_000


def decode_input(raw: bytes | None, decode: Callable[[bytes], T], limits: InputLimits) -> T:
    """``decode(raw)`` behind the size and tombstone checks; any failure is :class:`InvalidReading`.

    Decoders already raise :class:`InvalidReading` for what they know is wrong; everything else a
    hostile value could make them raise (``RecursionError``, ``UnicodeDecodeError``, ``TypeError``,
    ``OverflowError``, ...) is turned into one too, so a record can never stop the worker.
    """
    if raw is None:
        raise InvalidReading("tombstone: the record has no value (null); a tombstone deletes nothing here",
                             "$", None, code="tombstone")
    if len(raw) > limits.max_record_bytes:
        raise InvalidReading(f"record of {len(raw)} bytes is larger than the limit of {limits.max_record_bytes} "
                             "bytes (FLEET_MAX_RECORD_BYTES)", "$", len(raw), code="too_large")
    try:
        return decode(raw)
    except InvalidReading:
        raise
    except RecursionError:
        raise InvalidReading("not valid JSON: nested too deeply", "$", None) from None
    except Exception as exc:  # noqa: BLE001 - the boundary: whatever a hostile record raises is a rejection
        raise InvalidReading(f"undecodable record: {type(exc).__name__}: {exc}", "$", None) from None


def check_key(key: bytes | None, expected: str, field: str, what: str) -> None:
    """The Kafka key must be ``expected`` (the record's VIN, cell or site id) as UTF-8."""
    if key is None or key != expected.encode():
        shown = key if key is None or len(key) <= 40 else key[:40] + b"..."
        raise InvalidReading(f"record key {shown!r} does not match {what} {expected!r}; producers must key by "
                             f"{what}", field, expected, code="key_mismatch")


def check_not_future(ts_ms: int, now_ms: int, limits: InputLimits, field: str) -> None:
    """Reject an event time more than ``max_future_skew_ms`` ahead of ``now_ms`` (the worker's clock)."""
    ahead = ts_ms - now_ms
    if ahead > limits.max_future_skew_ms:
        raise InvalidReading(f"{field} {ts_ms} is {ahead / 1000:.0f} s ahead of the worker's clock ({now_ms}); "
                             f"at most {limits.max_future_skew_ms / 1000:.0f} s (FLEET_MAX_FUTURE_SKEW_S) is "
                             "accepted", field, ts_ms, code="future_ts")
