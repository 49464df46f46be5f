"""Faults through the real broker: a worker killed mid-stream under `fleet run`, a worker joining and
leaving under load, a paused broker. Each ends with every twin equal to a reference computed from all
produced records, no record applied twice and every (alert_id, revision) once on the alerts topic."""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from streams.broker import free_port
from streams.settings import Settings
from tests.conftest import ADMIN_TOKEN, ROOT, Stack, http_get, wait_until
from tests.integration.test_alerts_stream import DTC, INV, RULES, SseClient, expected_alerts, topic_records
from tests.integration.test_pipeline import make_vin, reference_twins
from tests.integration.test_run_stack import alive, children_of
from twins.reading import reading_from_dict

pytestmark = pytest.mark.integration

def fleet_messages(vehicles: int, per_vehicle: int, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(unique messages in send order, send order with duplicates); every third vehicle runs hot for 30 s
    and every fourth reports P0A3C for a while, so alerts open and resolve."""
    rng = random.Random(seed)
    t0 = int(time.time() * 1000) - 600_000
    unique: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []
    for seq in range(per_vehicle):
        for v in range(vehicles):
            hot = v % 3 == 0 and 10 <= seq < 40
            sig: dict[str, Any] = {"Vehicle.Speed": round(rng.uniform(0, 130), 2),
                                   INV: 115.0 if hot else round(rng.uniform(20, 90), 1)}
            if seq % 10 == 0:
                sig[DTC] = ["P0A3C"] if v % 4 == 0 and 10 <= seq < 30 else []
            m = {"schema": 1, "vin": make_vin(v), "ts": t0 + seq * 1000 + rng.randint(0, 500), "seq": seq,
                 "signals": sig}
            unique.append(m)
            sent.append(m)
            if rng.random() < 0.1:
                sent.append(m)  # a producer retry: the same record twice
    return unique, sent


class Producer(threading.Thread):
    """Sends ``messages`` at ``rate`` records/s with retries (it keeps going through a broker pause)."""

    def __init__(self, stack: Stack, messages: list[dict[str, Any]], rate: float) -> None:
        super().__init__(daemon=True)
        self.stack, self.messages, self.rate = stack, messages, rate
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        producer = KafkaProducer(bootstrap_servers=self.stack.broker.bootstrap, linger_ms=5, retries=100,
                                 request_timeout_ms=60_000, delivery_timeout_ms=120_000, acks=1,
                                 max_in_flight_requests_per_connection=1)
        try:
            start = time.monotonic()
            for n, m in enumerate(self.messages):
                producer.send(self.stack.settings.topic_telemetry, key=m["vin"].encode(), value=json.dumps(m).encode())
                delay = start + n / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            producer.flush(timeout=120)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            producer.close()
            self.done.set()


class Prober(threading.Thread):
    """Asks workers for twins that exist, all the time, and tallies the answers."""

    def __init__(self, ports: list[int], vins: list[str]) -> None:
        super().__init__(daemon=True)
        self.ports, self.vins = ports, vins
        self.statuses: Counter[int] = Counter()
        self.bad: list[tuple[int, str, int, Any]] = []
        self.ready_503: list[Any] = []
        self.stop = threading.Event()

    def run(self) -> None:
        rng = random.Random(1)
        while not self.stop.is_set():
            for port in self.ports:
                vin = rng.choice(self.vins)
                try:
                    status, body = http_get(f"http://127.0.0.1:{port}/twins/{vin}", timeout=10)
                    ready, rbody = http_get(f"http://127.0.0.1:{port}/readyz", timeout=10)
                except OSError:  # this worker is down right now: nobody to answer
                    continue
                self.statuses[status] += 1
                if status == 503:
                    if not (isinstance(body, dict) and body.get("error") and body.get("retry_after_s")):
                        self.bad.append((port, vin, status, body))
                elif status != 200:
                    self.bad.append((port, vin, status, body, time.time()))
                if ready == 503:
                    self.ready_503.append(rbody)
            time.sleep(0.05)


def assert_settled(stack: Stack, port: int, unique: list[dict[str, Any]], sent: list[dict[str, Any]]) -> None:
    """Twins equal the reference, nothing applied twice, every alert revision once and as the engine says."""
    ref = reference_twins(unique, sent)
    try:
        wait_until(lambda: (s := http_get(stack.url(port, "/fleet/summary"))[1])["messages_applied"] == len(unique)
                   and not s.get("partial"), 60, interval=0.5, what=f"all {len(unique)} unique records applied once")
    except AssertionError as exc:
        off = {vin: (http_get(stack.url(port, f"/twins/{vin}"))[1].get("messages", {}).get("applied"), want["applied"])
               for vin, want in ref.items()}
        raise AssertionError(f"{exc}; summary {http_get(stack.url(port, '/fleet/summary'))[1]}; applied vs "
                             f"reference where they differ: { {v: p for v, p in off.items() if p[0] != p[1]} }") from None
    for vin, want in ref.items():
        status, body = http_get(stack.url(port, f"/twins/{vin}"))
        assert status == 200, (vin, body)
        got = {p: {"value": s["value"], "ts": s["ts"]} for p, s in body["signals"].items()}
        assert got == want["signals"], vin
        assert body["messages"]["applied"] == want["applied"], vin
        assert (body["first_seen_ms"], body["last_seen_ms"]) == (want["first"], want["last"]), vin
    expected = expected_alerts([reading_from_dict(m) for m in unique])  # no model: no risk alerts
    assert len(expected) >= 10 and "resolved" in expected.values()

    def alerts_settled() -> list[dict[str, Any]] | None:
        recs = topic_records(stack)
        latest = {r["alert_id"]: r["status"] for r in recs}
        return recs if latest == expected else None

    recs = wait_until(alerts_settled, 30, interval=1.0, what="the alerts topic to match the engine's verdict")
    keys = Counter((r["alert_id"], r["revision"]) for r in recs)
    assert [k for k, n in keys.items() if n > 1] == [], "an alert revision was published twice"


def with_alert_rules(settings: Any, tmp_path: Path, **more: Any) -> Any:
    """``settings`` with the alert tests' rules (signal and DTC rules fire; the risk rule needs a model)."""
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    return settings.model_copy(update={"alert_rules": rules, "alert_rules_reload_s": 0.5, "alert_sweep_s": 1.0,
                                       **more})


def worker_pid(run_pid: int, port: int) -> int:
    """Pid of the `fleet run` child serving ``port`` (0: none right now)."""
    for pid in children_of(run_pid):
        try:
            environ = (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"FLEET_WEB_PORT={port}".encode() in environ:
            return pid
    return 0


def two_free_ports() -> int:
    while True:
        port = free_port()
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue


def sse_clients(port: int) -> float:
    text = http_get(f"http://127.0.0.1:{port}/metrics")[1]
    return float(next(ln.split()[-1] for ln in text.splitlines() if ln.startswith("fleet_alert_stream_clients ")))


def test_fleet_run_restarts_a_killed_worker_and_loses_nothing(stack: Stack, tmp_path: Path):
    """kill -9 of one of two `fleet run` workers while the producer keeps sending: the other answers
    (503 + Retry-After while partitions move, never 500 or a false 404), the supervisor restarts the killed
    one, which rejoins; nothing is lost or applied twice; Ctrl-C then stops everything within 10 s even
    with an SSE client connected."""
    (tmp_path / "no-models").mkdir()  # `fleet run` would load the demo risk models otherwise
    # the default flush interval: the killed worker's last 5 s of twins exist only in the telemetry log
    stack.settings = with_alert_rules(stack.settings, tmp_path, risk_model_dir=tmp_path / "no-models",
                                      twin_flush_interval_s=Settings.model_fields["twin_flush_interval_s"].default)
    port = two_free_ports()
    ports = [port, port + 1]
    env = stack.env(port) | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "run", "--vehicles", "0", "--workers", "2",
                             "--web-port", str(port)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    out: list[str] = []
    threading.Thread(target=lambda: out.extend(iter(proc.stdout.readline, "")), daemon=True).start()  # type: ignore[union-attr]
    prober = None
    try:
        wait_until(lambda: any("Ctrl-C stops everything" in ln for ln in out), 120, what="the banner")
        banner = "".join(out)
        assert all(f"http://127.0.0.1:{p}" in banner for p in ports), banner
        unique, sent = fleet_messages(vehicles=24, per_vehicle=60, seed=4)
        vins = sorted({m["vin"] for m in unique})
        first = len(vins) * 3
        Producer(stack, sent[:first], rate=1e9).run()  # every VIN exists before the faults begin
        for vin in vins:
            wait_until(lambda vin=vin: http_get(stack.url(port, f"/twins/{vin}"))[0] == 200, 30, what=vin)
        sse = SseClient(port)
        sse.start()
        assert sse.connected.wait(10)
        prober = Prober(ports, vins)
        prober.start()
        producer = Producer(stack, sent[first:], rate=150)
        producer.start()
        time.sleep(2)
        victim = worker_pid(proc.pid, ports[1])
        assert victim, "no worker child on the second port"
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: any(f"worker :{ports[1]} (pid {victim}) killed by SIGKILL" in ln for ln in out), 10,
                   what="the supervisor noticing the death")
        wait_until(lambda: any(f"restarting worker :{ports[1]}" in ln for ln in out), 10, what="the restart")
        wait_until(lambda: worker_pid(proc.pid, ports[1]) not in (0, victim)
                   and http_get(stack.url(ports[1], "/readyz"))[0] == 200, 90, what="the restarted worker ready")
        assert producer.done.wait(60) and producer.error is None, producer.error
        assert_settled(stack, port, unique, sent)
        prober.stop.set()
        prober.join(15)
        assert prober.bad == [], prober.bad[:5]
        assert prober.statuses[200] > 20 and prober.statuses[503] >= 1, prober.statuses
        assert any("rebalancing" in " ".join(b["reasons"]) or "recovering" in " ".join(b["reasons"])
                   for b in prober.ready_503), prober.ready_503[:3]
        # the SSE gauge follows clients: one more comes and goes
        extra = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        extra.request("GET", "/alerts/stream", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert extra.getresponse().status == 200
        wait_until(lambda: sse_clients(port) == 2, 5, what="two SSE clients counted")
        extra.close()
        wait_until(lambda: sse_clients(port) == 1, 5, what="the gauge back to one client")
        kids = children_of(proc.pid)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        took = time.monotonic() - started
    finally:
        if prober:
            prober.stop.set()
        if proc.poll() is None:  # the test failed: stop the stack as a user would, orphaning nothing
            left = children_of(proc.pid)
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                for pid in left:
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
    assert took < 10, took
    assert any("stopped: simulator, weather replay, workers and broker are down" in ln for ln in out)
    wait_until(lambda: not any(alive(k) for k in kids), 5, what="no orphaned child processes")
    sse.join(5)
    assert not sse.is_alive(), "the SSE stream was not ended by the stop"


@pytest.fixture
def own_broker_stack(stack: Stack, tmp_path: Path) -> Iterator[Stack]:
    """The test's topics on a broker of its own (it gets paused; the session broker must not be)."""
    from streams.broker import EmbeddedBroker
    from streams.topology import ensure_topics

    with EmbeddedBroker(log_path=tmp_path / "paused-broker.log") as b:
        settings = with_alert_rules(stack.settings, tmp_path, kafka_bootstrap=b.bootstrap)
        ensure_topics(settings, b.bootstrap)
        own = Stack(broker=b, settings=settings, tmp=tmp_path)
        try:
            yield own
        finally:
            if b.proc is not None and b.proc.poll() is None:
                os.kill(b.proc.pid, signal.SIGCONT)
            own.stop()


PAUSE_S = 30.0  # ten session timeouts (3 s)


def test_paused_broker_then_sigterm_with_an_sse_client(own_broker_stack: Stack):
    """SIGSTOP of the broker: /readyz says so; after SIGCONT the same worker recovers and loses nothing.
    Then SIGTERM with an SSE client connected: the worker stops within the bound, after flushing its dirty
    twins and committing (twins reach the changelog only every 30 s here), so its successor replays nothing."""
    stack = own_broker_stack
    stack.settings = stack.settings.model_copy(update={"twin_flush_interval_s": 30.0})
    port = stack.start_worker(data_name="w")
    worker = stack.workers[port]
    unique, sent = fleet_messages(vehicles=16, per_vehicle=60, seed=9)
    third = len(sent) // 3
    Producer(stack, sent[:third], rate=1e9).run()
    producer = Producer(stack, sent[third:], rate=80)
    producer.start()
    time.sleep(1.0)
    assert stack.broker.proc is not None
    os.kill(stack.broker.proc.pid, signal.SIGSTOP)
    paused = time.monotonic()
    try:
        body = wait_until(lambda: (r := http_get(stack.url(port, "/readyz"), timeout=5))[0] == 503 and r[1], 8,
                          what="/readyz 503 while the broker is paused")
        assert any(r.startswith("broker unreachable") for r in body["reasons"]), body
        assert body["broker_reachable"] is False
        assert 'fleet_worker_ready 0.0' in http_get(stack.url(port, "/metrics"))[1]
        time.sleep(max(0.0, PAUSE_S - (time.monotonic() - paused)))
    finally:
        os.kill(stack.broker.proc.pid, signal.SIGCONT)
    wait_until(lambda: http_get(stack.url(port, "/readyz"))[0] == 200, 60, what="ready again after SIGCONT")
    assert producer.done.wait(90) and producer.error is None, producer.error
    assert_settled(stack, port, unique, sent)
    assert worker.poll() is None, "the worker restarted or died"
    assert stack.workers[port] is worker
    sse = SseClient(port)
    sse.start()
    assert sse.connected.wait(10)
    started = time.monotonic()
    stack.kill_worker(port)  # SIGTERM
    took = time.monotonic() - started
    assert took < stack.settings.shutdown_timeout_s and worker.returncode == 0, (took, worker.returncode)
    sse.join(5)
    assert not sse.is_alive(), "the SSE stream outlived the worker"
    port = stack.start_worker(data_name="w")
    assert_settled(stack, port, unique, sent)
    metrics = http_get(stack.url(port, "/metrics"))[1]
    replayed = [ln for ln in metrics.splitlines() if ln.startswith('fleet_records_in_total{outcome="applied"}')]
    assert replayed in ([], ['fleet_records_in_total{outcome="applied"} 0.0']), replayed


def test_a_third_worker_joining_and_leaving_under_load_loses_nothing(stack: Stack, tmp_path: Path):
    stack.settings = with_alert_rules(stack.settings, tmp_path)
    a, b = stack.start_worker(wait_ready=False), stack.start_worker(wait_ready=False)
    wait_until(lambda: all(http_get(stack.url(p, "/fleet/summary"))[1].get("workers") == 2 for p in (a, b)), 90,
               what="two workers serving")
    unique, sent = fleet_messages(vehicles=24, per_vehicle=60, seed=21)
    vins = sorted({m["vin"] for m in unique})
    first = len(vins) * 3
    Producer(stack, sent[:first], rate=1e9).run()
    for vin in vins:
        wait_until(lambda vin=vin: http_get(stack.url(a, f"/twins/{vin}"))[0] == 200, 30, what=vin)
    prober = Prober([a, b], vins)
    prober.start()
    producer = Producer(stack, sent[first:], rate=120)
    producer.start()
    try:
        c = stack.start_worker()  # joins: every worker's partitions move
        prober.ports = [a, b, c]
        wait_until(lambda: http_get(stack.url(c, "/fleet/summary"))[1].get("workers") == 3, 90,
                   what="three workers serving")  # as long as the two-worker start above: Tansu's JoinGroup waits
        time.sleep(1.0)
        prober.ports = [a, b]
        stack.kill_worker(c)  # leaves cleanly (SIGTERM): its partitions move back
        assert producer.done.wait(60) and producer.error is None, producer.error
        assert_settled(stack, a, unique, sent)
        assert http_get(stack.url(b, "/fleet/summary"))[1]["messages_applied"] == len(unique)
    finally:
        prober.stop.set()
        prober.join(15)
    assert prober.bad == [], prober.bad[:5]
    assert prober.statuses[200] > 20 and prober.statuses[503] >= 1, prober.statuses
