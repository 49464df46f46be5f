"""Signed records (twins.signing): HMAC-SHA256 over the value bytes, key ids, scopes, rotation windows."""

from __future__ import annotations

import base64
import doctest
import hashlib
import hmac
import json

import pytest

import twins.signing
from twins.decoding import REASONS
from twins.errors import ConfigurationError, InvalidReading
from twins.signing import KID_HEADER, SIG_HEADER, parse_keyring

OLD = bytes(range(32))
NEW = bytes(range(100, 132))
VEHICLE = bytes(range(50, 82))
NOW = 1_767_225_600_000                 # 2026-01-01T00:00:00Z
OVERLAP_END = NOW + 3_600_000           # the old key is accepted until 01:00


def keys_file(**extra: object) -> bytes:
    doc = {"keys": [
        {"kid": "gw-2025", "secret": base64.b64encode(OLD).decode(), "vins": "*", "not_after": "2026-01-01T01:00:00Z"},
        {"kid": "gw-2026", "secret": base64.b64encode(NEW).decode()},
        {"kid": "veh-V1", "secret": base64.b64encode(VEHICLE).decode(), "vins": ["V1"]},
    ], **extra}
    return json.dumps(doc).encode()


RING = parse_keyring(keys_file())
VALUE = b'{"schema":1,"vin":"V1","ts":1767225600000,"seq":1,"signals":{"Vehicle.Speed":42.0}}'


def signed(kid: str, secret: bytes, value: bytes = VALUE) -> list[tuple[str, bytes]]:
    """Headers as any producer would compute them, with the standard library alone."""
    return [(KID_HEADER, kid.encode()), (SIG_HEADER, hmac.new(secret, value, hashlib.sha256).hexdigest().encode())]


def rejected(key: bytes, value: bytes, headers, now_ms: int = NOW, require: bool = True) -> InvalidReading:
    with pytest.raises(InvalidReading) as err:
        RING.at(now_ms, require).check(key, value, headers)
    assert err.value.code in REASONS
    return err.value


def test_a_valid_signature_is_accepted_by_each_key_kind():
    for kid, secret in (("gw-2026", NEW), ("veh-V1", VEHICLE), ("gw-2025", OLD)):
        assert RING.at(NOW, require=True).check(b"V1", VALUE, signed(kid, secret)) is True
    # header order and a hex digest in upper case do not matter; other headers are ignored
    kid, sig = signed("gw-2026", NEW)
    assert RING.at(NOW, True).check(b"V1", VALUE, [("trace", b"x"), (sig[0], sig[1].upper()), kid]) is True


def test_one_flipped_byte_anywhere_is_a_bad_signature_naming_the_key_id():
    headers = signed("gw-2026", NEW)
    for i in (0, len(VALUE) // 2, len(VALUE) - 1):
        tampered = VALUE[:i] + bytes([VALUE[i] ^ 0x01]) + VALUE[i + 1:]
        err = rejected(b"V1", tampered, headers)
        assert err.code == "bad_signature" and err.value == "gw-2026" and "gw-2026" in str(err)
    sig = bytearray(headers[1][1])
    sig[10] = ord("0") if sig[10] != ord("0") else ord("1")
    assert rejected(b"V1", VALUE, [headers[0], (SIG_HEADER, bytes(sig))]).code == "bad_signature"


def test_wrong_key_unknown_kid_foreign_vin_and_half_headers_are_bad_signatures():
    assert rejected(b"V1", VALUE, signed("gw-2026", OLD)).value == "gw-2026"        # signed with another secret
    assert rejected(b"V1", VALUE, signed("gw-1999", NEW)).value == "gw-1999"        # key id nobody issued
    err = rejected(b"V2", VALUE, signed("veh-V1", VEHICLE))                         # V1's key signing for V2
    assert err.code == "bad_signature" and "V2" in str(err) and err.value == "veh-V1"
    assert rejected(b"V1", VALUE, signed("gw-2026", NEW)[:1]).code == "bad_signature"   # kid without sig
    assert rejected(b"V1", VALUE, signed("gw-2026", NEW)[1:]).value is None            # sig without kid
    long_kid = [(KID_HEADER, b"k" * 5000), (SIG_HEADER, b"0" * 64)]
    assert len(rejected(b"V1", VALUE, long_kid).value) <= 67                            # bounded in the dead letter


def test_unsigned_is_rejected_in_require_mode_and_accepted_and_reported_in_verify_mode():
    err = rejected(b"V1", VALUE, [])
    assert err.code == "unsigned" and "FLEET_SIGNING_MODE=require" in str(err)
    assert rejected(b"V1", VALUE, None).code == "unsigned"
    verify = RING.at(NOW, require=False)
    assert verify.check(b"V1", VALUE, []) is False                      # accepted, reported as unsigned
    assert verify.check(b"V1", VALUE, signed("gw-2026", NEW)) is True
    with pytest.raises(InvalidReading, match="HMAC"):                   # verify mode still holds a signature to it
        verify.check(b"V1", VALUE, signed("gw-2026", OLD))


def test_the_old_key_is_accepted_during_the_overlap_and_rejected_after():
    old = signed("gw-2025", OLD)
    assert RING.at(NOW, True).check(b"V1", VALUE, old)
    assert RING.at(OVERLAP_END, True).check(b"V1", VALUE, old)          # until the configured time, inclusive
    err = rejected(b"V1", VALUE, old, now_ms=OVERLAP_END + 1)
    assert err.code == "bad_signature" and err.value == "gw-2025" and "not_after" in str(err)
    assert RING.at(OVERLAP_END + 1, True).check(b"V1", VALUE, signed("gw-2026", NEW))   # the new key goes on
    assert RING.at(NOW, True).check(b"V1", VALUE, old)                  # a verifier for an earlier instant again


def test_producers_sign_with_the_vehicle_key_first_then_the_longest_valid_gateway_key():
    assert RING.key_for(b"V1", NOW).kid == "veh-V1"
    assert RING.key_for(b"V9", NOW).kid == "gw-2026"                    # no expiry beats the expiring old key
    headers = RING.sign(b"V9", VALUE, NOW)
    assert headers == signed("gw-2026", NEW)
    only_old = parse_keyring(json.dumps({"keys": [json.loads(keys_file())["keys"][0]]}).encode())
    assert only_old.key_for(b"V9", NOW).kid == "gw-2025"
    with pytest.raises(ConfigurationError, match="no signing key"):
        only_old.sign(b"V9", VALUE, OVERLAP_END + 1)


@pytest.mark.parametrize("doc, message", [
    (b"[]", "not a valid keys file"),
    (b'{"keys": [{"kid": "a b", "secret": "AAAAAAAAAAAAAAAAAAAAAA=="}]}', "keys[0].kid 'a b'"),
    (b'{"keys": [{"kid": "k", "secret": "not base64!"}]}', "keys[0] (k).secret is not base64"),
    (b'{"keys": [{"kid": "k", "secret": "c2hvcnQ="}]}', "has 5 bytes; at least 16"),
    (b'{"keys": [{"kid": "k", "secret": "AAAAAAAAAAAAAAAAAAAAAA==", "vins": "V1"}]}', "must be a list"),
    (b'{"keys": [{"kid": "k", "secret": "AAAAAAAAAAAAAAAAAAAAAA==", "vins": []}]}', "vins is empty"),
    (b'{"keys": [{"kid": "k", "secret": "AAAAAAAAAAAAAAAAAAAAAA==", "not_after": "2026-01-01"}]}', "time zone"),
    (b'{"keys": [{"kid": "k", "secret": "AAAAAAAAAAAAAAAAAAAAAA==", "not_after": "soon"}]}', "ISO-8601"),
    (b'{"keys": [{"kid": "k", "secret": "AAAAAAAAAAAAAAAAAAAAAA=="}, {"kid": "k", "secret": "AAAAAAAAAAAAAAAAAAAAAA=="}]}',
     "appears twice"),
    (b'{"keys": [{"kid": "k", "secret": "AAAAAAAAAAAAAAAAAAAAAA==", "scope": "*"}]}', "scope"),
])
def test_a_bad_keys_file_names_key_and_field_and_never_shows_a_secret(doc, message):
    with pytest.raises(ConfigurationError) as err:
        parse_keyring(doc, "keys.json")
    assert message in str(err.value) and "keys.json" in str(err.value)
    assert "AAAAAAAAAAAAAAAAAAAAAA==" not in str(err.value) and "not base64!" not in str(err.value)


def test_secrets_stay_out_of_reprs():
    shown = repr(RING) + repr(RING.keys) + repr(RING.at(NOW).keys)
    assert "gw-2026" in shown
    for secret in (OLD, NEW, VEHICLE):
        assert repr(secret) not in shown and base64.b64encode(secret).decode() not in shown and secret.hex() not in shown


def test_doctests():
    assert doctest.testmod(twins.signing).failed == 0
