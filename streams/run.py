"""``fleet run`` / ``make run``: the whole stack on loopback, supervised, stopped cleanly by Ctrl-C.

Every child (workers, simulator, weather replay, embedded broker) is watched: one that
dies is restarted after a back-off (1 s, doubling to 30 s; reset once it has run for a
minute) with a log line saying how it died and the last line of its log. Ctrl-C
(or SIGTERM) stops everything within ``FLEET_SHUTDOWN_TIMEOUT_S`` (10 s).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.auth import SCOPES, mint
from streams.broker import EmbeddedBroker
from streams.settings import Settings, load_settings
from streams.topology import ensure_topics
from twins.errors import FleetAssuranceError

RUN_DIR = Path("var/run")
DEMO_SITES = Path(__file__).resolve().parents[1] / "deploy" / "demo-sites.json"
DEMO_RISK_MODELS = Path(__file__).resolve().parents[1] / "models" / "artifacts" / "risk"
BACKOFF_MIN_S, BACKOFF_MAX_S, STABLE_AFTER_S = 1.0, 30.0, 60.0


def _say(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} fleet run: {line}", flush=True)


def describe_exit(code: int) -> str:
    """``-9`` -> ``killed by SIGKILL``; ``2`` -> ``exited with code 2``."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def last_words(log: Path) -> str:
    """Why a child died, from the tail of its log: a Faust crash reason or a ``fleet: error:`` line if there
    is one, else the last non-empty line."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 65536))
            lines = [ln.strip() for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    telling = [ln for ln in lines if "Crashed reason=" in ln or ln.startswith("fleet: error:")]
    words = (telling or lines or [""])[-1]
    if "ConsistencyError" in words and "highwater" in words:
        words += (" [the broker has less changelog than this worker had read: it lost its data (a memory-only "
                  "broker restarted?); the restarted worker rebuilds from what the broker holds now]")
    return words[:600]


@dataclass
class Child:
    """One supervised ``fleet`` subcommand."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restarts: int = 0
    backoff_s: float = BACKOFF_MIN_S
    restart_at: float | None = None
    history: list[str] = field(default_factory=list)

    def start(self) -> None:
        out = open(self.log, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "streams.cli", *self.args], env=self.env, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        self.started = time.monotonic()
        self.restart_at = None

    def check(self, now: float) -> None:
        """Notice a death (schedule a restart after the back-off) or restart when the back-off is over."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.restarts += 1
                _say(f"restarting {self.name} (restart #{self.restarts})")
                self.start()
            return
        if self.proc is None or self.proc.poll() is None:
            return
        if now - self.started >= STABLE_AFTER_S:
            self.backoff_s = BACKOFF_MIN_S
        why = describe_exit(self.proc.returncode)
        words = last_words(self.log)
        _say(f"{self.name} (pid {self.proc.pid}) {why}{f': {words}' if words else ''}; "
             f"restarting in {self.backoff_s:g} s (log: {self.log})")
        self.history.append(why)
        self.restart_at = now + self.backoff_s
        self.backoff_s = min(BACKOFF_MAX_S, self.backoff_s * 2)


def stop_all(procs: list[subprocess.Popen[bytes]], timeout_s: float) -> None:
    """SIGTERM every process group at once; SIGKILL whatever is still there after ``timeout_s``."""
    live = [p for p in procs if p.poll() is None]
    for p in live:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout_s
    for p in live:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=5)


def wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120.0,
               interval: float = 0.2) -> None:
    """Block until the worker on ``port`` answers ``/readyz`` with 200; fail if it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise FleetAssuranceError(f"worker {describe_exit(proc.returncode)}: {last_words(log)}; see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(interval)
    raise FleetAssuranceError(f"worker on port {port} not ready after {timeout}s; see {log}")


def _development_token(settings: Any, env: dict[str, str]) -> str | None:
    """A 12-hour token with every scope for this run (a fresh HS256 secret when none is configured)."""
    if settings.auth_mode == "off":
        return None
    if settings.auth_hs256_secret is None:
        if settings.auth_public_key_file or settings.auth_jwks_file:
            return None  # tokens come from the identity provider
        env["FLEET_AUTH_HS256_SECRET"] = secrets.token_urlsafe(48)
    return mint(env.get("FLEET_AUTH_HS256_SECRET") or settings.auth_hs256_secret.get_secret_value(), "dev",
                SCOPES, 12 * 3600, settings.auth_issuer, settings.auth_audience)


def _banner(settings: Settings, bootstrap: str, embedded: bool, vehicles: int, rate_hz: float, seed: int,
            ports: list[int], token: str | None) -> str:
    api = f"http://127.0.0.1:{ports[0]}"
    fleet = (f"{vehicles} simulated vehicles at {rate_hz:g} msg/s each (seed {seed})" if vehicles else
             f"none simulated: produce telemetry to {settings.topic_telemetry} on {bootstrap}")
    workers = "\n".join(f"               http://127.0.0.1:{p}  (log {RUN_DIR}/worker-{p}.log)" for p in ports)
    return (
        "\nFleet Assurance is running\n"
        f"  Kafka        {bootstrap}{' (embedded Tansu, memory only)' if embedded else ''}\n"
        f"  topics       {settings.topic_telemetry} (telemetry in), {settings.topic_telemetry_dlq} (dead letters)\n"
        f"               {settings.topic_weather} (real TMY weather replay, key = geohash cell)\n"
        f"  fleet        {fleet}\n"
        f"  workers      {len(ports)} (any one answers for the whole fleet; restarted if one dies)\n{workers}\n"
        f"  API          {api}/fleet/summary\n"
        f"               {api}/twins?limit=20\n"
        f"               {api}/twins/<VIN>\n"
        f"               {api}/weather/<cell>\n"
        f"  risk         {api}/fleet/risk?top=10  {api}/twins/<VIN>/risk\n"
        f"  alerts       {api}/alerts?status=open  {api}/alerts/rules\n"
        f"               curl -N {api}/alerts/stream  (live, SSE); topic {settings.topic_alerts}\n"
        f"  charging     {api}/sites  {api}/sites/<site>/schedule  {api}/sites/<site>/plan-metrics\n"
        f"               topics {settings.topic_charging_requests}, {settings.topic_grid} -> "
        f"{settings.topic_charging_schedules}\n"
        f"  token        {token or '(FLEET_AUTH_MODE=off: the API is open)'}\n"
        f"               curl -H 'Authorization: Bearer {token or '...'}' {api}/fleet/summary\n"
        f"  metrics      {api}/metrics\n"
        f"  health       {api}/healthz  {api}/readyz\n"
        f"  logs         {RUN_DIR}/\n"
        "Ctrl-C stops everything.\n"
    )


def run_stack(vehicles: int, rate_hz: float, seed: int, web_port: int, workers: int = 1) -> None:
    """Broker (unless configured) + topics + workers + simulated fleet; blocks until Ctrl-C."""
    if workers < 1:
        raise FleetAssuranceError(f"--workers {workers} must be at least 1")
    if vehicles < 0:
        raise FleetAssuranceError(f"--vehicles {vehicles} must be 0 (no simulator) or more")
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    settings = load_settings()
    broker: EmbeddedBroker | None = None
    children: list[Child] = []
    interrupted = False

    def _on_term(*_: object) -> None:
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_term)
    try:
        env = dict(os.environ)
        if settings.kafka_bootstrap:
            bootstrap = settings.kafka_bootstrap
        else:
            broker = EmbeddedBroker(log_path=RUN_DIR / "broker.log").start()
            bootstrap = broker.bootstrap
            env |= {"FLEET_VERIFY_END_OFFSETS": "true", "FLEET_SESSION_TIMEOUT_S": "3",
                    "FLEET_REBALANCE_TIMEOUT_S": "3", "FLEET_HEARTBEAT_INTERVAL_S": "0.5"}
        env["FLEET_KAFKA_BOOTSTRAP"] = bootstrap
        token = _development_token(settings, env)
        if not settings.charging_sites and DEMO_SITES.exists():
            env["FLEET_CHARGING_SITES"] = str(DEMO_SITES)
        if not settings.risk_model_dir and DEMO_RISK_MODELS.exists():
            env["FLEET_RISK_MODEL_DIR"] = str(DEMO_RISK_MODELS)
            env.setdefault("FLEET_RISK_SCORE_INTERVAL_S", "30")
        settings = load_settings(kafka_bootstrap=bootstrap, charging_sites=env.get("FLEET_CHARGING_SITES"))
        ensure_topics(settings, bootstrap)
        ports = [web_port + i for i in range(workers)]
        for port in ports:
            wenv = env | {"FLEET_WEB_PORT": str(port), "FLEET_DATA_DIR": str(Path("var") / f"worker-{port}")}
            children.append(Child(f"worker :{port}", ["worker"], wenv, RUN_DIR / f"worker-{port}.log"))
            children[-1].start()
        for port, child in zip(ports, children):
            assert child.proc is not None
            wait_ready(port, child.proc, child.log)
        if vehicles:
            children.append(Child("simulator", ["simulate", "--vehicles", str(vehicles), "--rate", str(rate_hz),
                                                "--duration", "0", "--seed", str(seed)], env,
                                  RUN_DIR / "simulator.log"))
            children[-1].start()
        children.append(Child("weather replay", ["weather-replay", "--backfill-hours", "48"], env,
                              RUN_DIR / "weather.log"))
        children[-1].start()
        print(_banner(settings, bootstrap, broker is not None, vehicles, rate_hz, seed, ports, token), flush=True)
        while True:
            now = time.monotonic()
            if broker and broker.proc and broker.proc.poll() is not None:
                _say(f"the embedded broker {describe_exit(broker.proc.returncode)}; it keeps data in memory only, "
                     f"so every topic, record and committed offset is gone. Restarting it empty on {bootstrap}; "
                     "the workers restart on the empty topics (see their logs)")
                broker.start()
                ensure_topics(settings, bootstrap)
            for child in children:
                child.check(now)
            time.sleep(0.5)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean stop short
        stopping = time.monotonic()
        stop_all([c.proc for c in children if c.proc is not None], settings.shutdown_timeout_s - 1.5)
        if broker:
            broker.stop()
        if interrupted:
            print(f"stopped: simulator, weather replay, workers and broker are down "
                  f"({time.monotonic() - stopping:.1f} s)", flush=True)
