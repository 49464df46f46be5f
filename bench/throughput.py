"""`make bench`: service throughput vs the raw-Kafka ceiling, side by side in one run.

1. Start the embedded broker, create the topics, publish the simulated fleet's
   telemetry (real drive cycles and weather) to the telemetry topic.
2. Ceiling: raw aiokafka ``getmany`` + the same strict msgspec decode, no state.
3. Service: a real ``fleet worker`` process consumes the same records (batch fast
   path, twin merge, coalesced changelog writes, committed offsets); timed from
   its first applied record to its last via ``/metrics``.
4. Core: decode + merge in-process without Kafka (the pure twin code's own speed).

Writes ``bench/results.json`` and ``bench/results.md``.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from models.simulation import FleetSimulator
from streams.broker import EmbeddedBroker, free_port
from streams.settings import Settings
from streams.topology import ensure_topics
from twins.reading import decode_reading
from twins.twin import merge_into, new_twin

OUT = Path(__file__).resolve().parent
VEHICLES = int(os.environ.get("BENCH_VEHICLES", "5000"))
STEPS = int(os.environ.get("BENCH_STEPS", "60"))
PARTITIONS = 4


def fleet_messages(vehicles: int, steps: int) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs from the simulator, mid-morning so vehicles are driving."""
    sim = FleetSimulator(vehicles, seed=42, start_ms=1_767_225_600_000 + 15 * 3600 * 1000)
    enc = msgspec.json.Encoder().encode
    out = []
    for _ in range(steps):
        out.extend((m["vin"].encode(), enc(m)) for m in sim.step(1.0))
    return out


async def publish(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    t0 = time.perf_counter()
    try:
        for i in range(0, len(messages), 5000):
            futs = [await producer.send(topic, value=v, key=k) for k, v in messages[i:i + 5000]]
            await asyncio.gather(*futs)
    finally:
        await producer.stop()
    return len(messages) / (time.perf_counter() - t0)


async def ceiling(bootstrap: str, topic: str, n: int) -> dict[str, float]:
    """Raw aiokafka getmany + strict decode of every record: the per-process upper bound."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=8 << 20, fetch_max_bytes=32 << 20)
    await consumer.start()
    seen = 0
    t0 = None
    try:
        while seen < n:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if t0 is None and batches:
                t0 = time.perf_counter()
            for records in batches.values():
                for rec in records:
                    decode_reading(rec.value)
                seen += sum(len(r) for r in batches.values())
    finally:
        await consumer.stop()
    elapsed = time.perf_counter() - (t0 or time.perf_counter())
    return {"records": seen, "seconds": elapsed, "records_per_s": seen / elapsed}


def _applied(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    total = 0.0
    for outcome in ("applied", "duplicate", "too_late", "invalid"):
        m = re.search(rf'fleet_records_in_total{{outcome="{outcome}"}} ([0-9.e+]+)', text)
        total += float(m.group(1)) if m else 0.0
    return total


def service(broker: EmbeddedBroker, settings: Settings, n: int, tmp: Path) -> dict[str, float]:
    """A real worker process over the already-published topic."""
    port = free_port()
    env = dict(os.environ, FLEET_KAFKA_BOOTSTRAP=broker.bootstrap, FLEET_APP_ID=settings.app_id,
               FLEET_TOPIC_TELEMETRY=settings.topic_telemetry, FLEET_TOPIC_TELEMETRY_DLQ=settings.topic_telemetry_dlq,
               FLEET_PARTITIONS=str(PARTITIONS), FLEET_WEB_PORT=str(port), FLEET_DATA_DIR=str(tmp / "worker"),
               FLEET_SESSION_TIMEOUT_S="3", FLEET_REBALANCE_TIMEOUT_S="3", FLEET_VERIFY_END_OFFSETS="true",
               FLEET_LOG_LEVEL="warn")
    log = open(tmp / "worker.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    spy = None
    if os.environ.get("BENCH_PROFILE"):
        spy = subprocess.Popen(["py-spy", "record", "-p", str(proc.pid), "-o", os.environ["BENCH_PROFILE"],
                                "-f", "raw", "-r", "200"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t_first = None
        deadline = time.monotonic() + 600
        done = 0.0
        while time.monotonic() < deadline:
            try:
                done = _applied(port)
            except OSError:
                done = 0.0
            if done and t_first is None:
                t_first, first_count = time.perf_counter(), done
            if done >= n:
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"worker processed only {done} of {n} records; see {tmp / 'worker.log'}")
        elapsed = time.perf_counter() - t_first
        return {"records": n - first_count, "seconds": elapsed, "records_per_s": (n - first_count) / elapsed}
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=30)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def core(messages: list[tuple[bytes, bytes]]) -> dict[str, float]:
    """decode + merge without Kafka, grouped per fetch-sized batch as the worker does."""
    twins: dict[str, Any] = {}
    t0 = time.perf_counter()
    for i in range(0, len(messages), 10_000):
        groups: dict[str, list[Any]] = {}
        for _, value in messages[i:i + 10_000]:
            r = decode_reading(value)
            groups.setdefault(r.vin, []).append(r)
        for vin, readings in groups.items():
            twin = twins.get(vin) or new_twin(vin)
            merge_into(twin, readings)
            twins[vin] = twin
    elapsed = time.perf_counter() - t0
    return {"records": len(messages), "seconds": elapsed, "records_per_s": len(messages) / elapsed}


def main() -> None:
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    messages = fleet_messages(VEHICLES, STEPS)
    n = len(messages)
    mean_bytes = sum(len(v) for _, v in messages) / n
    results: dict[str, Any] = {
        "setup": {"vehicles": VEHICLES, "steps": STEPS, "records": n, "mean_record_bytes": round(mean_bytes, 1),
                  "partitions": PARTITIONS, "broker": "Tansu (embedded, memory)", "python": platform.python_version(),
                  "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    }
    with EmbeddedBroker(log_path=tmp / "broker.log") as broker:
        tag = uuid.uuid4().hex[:6]
        settings = Settings(kafka_bootstrap=broker.bootstrap, app_id=f"bench-{tag}", topic_telemetry=f"bench-{tag}",
                            topic_telemetry_dlq=f"bench-{tag}.dlq", partitions=PARTITIONS)
        ensure_topics(settings, broker.bootstrap)
        results["publish_records_per_s"] = round(asyncio.run(publish(broker.bootstrap, settings.topic_telemetry, messages)))
        results["ceiling"] = asyncio.run(ceiling(broker.bootstrap, settings.topic_telemetry, n))
        results["service"] = service(broker, settings, n, tmp)
    results["core"] = core(messages)
    results["ratio_service_to_ceiling"] = round(results["service"]["records_per_s"] / results["ceiling"]["records_per_s"], 3)
    for key in ("ceiling", "service", "core"):
        results[key] = {k: round(v, 3) for k, v in results[key].items()}
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    s = results["setup"]
    md = [
        "# Benchmark results",
        "",
        f"{s['records']:,} simulated telemetry records ({s['vehicles']:,} vehicles × {s['steps']} s, "
        f"mean {s['mean_record_bytes']} B), {s['partitions']} partitions, {s['broker']}, "
        f"Python {s['python']}, {s['cpus']} CPUs, {s['when']}. Same topic, same run.",
        "",
        "| path | records/s | ratio to ceiling |",
        "|---|---:|---:|",
        f"| ceiling: raw aiokafka getmany + strict decode | {results['ceiling']['records_per_s']:,.0f} | 1.00 |",
        f"| service: worker process, decode → twin merge → changelog → commit | "
        f"{results['service']['records_per_s']:,.0f} | {results['ratio_service_to_ceiling']:.2f} |",
        f"| core: decode + merge in-process, no Kafka | {results['core']['records_per_s']:,.0f} | – |",
        "",
        f"Publishing rate (aiokafka producer): {results['publish_records_per_s']:,} records/s.",
    ]
    (OUT / "results.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
