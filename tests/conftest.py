"""Shared fixtures: the real embedded broker on loopback and worker processes against it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from streams.broker import EmbeddedBroker, free_port
from streams.settings import Settings
from streams.topology import ensure_topics

ROOT = Path(__file__).resolve().parents[1]
FAST_GROUP = {"session_timeout_s": 3.0, "rebalance_timeout_s": 3.0, "heartbeat_interval_s": 0.5}


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """One Tansu broker for the whole session (tests isolate themselves by topic and app id)."""
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_path=log) as b:
        yield b


def http_get(url: str, timeout: float = 5.0) -> tuple[int, Any]:
    """GET a JSON (or text) URL; returns (status, body)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as err:
        raw, status = err.read(), err.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def wait_until(predicate: Any, timeout: float, interval: float = 0.2, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (OSError, urllib.error.URLError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


@dataclass
class Stack:
    """A test's isolated slice of the broker: its own topics, app id and worker processes."""

    broker: EmbeddedBroker
    settings: Settings
    tmp: Path
    workers: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def env(self, port: int, data_name: str | None = None) -> dict[str, str]:
        s = self.settings
        return dict(
            os.environ,
            FLEET_KAFKA_BOOTSTRAP=self.broker.bootstrap,
            FLEET_APP_ID=s.app_id,
            FLEET_TOPIC_TELEMETRY=s.topic_telemetry,
            FLEET_TOPIC_TELEMETRY_DLQ=s.topic_telemetry_dlq,
            FLEET_TOPIC_WEATHER=s.topic_weather,
            FLEET_TOPIC_WEATHER_DLQ=s.topic_weather_dlq,
            FLEET_TOPIC_MAINTENANCE=s.topic_maintenance,
            FLEET_TOPIC_MAINTENANCE_DLQ=s.topic_maintenance_dlq,
            FLEET_TOPIC_CHARGING_REQUESTS=s.topic_charging_requests,
            FLEET_TOPIC_GRID=s.topic_grid,
            FLEET_TOPIC_CHARGING_SCHEDULES=s.topic_charging_schedules,
            FLEET_TOPIC_CHARGING_DLQ=s.topic_charging_dlq,
            FLEET_TOPIC_ALERTS=s.topic_alerts,
            **({"FLEET_ALERT_RULES": str(s.alert_rules)} if s.alert_rules else {}),
            FLEET_ALERT_RULES_RELOAD_S=str(s.alert_rules_reload_s),
            FLEET_ALERT_SWEEP_S=str(s.alert_sweep_s),
            **({"FLEET_CHARGING_SITES": str(s.charging_sites)} if s.charging_sites else {}),
            **({"FLEET_RISK_MODEL_DIR": str(s.risk_model_dir)} if s.risk_model_dir else {}),
            **({"FLEET_VEHICLE_REGISTRY": str(s.vehicle_registry)} if s.vehicle_registry else {}),
            FLEET_RISK_SCORE_TICK_S=str(s.risk_score_tick_s),
            FLEET_RISK_RELOAD_S=str(s.risk_reload_s),
            FLEET_RISK_SCORE_INTERVAL_S=str(s.risk_score_interval_s),
            FLEET_PARTITIONS=str(s.partitions),
            FLEET_WEB_PORT=str(port),
            FLEET_DATA_DIR=str(self.tmp / (data_name or f"worker-{port}")),
            FLEET_STORE=s.store,
            FLEET_SESSION_TIMEOUT_S=str(s.session_timeout_s),
            FLEET_REBALANCE_TIMEOUT_S=str(s.rebalance_timeout_s),
            FLEET_HEARTBEAT_INTERVAL_S=str(s.heartbeat_interval_s),
            FLEET_COMMIT_INTERVAL_S=str(s.commit_interval_s),
            FLEET_TWIN_FLUSH_INTERVAL_S=str(s.twin_flush_interval_s),
            FLEET_STALE_AFTER_S=str(s.stale_after_s),
            FLEET_LOG_LEVEL="info",
            FLEET_VERIFY_END_OFFSETS="true",
        )

    def start_worker(self, wait_ready: bool = True, data_name: str | None = None) -> int:
        """Start a ``fleet worker`` process; returns its web port. ``data_name`` reuses a data dir."""
        port = free_port()
        log = open(self.tmp / f"worker-{port}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], env=self.env(port, data_name),
                                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        self.workers[port] = proc
        if wait_ready:
            self.wait_ready(port)
        return port

    def wait_ready(self, port: int, timeout: float = 90.0) -> None:
        def ready() -> bool:
            proc = self.workers[port]
            if proc.poll() is not None:
                raise AssertionError(f"worker exited with {proc.returncode}:\n{self.log(port)[-3000:]}")
            status, body = http_get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            return status == 200 and body.get("ready")

        wait_until(ready, timeout, what=f"worker :{port} ready")

    def log(self, port: int) -> str:
        return (self.tmp / f"worker-{port}.log").read_text(errors="replace")

    def url(self, port: int, path: str) -> str:
        return f"http://127.0.0.1:{port}{path}"

    def kill_worker(self, port: int, sig: int = signal.SIGTERM) -> None:
        proc = self.workers.pop(port)
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def stop(self) -> None:
        for port in list(self.workers):
            self.kill_worker(port)


@pytest.fixture
def stack(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[Stack]:
    """Fresh topics and app id on the session broker; workers are stopped afterwards."""
    s = new_stack(broker, tmp_path)
    yield s
    s.stop()


def new_stack(broker: EmbeddedBroker, tmp_path: Path) -> Stack:
    """A :class:`Stack` with its own topics (created) and app id on ``broker``."""
    tag = uuid.uuid4().hex[:8]
    settings = Settings(
        kafka_bootstrap=broker.bootstrap,
        app_id=f"fleet-test-{tag}",
        topic_telemetry=f"telemetry-{tag}",
        topic_telemetry_dlq=f"telemetry-{tag}.dlq",
        topic_weather=f"weather-{tag}",
        topic_weather_dlq=f"weather-{tag}.dlq",
        topic_maintenance=f"maintenance-{tag}",
        topic_maintenance_dlq=f"maintenance-{tag}.dlq",
        topic_charging_requests=f"charging-req-{tag}",
        topic_grid=f"grid-{tag}",
        topic_charging_schedules=f"schedules-{tag}",
        topic_charging_dlq=f"charging-{tag}.dlq",
        topic_alerts=f"alerts-{tag}",
        partitions=4,
        commit_interval_s=0.5,
        twin_flush_interval_s=0.1,
        **FAST_GROUP,
    )
    ensure_topics(settings, broker.bootstrap)
    return Stack(broker=broker, settings=settings, tmp=tmp_path)
