"""Throughput: the raw-Kafka ceiling and a real worker on the same topic, side by side in one run."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from bench.harness import Worker, fresh_settings, full_pipeline_env, publish
from streams.broker import EmbeddedBroker
from twins.reading import decode_reading
from twins.twin import merge_into, new_twin


async def ceiling(bootstrap: str, topic: str, n: int) -> dict[str, float]:
    """Raw aiokafka getmany + the same strict decode of every record, no state: the per-process bound."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=8 << 20, fetch_max_bytes=32 << 20)
    await consumer.start()
    seen = 0
    t0 = cpu0 = None
    try:
        while seen < n:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if t0 is None and batches:
                t0, cpu0 = time.perf_counter(), time.process_time()
            for records in batches.values():
                for rec in records:
                    decode_reading(rec.value)
                seen += len(records)
    finally:
        await consumer.stop()
    elapsed = time.perf_counter() - (t0 or time.perf_counter())
    cpu = time.process_time() - (cpu0 or time.process_time())
    return {"records": seen, "seconds": elapsed, "records_per_s": seen / elapsed, "cpu_seconds": cpu,
            "records_per_cpu_s": seen / cpu}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads), from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _py_spy() -> str:
    """py-spy from the running interpreter's environment (the venv's bin is usually not on PATH)."""
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else "py-spy"


def service(broker: EmbeddedBroker, settings: Any, n: int, tmp: Path, **env: str) -> dict[str, float]:
    """A worker process over the already-published topic, timed from its first consumed record to the last.

    The worker runs the whole pipeline: twins, history, risk scoring (demo model) and alert rules.
    """
    worker = Worker(broker, settings, tmp, **full_pipeline_env(tmp), **env)
    spy = None
    if os.environ.get("BENCH_PROFILE"):
        gil = ["--gil"] if os.environ.get("BENCH_PROFILE_GIL") else []  # only samples holding the GIL
        spy = subprocess.Popen([_py_spy(), "record", "-p", str(worker.proc.pid), "-o", os.environ["BENCH_PROFILE"],
                                "-f", "raw", "-r", "200", "--threads", *gil],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            first = worker.consumed()
            if first:
                t_first, cpu_first = time.perf_counter(), cpu_seconds(worker.proc.pid)
                break
            if worker.proc.poll() is not None:
                raise RuntimeError(f"worker exited; see {worker.log_path}")
            time.sleep(0.02)
        t_last = worker.wait_consumed(n)
        cpu = cpu_seconds(worker.proc.pid) - cpu_first
        elapsed = t_last - t_first
        invalid = re.search(r'^fleet_records_in_total\{outcome="invalid"\} ([0-9.e+]+)$', worker.metrics(), re.M)
        if invalid and float(invalid.group(1)):  # every record must have been applied (e.g. signatures valid)
            raise RuntimeError(f"{invalid.group(1)} records dead-lettered; see {worker.log_path}")
        return {"records": n - first, "seconds": elapsed, "records_per_s": (n - first) / elapsed,
                "cpu_seconds": cpu, "records_per_cpu_s": (n - first) / cpu}
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=30)
        worker.stop()


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


def signing_keys(messages: list[tuple[bytes, bytes]], tmp: Path) -> tuple[Path, list[list[tuple[str, bytes]]]]:
    """A keys file with one key per vehicle (``twins.signing``) and every message's signature headers."""
    import base64
    import hashlib
    import json

    from twins.signing import parse_keyring

    vins = sorted({k for k, _ in messages})
    doc = {"keys": [{"kid": f"veh-{v.decode()}", "secret": base64.b64encode(hashlib.sha256(v).digest()).decode(),
                     "vins": [v.decode()]} for v in vins]}
    path = tmp / "bench-signing-keys.json"
    path.write_text(json.dumps(doc))
    ring = parse_keyring(path.read_bytes())
    return path, [ring.sign(k, v, 0) for k, v in messages]


def measure(broker: EmbeddedBroker, messages: list[tuple[bytes, bytes]], tmp: Path, signed: bool) -> dict[str, Any]:
    """Publish once (signed: with ``fleet-kid``/``fleet-sig`` headers); ceiling and service on the same records."""
    settings = fresh_settings(broker)
    env: dict[str, str] = {}
    headers = None
    if signed:
        keys, headers = signing_keys(messages, tmp)
        env = {"FLEET_SIGNING_MODE": "require", "FLEET_SIGNING_KEYS": str(keys)}
    out: dict[str, Any] = {"publish_records_per_s": round(asyncio.run(
        publish(broker.bootstrap, settings.topic_telemetry, messages, headers)))}
    out["ceiling"] = asyncio.run(ceiling(broker.bootstrap, settings.topic_telemetry, len(messages)))
    out["service"] = service(broker, settings, len(messages), tmp, **env)
    out["ratio_service_to_ceiling"] = out["service"]["records_per_s"] / out["ceiling"]["records_per_s"]
    # the same ratio from CPU time (records per CPU-second of each process): steady on a machine shared with
    # other work, where wall-clock rates measure the neighbours as much as the code
    out["cpu_ratio_service_to_ceiling"] = (out["service"]["records_per_cpu_s"]
                                           / out["ceiling"]["records_per_cpu_s"])
    return out


def run(broker: EmbeddedBroker, messages: list[tuple[bytes, bytes]], tmp: Path) -> dict[str, Any]:
    """Ceiling and service on unsigned records, then on signed ones with ``FLEET_SIGNING_MODE=require``; core."""
    out = measure(broker, messages, tmp, signed=False)
    out["core"] = core(messages)
    signed = measure(broker, messages, tmp, signed=True)
    out["signed"] = signed
    # how much of the service/ceiling ratio signature verification costs (issue 16 budget: at most 10 %)
    out["signed_ratio_change"] = signed["ratio_service_to_ceiling"] / out["ratio_service_to_ceiling"] - 1.0
    out["signed_cpu_ratio_change"] = signed["cpu_ratio_service_to_ceiling"] / out["cpu_ratio_service_to_ceiling"] - 1
    return out


def signing_comparison(vehicles: int = 5000, steps: int = 80, pairs: int = 2) -> dict[str, Any]:
    """Unsigned and signed (``require``) measured alternately ``pairs`` times on one broker, for
    ``python -m bench.throughput`` (the signing budget alone, without the rest of ``make bench``)."""
    import tempfile

    from bench.harness import fleet_messages

    tmp = Path(tempfile.mkdtemp(prefix="fleet-bench-signing-"))
    messages = fleet_messages(vehicles, steps)
    runs: dict[str, list[dict[str, Any]]] = {"unsigned": [], "signed": []}
    with EmbeddedBroker(log_path=tmp / "broker.log") as broker:
        for _ in range(pairs):
            for kind in runs:
                runs[kind].append(measure(broker, messages, tmp, signed=kind == "signed"))
    best = {kind: {"ratio": max(r["ratio_service_to_ceiling"] for r in rs),
                   "cpu_ratio": max(r["cpu_ratio_service_to_ceiling"] for r in rs)} for kind, rs in runs.items()}
    return {"records": len(messages), "pairs": pairs, "runs": runs, "best": best,
            "signed_ratio_change": best["signed"]["ratio"] / best["unsigned"]["ratio"] - 1,
            "signed_cpu_ratio_change": best["signed"]["cpu_ratio"] / best["unsigned"]["cpu_ratio"] - 1,
            # the worker alone, without the ceiling's share (headers make the ceiling's fetches dearer too)
            "signed_service_cpu_change": (max(r["service"]["records_per_cpu_s"] for r in runs["signed"])
                                          / max(r["service"]["records_per_cpu_s"] for r in runs["unsigned"]) - 1)}


def main() -> None:
    """``python -m bench.throughput``: the signing comparison alone, written to bench/signing.json and .md."""
    import json
    import platform

    vehicles = int(os.environ.get("BENCH_VEHICLES", "5000"))
    steps = int(os.environ.get("BENCH_STEPS", "80"))
    r = signing_comparison(vehicles, steps, int(os.environ.get("BENCH_PAIRS", "2")))
    r["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    r["python"], r["cpus"] = platform.python_version(), os.cpu_count()
    out = Path(__file__).resolve().parent
    (out / "signing.json").write_text(json.dumps(r, indent=2) + "\n")
    rows = [f"| {kind} #{i + 1} | {m['ceiling']['records_per_s']:,.0f} | {m['service']['records_per_s']:,.0f} | "
            f"{m['ratio_service_to_ceiling']:.3f} | {m['ceiling']['records_per_cpu_s']:,.0f} | "
            f"{m['service']['records_per_cpu_s']:,.0f} | {m['cpu_ratio_service_to_ceiling']:.3f} |"
            for kind, ms in r["runs"].items() for i, m in enumerate(ms)]
    text = "\n".join([
        "# Signed telemetry: cost of FLEET_SIGNING_MODE=require", "",
        f"{r['records']:,} simulated records ({vehicles:,} vehicles, one signing key each), the full worker pipeline, "
        f"unsigned and signed runs alternating on one embedded broker, Python {r['python']}, {r['cpus']} CPUs, "
        f"{r['when']} (`python -m bench.throughput`; `make bench` runs one pair as part of its throughput table).", "",
        "| run | ceiling records/s | service records/s | ratio | ceiling records/CPU-s | service records/CPU-s | "
        "CPU ratio |", "|---|---:|---:|---:|---:|---:|---:|", *rows, "",
        f"Best of each: ratio change {r['signed_ratio_change']:+.1%} (wall clock), "
        f"{r['signed_cpu_ratio_change']:+.1%} (CPU time). Budget: −10 %. The worker alone: "
        f"{r['signed_service_cpu_change']:+.1%} records per CPU-second.", ""])
    (out / "signing.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
