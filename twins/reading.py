"""Decoding and validating one telemetry record (the wire contract).

A record is JSON::

    {"schema": 1, "vin": "1FA6P8CF0L5100001", "ts": 1767225600000, "seq": 42,
     "signals": {"Vehicle.Speed": 48.2, "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current": 71.5}}

``ts`` is the event time in integer milliseconds since the Unix epoch (UTC);
``seq`` increases by one per message of a vehicle; ``signals`` holds only the
signals that changed (the twin merges). Decoding is strict: wrong types,
out-of-range values and unknown fields are rejected with :class:`InvalidReading`
naming the field and the value.

>>> r = decode_reading(b'{"schema":1,"vin":"1FA6P8CF0L5100001","ts":1767225600000,"seq":0,'
...                    b'"signals":{"Vehicle.Speed":48.2}}')
>>> r.signals.speed
48.2
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec

from twins.errors import InvalidReading
from twins.signals import ALLOWED_LV_STATES, SIGNALS, Signal

SCHEMA_VERSION = 1


def whole(body: str) -> str:
    """A pattern that matches the whole string: Python's ``$`` also matches before a final newline,
    so ``(?!\\n)`` forbids it (valid in JSON Schema's ECMA regexes too).

    >>> import re
    >>> bool(re.match(whole("[A-Z]{2}"), "AB")), bool(re.match(whole("[A-Z]{2}"), "AB\\n"))
    (True, False)
    """
    return f"^{body}(?!\\n)$"


#: ISO 3779: 17 characters, digits and capitals without I, O, Q. One rule for decoders, API and CLIs.
VIN_PATTERN = whole("[A-HJ-NPR-Z0-9]{17}")
DTC_PATTERN = whole("[PCBU][0-9A-F]{4}(-[0-9A-F]{2})?")
_VIN_RE = re.compile(VIN_PATTERN)


def is_vin(text: object) -> bool:
    """True for a well-formed VIN (no surrounding whitespace, no control characters).

    >>> is_vin("1FA6P8CF0L5100001"), is_vin("1FA6P8CF0L5100001\\n"), is_vin("1FA6P8CF0L51000O1")
    (True, False, False)
    """
    return isinstance(text, str) and _VIN_RE.match(text) is not None


def check_vin(text: str, name: str = "vin") -> str:
    """``text`` if it is a VIN, else ``ValueError`` naming ``name`` and the value (for CLIs and settings)."""
    if not is_vin(text):
        raise ValueError(f"{name} {text!r} is not a VIN (17 characters of 0-9 and A-Z without I, O, Q)")
    return text

#: 2000-01-01 .. 2100-01-01 in epoch milliseconds: anything else is a unit mistake (s or µs).
TS_MIN_MS = 946_684_800_000
TS_MAX_MS = 4_102_444_800_000


def _field_type(sig: Signal) -> Any:
    if sig.kind == "float":
        return Annotated[float, msgspec.Meta(ge=sig.minimum, le=sig.maximum)]
    if sig.kind == "bool":
        return bool
    if sig.kind == "str_list":
        return Annotated[
            list[Annotated[str, msgspec.Meta(pattern=DTC_PATTERN)]], msgspec.Meta(max_length=64)
        ]
    if sig.attr == "lv_system_state":
        return Literal[ALLOWED_LV_STATES]  # type: ignore[valid-type]
    return Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


#: The ``signals`` object: one optional field per catalogue entry, named by its VSS path.
Signals = msgspec.defstruct(
    "Signals",
    [
        (s.attr, _field_type(s) | msgspec.UnsetType, msgspec.field(name=s.path, default=msgspec.UNSET))
        for s in SIGNALS
    ],
    forbid_unknown_fields=True,
    omit_defaults=True,
    gc=False,
)


class Reading(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One decoded telemetry record."""

    schema: Literal[1]  # type: ignore[valid-type]
    vin: Annotated[str, msgspec.Meta(pattern=VIN_PATTERN)]
    ts: Annotated[int, msgspec.Meta(ge=TS_MIN_MS, le=TS_MAX_MS)]
    seq: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
    signals: Signals  # type: ignore[valid-type]


_decoder = msgspec.json.Decoder(Reading)
_encoder = msgspec.json.Encoder()
_PATH_RE = re.compile(r"`(\$[^`]*)`\s*$")


def strict_decode(decoder: msgspec.json.Decoder, raw: bytes) -> Any:
    """``decoder.decode(raw)``, turning msgspec errors into :class:`InvalidReading` naming field and value."""
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        field = _error_path(str(exc))
        value = _value_at(raw, field)
        raise InvalidReading(f"{exc} (got {_preview_value(value)})", field, value) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidReading(f"not valid JSON: {exc}", "$", _preview(raw)) from None
    except RecursionError:
        raise InvalidReading("not valid JSON: nested too deeply", "$", _preview(raw)) from None


def decode_reading(raw: bytes) -> Reading:
    """Decode and validate one record; raise :class:`InvalidReading` naming field and value."""
    return strict_decode(_decoder, raw)


def encode_reading(reading: Reading) -> bytes:
    """Encode a reading back to its wire form (used by producers and tests)."""
    return _encoder.encode(reading)


def reading_from_dict(msg: dict[str, Any]) -> Reading:
    """Validate a dict in wire form (e.g. from the simulator) into a :class:`Reading`."""
    return decode_reading(_encoder.encode(msg))


def present_signals(reading: Reading) -> dict[str, Any]:
    """The signals a reading carries, as ``{vss_path: value}``."""
    return {
        sig.path: value
        for sig, value in zip(SIGNALS, msgspec.structs.astuple(reading.signals))
        if value is not msgspec.UNSET
    }


def _error_path(message: str) -> str:
    m = _PATH_RE.search(message)
    return m.group(1) if m else "$"


def _preview_value(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _preview(raw: bytes, limit: int = 120) -> str:
    text = raw[:limit].decode("utf-8", errors="replace")
    return text + ("…" if len(raw) > limit else "")


def _value_at(raw: bytes, path: str) -> Any:
    """Best-effort lookup of the value at a msgspec error path like ``$.signals.Vehicle.Speed[1]``."""
    try:
        node: Any = msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return _preview(raw)
    rest = path[1:]
    if rest.startswith(".signals.") and isinstance(node, dict) and isinstance(node.get("signals"), dict):
        node = node["signals"]
        rest = rest[len(".signals.") :]
        key, _, tail = rest.partition("[")
        if key not in node:
            return None
        node = node[key]
        rest = "[" + tail if tail else ""
    for token in re.findall(r"\.([^.\[]+)|\[(\d+)\]", rest):
        name, index = token
        try:
            node = node[name] if name else node[int(index)]
        except (KeyError, IndexError, TypeError):
            return None
    return node
