"""The API fuzzed from its own OpenAPI document (Schemathesis) against a real worker: never a 5xx (issue 14).

Schemathesis generates requests that fit the document and requests that break it (wrong types,
out-of-range numbers, strings in every script, odd bodies) for every operation except the
never-ending event stream; each answer must be below 500. A few hand-written hostile requests
that the issue names follow.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from streams.api_spec import openapi
from tests.conftest import ADMIN_TOKEN, Stack, http_get, new_stack

pytestmark = pytest.mark.integration

VIN = "1G1FZ6S09L4100001"
AUTH = f"Authorization: Bearer {ADMIN_TOKEN}\r\n".encode()


@pytest.fixture(scope="module")
def worker(broker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, str]]:
    stack = new_stack(broker, tmp_path_factory.mktemp("api"))
    port = stack.start_worker()
    from kafka import KafkaProducer
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    producer.send(stack.settings.topic_telemetry, key=VIN.encode(), value=json.dumps(
        {"schema": 1, "vin": VIN, "ts": int(time.time() * 1000) - 5000, "seq": 0,
         "signals": {"Vehicle.Speed": 10.0}}).encode())
    producer.flush()
    producer.close()
    yield stack, f"http://127.0.0.1:{port}"
    stack.stop()


schema = schemathesis.openapi.from_dict(openapi())
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@schema.exclude(path="/alerts/stream").parametrize()
@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case: Any, worker: tuple[Stack, str]) -> None:
    response = case.call(base_url=worker[1], timeout=10, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code < 500, (case.method, case.formatted_path, case.query, case.body,
                                        response.status_code, response.text[:300])


def test_the_served_document_is_the_declared_one(worker: tuple[Stack, str]) -> None:
    status, body = http_get(worker[1] + "/openapi.json")
    assert status == 200 and body == json.loads(json.dumps(openapi()))


def test_every_route_of_the_worker_is_declared(worker: tuple[Stack, str]) -> None:
    """No route exists that the document (and so the README, the fuzzing) does not know."""
    declared = {(m.upper(), p) for p, ops in openapi()["paths"].items() for m in ops}
    assert len(declared) > 15
    for method, path in declared:  # each declared route is served: no 404/405 from the router itself
        url = worker[1] + path.replace("{vin}", VIN).replace("{alert_id}", f"{VIN}:r:1").replace(
            "{site_id}", "nowhere").replace("{cell}", "dhwf")
        if path == "/alerts/stream":
            continue
        req = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None,
                                     headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status, text = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, text = err.code, err.read()
        assert status != 405 and not (status == 404 and b"error" not in text), (method, path, status)


def raw_request(base: str, request: bytes, read_timeout: float = 15.0) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=read_timeout) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def test_hostile_requests_named_in_the_issue_get_4xx(worker: tuple[Stack, str]) -> None:
    base = worker[1]
    for query in ("limit=+5", "limit=%D9%A5", "limit=1e3", "limit=%205", "limit=99999999999999999999"):
        status, body = http_get(f"{base}/twins?{query}")
        assert status == 400 and "limit" in body["error"], (query, status, body)
        assert http_get(f"{base}/alerts?{query}")[0] == 400
    assert http_get(f"{base}/fleet/risk?top=-1")[0] == 400
    assert http_get(f"{base}/twins/{VIN}%0A")[0] == 400
    nested = b'{"by": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for body in (nested, b"\xff\xfe", b"[]", b'{"by": "x", "note": "' + b"n" * 3000 + b'"}', b"{" * 50_000):
        answer = raw_request(base, b"POST /alerts/" + VIN.encode() + b":r:1/ack HTTP/1.1\r\nHost: x\r\n" + AUTH +
                             b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() +
                             b"\r\nConnection: close\r\n\r\n" + body)
        status = int(answer.split(b" ", 2)[1])
        assert 400 <= status < 500, (body[:30], answer[:200])
    big = b"x" * (2 << 20)
    answer = raw_request(base, b"POST /alerts/" + VIN.encode() + b":r:1/ack HTTP/1.1\r\nHost: x\r\n" + AUTH +
                         b"Content-Length: " + str(len(big)).encode() + b"\r\nConnection: close\r\n\r\n" + big)
    assert int(answer.split(b" ", 2)[1]) == 413
    assert http_get(base + "/healthz")[0] == 200


def test_slow_header_clients_are_cut_off(broker: Any, tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("FLEET_WEB_IDLE_TIMEOUT_S", "2")
    stack = new_stack(broker, tmp_path)
    try:
        port = stack.start_worker()
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            closed = False
            for i in range(25):  # one header line a second: never completes the request
                time.sleep(1.0)
                try:
                    sock.sendall(f"X-Slow-{i}: y\r\n".encode())
                    sock.settimeout(0.01)
                    if sock.recv(1024) == b"":
                        closed = True
                        break
                except socket.timeout:
                    continue
                except OSError:
                    closed = True
                    break
        assert closed and time.monotonic() - started < 10, "the slow client was not cut off"
        assert http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200
    finally:
        stack.stop()


def test_a_body_sent_in_pieces_is_read_whole(worker: tuple[Stack, str]) -> None:
    """A body that arrives in several TCP segments is read to its end (and a slow one is cut at 10 s)."""
    host, port = worker[1].removeprefix("http://").split(":")
    body = b'{"note": "' + b"n" * 1500 + b'"}'
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        sock.sendall(b"POST /alerts/" + VIN.encode() + b":r:1/ack HTTP/1.1\r\nHost: x\r\n" + AUTH +
                     b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() +
                     b"\r\nConnection: close\r\n\r\n")
        for i in range(0, len(body), 500):
            sock.sendall(body[i:i + 500])
            time.sleep(0.3)
        answer = sock.recv(65536)
    assert int(answer.split(b" ", 2)[1]) == 404, answer[:300]  # decoded whole: the alert is just not active
