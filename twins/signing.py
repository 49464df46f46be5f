"""Signed records: HMAC-SHA256 over a record's exact value bytes, a key id, keys that rotate.

A producer signs each record's value with a shared secret and sends two Kafka headers:

``fleet-kid``  the key id (ASCII, at most 64 characters)
``fleet-sig``  ``HMAC-SHA256(secret, value)`` as 64 lower-case hex characters

The worker's keyring (a JSON keys file, :func:`parse_keyring`) says which secret a key id
has, which Kafka keys (VINs) it may sign for (one vehicle, a gateway's vehicles, or ``"*"``)
and until when it is accepted (``not_after``): to rotate, add the new key, move producers to
it, and give the old one a ``not_after`` at the end of the overlap window. Per fetched batch
the worker asks :meth:`Keyring.at` for the keys valid at that instant (the clock comes in as
``now_ms``: this module stays pure) and checks every record with :meth:`Verifier.check`,
which raises :class:`~twins.errors.InvalidReading` with code ``unsigned`` or
``bad_signature`` and the key id as the value.

>>> ring = parse_keyring(b'{"keys": [{"kid": "gw-1", "secret": "c2VjcmV0LXNlY3JldC1zZWNyZXQ=", "vins": "*"}]}')
>>> value = b'{"vin": "V1"}'
>>> headers = ring.sign(b"V1", value, now_ms=0)
>>> headers[0]
('fleet-kid', b'gw-1')
>>> ring.at(0).check(b"V1", value, headers)
True
>>> try:
...     ring.at(0).check(b"V1", value + b" ", headers)
... except InvalidReading as exc:
...     print(exc.code, exc.value)
bad_signature gw-1
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from twins.errors import ConfigurationError, InvalidReading

#: ``off``: headers ignored; ``verify``: signed records checked, unsigned ones accepted and counted;
#: ``require``: unsigned records dead-lettered too.
MODES: tuple[str, ...] = ("off", "verify", "require")
KID_HEADER = "fleet-kid"
SIG_HEADER = "fleet-sig"
MIN_SECRET_BYTES = 16
_KID = re.compile(r"^[A-Za-z0-9._:@-]{1,64}$")
_DIGEST = hashlib.sha256


@dataclass(frozen=True)
class SigningKey:
    """One shared secret: its id, the Kafka keys (VINs) it may sign for (``None``: any), its expiry."""

    kid: str
    secret: bytes = field(repr=False)
    vins: frozenset[bytes] | None = None
    not_after_ms: int | None = None
    #: HMAC keyed with ``secret`` over nothing yet: each signature copies it (saves the key set-up per record)
    mac: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mac", hmac.new(self.secret, digestmod=_DIGEST))

    def signature(self, value: bytes) -> bytes:
        """``HMAC-SHA256(secret, value)`` as lower-case hex bytes (the ``fleet-sig`` header)."""
        mac = self.mac.copy()
        mac.update(value)
        return mac.hexdigest().encode()


class Verifier:
    """The keys valid at one instant, checking the records of one batch."""

    __slots__ = ("keys", "require")

    def __init__(self, keys: dict[bytes, SigningKey], require: bool = False) -> None:
        self.keys = keys
        self.require = require

    def check(self, key: bytes | None, value: bytes | None, headers: Any) -> bool:
        """True for a valid signature, False for an unsigned record accepted; raises otherwise.

        A record is unsigned when it has neither header: ``unsigned`` if signatures are
        required, else accepted (False). One header without the other, an unknown or expired
        key id, a key id not allowed for this Kafka key, or a signature that does not match the
        value is ``bad_signature``, in either mode (the key id is the error's value).
        """
        kid = sig = None
        for name, data in headers or ():
            if name == KID_HEADER:
                kid = data
            elif name == SIG_HEADER:
                sig = data
        if kid is None and sig is None:
            if self.require:
                raise unsigned_error()
            return False
        shown = _shown(kid)
        entry = self.keys.get(kid) if type(kid) is bytes else None
        if entry is None:
            raise _bad(f"key id {shown!r} is unknown or no longer valid (past its not_after)", shown)
        if entry.vins is not None and key not in entry.vins:
            raise _bad(f"key id {shown!r} may not sign records of Kafka key {_shown(key)!r}", shown)
        if type(sig) is not bytes or value is None or not hmac.compare_digest(entry.signature(value), sig.lower()):
            raise _bad(f"the {SIG_HEADER} header is not the HMAC-SHA256 of the value under key id {shown!r}", shown)
        return True


def unsigned_error() -> InvalidReading:
    """The rejection of an unsigned record in ``require`` mode."""
    return InvalidReading(f"record has no {KID_HEADER}/{SIG_HEADER} headers; signing is required "
                          "(FLEET_SIGNING_MODE=require)", f"headers.{KID_HEADER}", None, code="unsigned")


def _bad(reason: str, kid: str | None) -> InvalidReading:
    return InvalidReading(reason, f"headers.{KID_HEADER}", kid, code="bad_signature")


def _shown(data: Any) -> str | None:
    if data is None:
        return None
    text = data.decode("utf-8", "backslashreplace") if isinstance(data, bytes) else str(data)
    return text if len(text) <= 64 else text[:64] + "..."


class Keyring:
    """Every configured signing key; :meth:`at` gives the ones valid at an instant."""

    def __init__(self, keys: Sequence[SigningKey]) -> None:
        self.keys = tuple(keys)
        self._by_kid = {k.kid.encode(): k for k in self.keys}
        self._cached: tuple[int, int, dict[bytes, SigningKey]] | None = None  # (valid from, until, keys)
        self._chosen: dict[bytes, SigningKey | None] = {}  # VIN -> its signing key, while the valid keys hold

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"Keyring({len(self.keys)} keys: {', '.join(k.kid for k in self.keys)})"

    def at(self, now_ms: int, require: bool = False) -> Verifier:
        """A verifier with the keys whose ``not_after`` has not passed at ``now_ms`` (worked out again only
        when the next key expires); ``require``: unsigned records are rejected."""
        return Verifier(self._valid(now_ms), require)

    def _valid(self, now_ms: int) -> dict[bytes, SigningKey]:
        hit = self._cached
        if hit is None or not hit[0] <= now_ms < hit[1]:
            valid = {kid: k for kid, k in self._by_kid.items() if k.not_after_ms is None or now_ms <= k.not_after_ms}
            later = [k.not_after_ms for k in self.keys if k.not_after_ms is not None and k.not_after_ms >= now_ms]
            hit = self._cached = (now_ms, min(later) + 1 if later else 1 << 62, valid)
            self._chosen = {}
        return hit[2]

    def key_for(self, vin: bytes, now_ms: int) -> SigningKey | None:
        """The key a producer should sign ``vin``'s records with at ``now_ms``: a valid key for exactly its
        vehicles before a wildcard one, the one valid longest first (so producers move to a new key at once)."""
        valid = self._valid(now_ms)
        if vin in self._chosen:
            return self._chosen[vin]
        best = None
        for k in valid.values():
            if k.vins is not None and vin not in k.vins:
                continue
            rank = (k.vins is not None, k.not_after_ms is None, k.not_after_ms or 0)
            if best is None or rank > best[0]:
                best = (rank, k)
        chosen = self._chosen[vin] = best[1] if best else None
        return chosen

    def sign(self, vin: bytes, value: bytes, now_ms: int) -> list[tuple[str, bytes]]:
        """The ``fleet-kid`` / ``fleet-sig`` headers for ``value`` (keyed ``vin``); no valid key is an error."""
        k = self.key_for(vin, now_ms)
        if k is None:
            raise ConfigurationError(f"no signing key valid now covers Kafka key {_shown(vin)!r}; add one to the "
                                     "keys file (FLEET_SIGNING_KEYS)")
        return [(KID_HEADER, k.kid.encode()), (SIG_HEADER, k.signature(value))]


class _KeyDoc(msgspec.Struct, forbid_unknown_fields=True):
    kid: str
    secret: str
    vins: list[str] | str = "*"
    not_after: str | int | None = None
    comment: str | None = None


class _KeysDoc(msgspec.Struct, forbid_unknown_fields=True):
    keys: list[_KeyDoc]


def parse_keyring(raw: bytes, source: str = "keys file") -> Keyring:
    """Decode a keys file (JSON, see the README); every problem names the key id and field, never a secret.

    ``secret`` is base64 of at least 16 random bytes (``openssl rand -base64 32``); ``vins`` is
    a list of VINs (a vehicle's or a gateway's own key) or ``"*"`` (any vehicle); ``not_after``
    is an ISO-8601 time with zone or epoch milliseconds after which the key is refused.
    """
    try:
        doc = msgspec.json.decode(raw, type=_KeysDoc)
    except msgspec.DecodeError as exc:  # the message names a path, never a secret's value
        raise ConfigurationError(f"{source}: not a valid keys file: {exc}") from None
    keys, seen = [], set()
    for i, k in enumerate(doc.keys):
        where = f"{source}: keys[{i}]"
        if not _KID.match(k.kid):
            raise ConfigurationError(f"{where}.kid {_shown(k.kid)!r} must be 1-64 characters of A-Z a-z 0-9 . _ : @ -")
        if k.kid in seen:
            raise ConfigurationError(f"{where}.kid {k.kid!r} appears twice")
        seen.add(k.kid)
        try:
            secret = base64.b64decode(k.secret, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigurationError(f"{where} ({k.kid}).secret is not base64 (value not shown)") from None
        if len(secret) < MIN_SECRET_BYTES:
            raise ConfigurationError(f"{where} ({k.kid}).secret has {len(secret)} bytes; at least "
                                     f"{MIN_SECRET_BYTES} are needed (32 random bytes recommended)")
        if isinstance(k.vins, str):
            if k.vins != "*":
                raise ConfigurationError(f"{where} ({k.kid}).vins {_shown(k.vins)!r} must be a list of VINs or \"*\"")
            vins = None
        elif not k.vins:
            raise ConfigurationError(f"{where} ({k.kid}).vins is empty: list the VINs it signs for, or \"*\"")
        else:
            vins = frozenset(v.encode() for v in k.vins)
        keys.append(SigningKey(k.kid, secret, vins, _epoch_ms(k.not_after, f"{where} ({k.kid}).not_after")))
    return Keyring(keys)


def _epoch_ms(value: str | int | None, where: str) -> int | None:
    if value is None or isinstance(value, int):
        return value
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(f"{where} {_shown(value)!r} is not an ISO-8601 time") from None
    if ts.tzinfo is None:
        raise ConfigurationError(f"{where} {value!r} needs a time zone (e.g. 2027-01-31T00:00:00Z)")
    return int(ts.timestamp() * 1000)
