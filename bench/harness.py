"""Shared pieces of the benchmarks: simulated records, publishing, a worker process, metric scraping."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import msgspec
from aiokafka import AIOKafkaProducer

from models.simulation import FleetSimulator
from streams.auth import SCOPES, mint
from streams.broker import EmbeddedBroker, free_port
from streams.run import wait_ready
from streams.settings import Settings
from streams.topology import ensure_topics

PARTITIONS = 4
MIDDAY_MS = 1_767_225_600_000 + 15 * 3600 * 1000  # 2026-01-01 15:00Z: vehicles on the road


def fleet_messages(vehicles: int, steps: int, dt_s: float = 1.0, seed: int = 42) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs of the simulated fleet, in time order."""
    sim = FleetSimulator(vehicles, seed=seed, start_ms=MIDDAY_MS)
    enc = msgspec.json.Encoder().encode
    out = []
    for _ in range(steps):
        out.extend((m["vin"].encode(), enc(m)) for m in sim.step(dt_s))
    return out


def fresh_settings(broker: EmbeddedBroker, **overrides: Any) -> Settings:
    """Settings with unique topics and app id; topics created."""
    tag = uuid.uuid4().hex[:6]
    settings = Settings(kafka_bootstrap=broker.bootstrap, app_id=f"bench-{tag}", topic_telemetry=f"bench-{tag}",
                        topic_telemetry_dlq=f"bench-{tag}.dlq", topic_weather=f"bench-wx-{tag}",
                        topic_weather_dlq=f"bench-wx-{tag}.dlq", topic_alerts=f"bench-alerts-{tag}",
                        topic_maintenance=f"bench-maint-{tag}", topic_maintenance_dlq=f"bench-maint-{tag}.dlq",
                        partitions=PARTITIONS, **overrides)
    ensure_topics(settings, broker.bootstrap)
    return settings


async def publish(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]],
                  headers: list[list[tuple[str, bytes]]] | None = None) -> float:
    """Publish as fast as possible (``headers``: per message); returns records/s."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    t0 = time.perf_counter()
    try:
        for i in range(0, len(messages), 5000):
            futs = [await producer.send(topic, value=v, key=k, headers=headers[i + j] if headers else None)
                    for j, (k, v) in enumerate(messages[i:i + 5000])]
            await asyncio.gather(*futs)
    finally:
        await producer.stop()
    return len(messages) / (time.perf_counter() - t0)


#: what the end-to-end worker runs besides the twins: the demo risk model and the shipped alert rules
#: plus an overspeed rule that fires often on the simulated drive cycles (so event -> alert can be timed)
DEMO_RISK_MODELS = Path(__file__).resolve().parents[1] / "models" / "artifacts" / "risk"
BENCH_RULE = """
[[signal]]
id = "bench-overspeed"
component = "vehicle"
signal = "Vehicle.Speed"
above = 80.0
clear = 60.0
severity = "info"
cooldown_s = 0
action = "Benchmark rule: fires on every acceleration past 80 km/h."
"""


def full_pipeline_env(tmp: Path) -> dict[str, str]:
    """Worker environment with risk scoring (demo model, each changed vehicle every 60 s) and alerts on."""
    from twins.alerts.rules import DEFAULT_RULES

    rules = tmp / "bench-alert-rules.toml"
    rules.write_text(DEFAULT_RULES.read_text() + BENCH_RULE)
    return {"FLEET_RISK_MODEL_DIR": str(DEMO_RISK_MODELS), "FLEET_RISK_SCORE_INTERVAL_S": "60",
            "FLEET_ALERT_RULES": str(rules)}


class Worker:
    """A real ``fleet worker`` process for benchmarks."""

    def __init__(self, broker: EmbeddedBroker, settings: Settings, tmp: Path, data_name: str = "worker",
                 **env: str) -> None:
        self.port = free_port()
        self.secret = secrets.token_urlsafe(32)
        self.log_path = tmp / f"{data_name}-{self.port}.log"
        environ = dict(os.environ, FLEET_KAFKA_BOOTSTRAP=broker.bootstrap, FLEET_APP_ID=settings.app_id,
                       FLEET_TOPIC_TELEMETRY=settings.topic_telemetry,
                       FLEET_TOPIC_TELEMETRY_DLQ=settings.topic_telemetry_dlq,
                       FLEET_TOPIC_WEATHER=settings.topic_weather, FLEET_TOPIC_WEATHER_DLQ=settings.topic_weather_dlq,
                       FLEET_TOPIC_ALERTS=settings.topic_alerts, FLEET_TOPIC_MAINTENANCE=settings.topic_maintenance,
                       FLEET_TOPIC_MAINTENANCE_DLQ=settings.topic_maintenance_dlq,
                       FLEET_PARTITIONS=str(settings.partitions), FLEET_WEB_PORT=str(self.port),
                       FLEET_DATA_DIR=str(tmp / data_name), FLEET_SESSION_TIMEOUT_S="3",
                       FLEET_REBALANCE_TIMEOUT_S="3", FLEET_VERIFY_END_OFFSETS="true", FLEET_LOG_LEVEL="warn",
                       FLEET_STORE=settings.store, FLEET_AUTH_HS256_SECRET=self.secret, **env)
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], env=environ,
                                     stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
                                     start_new_session=True)

    def metrics(self, names: str = "") -> str:
        """``/metrics``, or only the samples ``names`` (comma-separated)."""
        query = f"?name={names}" if names else ""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics{query}", timeout=5) as resp:
            return resp.read().decode()

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Until ``/readyz`` says partitions are assigned and state is recovered."""
        wait_ready(self.port, self.proc, self.log_path, timeout, interval=0.1)

    def consumed(self) -> float:
        """Telemetry records consumed so far (every outcome), 0 while the API is not up."""
        try:
            text = self.metrics("fleet_records_in_total")  # polled every 50 ms: not the whole exposition
        except OSError:
            return 0.0
        return sum(float(m) for m in re.findall(r'^fleet_records_in_total\{outcome="[a-z_]+"\} ([0-9.e+]+)$', text, re.M))

    def get_json(self, path: str, timeout: float = 60.0) -> Any:
        """GET ``path`` with an admin token; the decoded JSON body."""
        token = mint(self.secret, "bench", SCOPES, 3600)
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())

    def rss_bytes(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def wait_consumed(self, n: float, timeout: float = 600.0) -> float:
        """Block until ``n`` records are consumed; returns the perf_counter time it happened."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited; see {self.log_path}")
            if self.consumed() >= n:
                return time.perf_counter()
            time.sleep(0.05)
        raise RuntimeError(f"worker consumed {self.consumed()} of {n} records in {timeout}s; see {self.log_path}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=60)


def histogram_quantiles(before: str, after: str, name: str, qs: tuple[float, ...]) -> dict[str, float]:
    """Quantiles of a Prometheus histogram's increase between two scrapes (linear within buckets)."""
    def buckets(text: str) -> list[tuple[float, float]]:
        rows = re.findall(rf'^{name}_bucket\{{le="([^"]+)"\}} ([0-9.e+]+)$', text, re.M)
        return [(float("inf") if le == "+Inf" else float(le), float(v)) for le, v in rows]

    b0 = dict(buckets(before))
    rows = [(le, v - b0.get(le, 0.0)) for le, v in buckets(after)]
    total = rows[-1][1] if rows else 0.0
    out: dict[str, float] = {"observations": total}
    if not total:
        return out  # nothing observed: no quantiles rather than a made-up 0
    for q in qs:
        target = q * total
        prev_le, prev_c = 0.0, 0.0
        for le, c in rows:
            if c >= target:
                if le == float("inf"):
                    out[f"p{int(q * 100)}_s"] = prev_le
                else:
                    frac = 0.0 if c == prev_c else (target - prev_c) / (c - prev_c)
                    out[f"p{int(q * 100)}_s"] = prev_le + frac * (le - prev_le)
                break
            prev_le, prev_c = le, c
    return out
