"""State at fleet scale: RSS per twin with 100k twins, and restart-to-first-record with them in RocksDB."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

from bench.harness import Worker, fleet_messages, fresh_settings, publish
from streams.broker import EmbeddedBroker


def wait_written(worker: Worker, n: int, timeout: float = 120.0) -> None:
    """Until the worker has flushed ``n`` twin writes to its table (the flush follows consumption)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"^fleet_twin_writes_total ([0-9.e+]+)$", worker.metrics(), re.M)
        if found and float(found.group(1)) >= n:
            return
        time.sleep(0.1)
    raise RuntimeError(f"worker wrote fewer than {n} twins in {timeout}s; see {worker.log_path}")


def run(broker: EmbeddedBroker, vehicles: int, tmp: Path) -> dict[str, Any]:
    """One record per vehicle for ``vehicles`` vehicles, memory and RocksDB stores."""
    messages = fleet_messages(vehicles, 1)
    out: dict[str, Any] = {"twins": vehicles}
    for store in ("memory://", "rocksdb://"):
        settings = fresh_settings(broker, store=store)
        asyncio.run(publish(broker.bootstrap, settings.topic_telemetry, messages))
        name = store.rstrip(":/")
        worker = Worker(broker, settings, tmp, data_name=f"state-{name}")
        try:
            worker.wait_ready()
            rss_empty = worker.rss_bytes()  # nothing consumed yet? the topic is read right after assignment
            consumed_at_empty = worker.consumed()
            worker.wait_consumed(len(messages))
            wait_written(worker, len(messages))
            time.sleep(2.0)  # let the changelog sends and the commit finish
            rss_full = worker.rss_bytes()
            took = []
            for _ in range(3):  # every stored twin read for one answer (briefs, twins.brief)
                t0 = time.perf_counter()
                assert worker.get_json("/fleet/summary?local=1")["vehicles"] == len(messages)
                took.append(time.perf_counter() - t0)
        finally:
            worker.stop()
        entry: dict[str, Any] = {
            "rss_start_mb": rss_empty / 2**20, "rss_with_twins_mb": rss_full / 2**20,
            "consumed_when_start_rss_taken": consumed_at_empty,
            "bytes_per_twin": (rss_full - rss_empty) / len(messages),
            "fleet_summary_s": sorted(took)[1],
        }
        entry["projected_rss_1m_twins_gb"] = (rss_empty + entry["bytes_per_twin"] * 1_000_000) / 2**30
        if store == "rocksdb://":
            asyncio.run(publish(broker.bootstrap, settings.topic_telemetry, messages[:1]))
            restarted = Worker(broker, settings, tmp, data_name=f"state-{name}")
            try:
                t_first = restarted.wait_consumed(1, timeout=300)
                entry["restart_to_first_record_s"] = t_first - restarted.started
            finally:
                restarted.stop()
        out[name] = entry
    return out
