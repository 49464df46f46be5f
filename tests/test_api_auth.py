"""API identity and access against a real worker (issue 16): every route's declared scope is enforced.

For every route of ``streams.api_spec.ROUTES``: no token -> 401 with ``WWW-Authenticate``, a token
without the scope -> 403 naming it, a token with exactly that scope -> the route's own answer.
Expired, not-yet-valid, wrongly signed, ``alg=none`` and foreign-issuer tokens are refused; RS256 and
ES256 tokens verify with a public key file and a JWKS file; refusals and acks land in the audit trail.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from kafka import KafkaProducer

from streams.api_spec import ROUTES
from streams.auth import AUTHENTICATED, SCOPES, AuthError, TokenVerifier, mint
from streams.settings import Settings
from tests.conftest import TEST_SECRET, Stack, http_get, new_stack, wait_until

pytestmark = pytest.mark.integration

VIN = "1G1FZ6S09L4100001"
#: What a caller with the right scope gets from each route on this worker (no alerts, no sites configured).
ANSWER = {"/twins/{vin}": 200, "/weather/{cell}": 200, "/alerts/{alert_id}": 404, "/alerts/{alert_id}/ack": 404,
          "/alerts/{alert_id}/resolve": 404, "/sites/{site_id}/schedule": 404, "/sites/{site_id}/plan-metrics": 404}


def request(base: str, method: str, path: str, token: str | None, body: bytes | None = None) -> tuple[int, Any, Any]:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    status, challenge = resp.status, resp.getheader("WWW-Authenticate")
    raw = resp.read(16) if path.startswith("/alerts/stream") and status == 200 else resp.read()  # never ends
    conn.close()
    try:
        payload = json.loads(raw)
    except ValueError:
        payload = raw
    return status, payload, challenge


def concrete(path: str) -> str:
    return path.replace("{vin}", VIN).replace("{alert_id}", f"{VIN}:inv-hot:1").replace(
        "{site_id}", "depot-x").replace("{cell}", "dhwf")


@pytest.fixture(scope="module")
def worker(broker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, str]]:
    stack = new_stack(broker, tmp_path_factory.mktemp("auth"))
    port = stack.start_worker()
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    now = int(time.time() * 1000)
    producer.send(stack.settings.topic_telemetry, key=VIN.encode(), value=json.dumps(
        {"schema": 1, "vin": VIN, "ts": now - 5000, "seq": 0, "signals": {"Vehicle.Speed": 10.0}}).encode())
    producer.send(stack.settings.topic_weather, key=b"dhwf", value=json.dumps(
        {"schema": 1, "cell": "dhwf", "ts": now - 3_600_000, "issued": now - 3_600_000, "air_temp_c": 20.0}).encode())
    producer.flush()
    producer.close()
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_get(f"{base}/twins/{VIN}")[0] == 200 and http_get(f"{base}/weather/dhwf")[0] == 200,
               30, what="the twin and the weather cell exist")
    yield stack, base
    stack.stop()


def test_every_route_enforces_its_declared_scope(worker: tuple[Stack, str]) -> None:
    _, base = worker
    checked = 0
    for route in ROUTES:
        path = concrete(route.path)
        body = b"{}" if route.method == "POST" else None
        if route.scope in ("public", "metrics"):  # /healthz, /readyz; /metrics is open by default
            assert request(base, route.method, path, None, body)[0] == 200, route.path
            continue
        status, payload, challenge = request(base, route.method, path, None, body)
        assert status == 401 and challenge.startswith("Bearer ") and "token" in payload["error"], route.path
        if route.scope != AUTHENTICATED:
            others = [s for s in SCOPES if s not in (route.scope, "admin")]
            status, payload, challenge = request(base, route.method, path, mint(TEST_SECRET, "ops.x", others, 60),
                                                 body)
            assert status == 403 and payload["required_scope"] == route.scope, route.path
            assert 'error="insufficient_scope"' in challenge
        right = mint(TEST_SECRET, "ops.x", [] if route.scope == AUTHENTICATED else [route.scope], 60)
        status, _, _ = request(base, route.method, path, right, body)
        assert status == ANSWER.get(route.path, 200), (route.path, status)
        checked += 1
    assert checked == len(ROUTES) - 3


def test_bad_tokens_are_refused(worker: tuple[Stack, str], tmp_path: Path) -> None:
    _, base = worker
    now = time.time()
    claims = {"sub": "ops.x", "scope": "fleet:read"}
    bad = {
        "expired": mint(TEST_SECRET, "ops.x", ["fleet:read"], 60, now_s=now - 3600),
        "not yet valid": jwt.encode(claims | {"nbf": int(now) + 3600, "exp": int(now) + 7200}, TEST_SECRET, "HS256"),
        "wrong secret": mint("another-secret-of-at-least-32-chars!!", "ops.x", ["fleet:read"], 60),
        "alg none": jwt.encode(claims | {"exp": int(now) + 60}, None, algorithm="none"),
        "no exp": jwt.encode(claims, TEST_SECRET, "HS256"),
        "flipped signature": mint(TEST_SECRET, "ops.x", ["fleet:read"], 60)[:-2] + "AA",
        "garbage": "not.a.token",
    }
    for name, token in bad.items():
        status, payload, challenge = request(base, "GET", "/fleet/summary", token)
        assert status == 401 and 'error="invalid_token"' in challenge, (name, status, payload)
    assert request(base, "GET", "/fleet/summary", mint(TEST_SECRET, "ops.x", ["fleet:read"], 60))[0] == 200


def test_sse_takes_the_header_token_and_the_query_only_when_enabled(worker: tuple[Stack, str]) -> None:
    _, base = worker
    token = mint(TEST_SECRET, "ops.x", ["alerts:read"], 60)
    assert request(base, "GET", "/alerts/stream", token)[0] == 200
    assert request(base, "GET", f"/alerts/stream?access_token={token}", None)[0] == 401


def test_refusals_and_acks_are_audited(worker: tuple[Stack, str]) -> None:
    _, base = worker
    request(base, "GET", "/fleet/summary", mint(TEST_SECRET, "mallory", ["twins:read"], 60))
    request(base, "POST", f"/alerts/{VIN}:inv-hot:1/ack", mint(TEST_SECRET, "ops.jane", ["alerts:ack"], 60), b"{}")
    request(base, "POST", f"/alerts/{VIN}:inv-hot:1/resolve", mint(TEST_SECRET, "ops.joe", ["alerts:ack"], 60), b"{}")
    admin = mint(TEST_SECRET, "auditor", ["admin"], 60)

    def records() -> list[dict[str, Any]]:
        status, body, _ = request(base, "GET", "/audit?limit=1000", admin)
        return body["records"] if status == 200 else []

    got = wait_until(lambda: (r := records()) and {"ops.jane", "ops.joe"} <= {x["who"] for x in r} and r, 30,
                     what="audit records")
    denied = [r for r in got if r["who"] == "mallory"]
    assert denied and denied[0]["action"] == "authorization" and denied[0]["outcome"] == "denied"
    assert denied[0]["target"] == "GET /fleet/summary" and "lacks scope fleet:read" in denied[0]["detail"]
    assert denied[0]["source"] == "127.0.0.1"
    ack = [r for r in got if r["who"] == "ops.jane"]
    assert ack[0]["action"] == "ack" and ack[0]["outcome"] == "failed" and ack[0]["target"] == f"{VIN}:inv-hot:1"
    resolve = [r for r in got if r["who"] == "ops.joe"]
    assert resolve[0]["action"] == "resolve" and resolve[0]["outcome"] == "failed" and "not open" in resolve[0]["detail"]
    status, body, _ = request(base, "GET", "/audit?sub=mallory", admin)
    assert status == 200 and {r["who"] for r in body["records"]} == {"mallory"}
    assert request(base, "GET", "/audit", mint(TEST_SECRET, "ops.x", ["alerts:ack"], 60))[0] == 403


def test_the_worker_binds_loopback_by_default(worker: tuple[Stack, str]) -> None:
    stack, base = worker
    assert Settings().web_host == "127.0.0.1"
    port = int(base.rsplit(":", 1)[1])
    addresses = {a for a in (l.split()[1] for l in Path("/proc/net/tcp").read_text().splitlines()[1:]
                             if l.split()[3] == "0A") if int(a.split(":")[1], 16) == port}
    assert addresses == {"0100007F:" + f"{port:04X}"}  # 127.0.0.1 only, never 0.0.0.0
    outside = [a for a in {i[4][0] for i in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
               if not a.startswith("127.")]
    for address in outside:  # the machine's other addresses are not served
        with pytest.raises(OSError):
            socket.create_connection((address, port), timeout=2).close()


def _hs256_by_hand(claims: dict[str, Any], key: bytes) -> str:
    """An HS256 token keyed with arbitrary bytes (PyJWT refuses to make one with a public key, as it should)."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    return head + "." + b64(hmac.new(key, head.encode(), hashlib.sha256).digest())


def _pem(key: Any) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_identity_provider_tokens_verify_with_a_public_key_or_a_jwks_file(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "rsa.pem").write_bytes(_pem(rsa_key))
    claims = {"sub": "ops.jane", "scp": ["alerts:read"], "exp": int(time.time()) + 60, "iss": "https://idp.example",
              "aud": "fleet-api"}
    by_pem = TokenVerifier(public_key_file=tmp_path / "rsa.pem", issuer="https://idp.example", audience="fleet-api")
    assert by_pem.verify(jwt.encode(claims, rsa_key, "RS256")).allows("alerts:read")
    for wrong in ({"iss": "https://evil.example"}, {"aud": "other-api"}):
        with pytest.raises(AuthError):
            by_pem.verify(jwt.encode(claims | wrong, rsa_key, "RS256"))
    with pytest.raises(AuthError, match="no configured key"):  # algorithm confusion: HS256 keyed with the PEM
        by_pem.verify(_hs256_by_hand(claims, _pem(rsa_key)))
    jwks = {"keys": [json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())) | {"kid": "r1"},
                     json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key())) | {"kid": "e1"}]}
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    by_jwks = TokenVerifier(jwks_file=tmp_path / "jwks.json", audience="fleet-api")
    assert by_jwks.verify(jwt.encode(claims, ec_key, "ES256", headers={"kid": "e1"})).sub == "ops.jane"
    assert by_jwks.verify(jwt.encode(claims, rsa_key, "RS256", headers={"kid": "r1"})).sub == "ops.jane"
    with pytest.raises(AuthError):  # signed by the RSA key but claims to be the EC key
        by_jwks.verify(jwt.encode(claims, rsa_key, "RS256", headers={"kid": "e1"}))
