"""``fleet run`` / ``make run``: the whole stack on loopback, stopped cleanly by Ctrl-C."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from streams.auth import SCOPES, mint
from streams.broker import EmbeddedBroker
from streams.settings import load_settings
from streams.topology import ensure_topics
from twins.errors import FleetAssuranceError

RUN_DIR = Path("var/run")
DEMO_SITES = Path(__file__).resolve().parents[1] / "deploy" / "demo-sites.json"
DEMO_RISK_MODELS = Path(__file__).resolve().parents[1] / "models" / "artifacts" / "risk"


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "streams.cli", *args], env=env,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
                            start_new_session=True)


def _stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


def wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120.0,
               interval: float = 0.2) -> None:
    """Block until the worker on ``port`` answers ``/readyz`` with 200; fail if it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise FleetAssuranceError(f"worker exited with code {proc.returncode}; see {log}")
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


def run_stack(vehicles: int, rate_hz: float, seed: int, web_port: int, workers: int = 1) -> None:
    """Broker (unless configured) + topics + workers + simulated fleet; blocks until Ctrl-C."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    settings = load_settings()
    broker: EmbeddedBroker | None = None
    procs: list[subprocess.Popen[bytes]] = []
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
        for i, port in enumerate(ports):
            log = RUN_DIR / f"worker-{port}.log"
            wenv = env | {"FLEET_WEB_PORT": str(port), "FLEET_DATA_DIR": str(Path("var") / f"worker-{port}")}
            procs.append(_spawn(["worker"], wenv, log))
        for port, proc in zip(ports, procs):
            wait_ready(port, proc, RUN_DIR / f"worker-{port}.log")
        procs.append(_spawn(["simulate", "--vehicles", str(vehicles), "--rate", str(rate_hz),
                             "--duration", "0", "--seed", str(seed)], env, RUN_DIR / "simulator.log"))
        procs.append(_spawn(["weather-replay", "--backfill-hours", "48"], env, RUN_DIR / "weather.log"))
        api = f"http://127.0.0.1:{ports[0]}"
        print(
            "\nFleet Assurance is running\n"
            f"  Kafka        {bootstrap}{' (embedded Tansu, memory only)' if broker else ''}\n"
            f"  topics       {settings.topic_telemetry} (telemetry in), {settings.topic_telemetry_dlq} (dead letters)\n"
            f"               {settings.topic_weather} (real TMY weather replay, key = geohash cell)\n"
            f"  fleet        {vehicles} simulated vehicles at {rate_hz:g} msg/s each (seed {seed})\n"
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
            "Ctrl-C stops everything.\n",
            flush=True,
        )
        while True:
            for proc in procs:
                if proc.poll() is not None:
                    raise FleetAssuranceError(f"a child process exited with code {proc.returncode}; see {RUN_DIR}/")
            time.sleep(1)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        for proc in reversed(procs):
            _stop(proc)
        if broker:
            broker.stop()
        if interrupted:
            print("stopped: simulator, weather replay, workers and broker are down", flush=True)
