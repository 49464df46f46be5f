"""What ``/readyz`` and single-VIN routing consult: is this worker fit to answer right now?

A worker is ready when the broker answers, its partitions are not moving (no rebalance,
no changelog recovery in progress) and it owns at least one partition. Each failing
condition is reported as a sentence, so ``/readyz`` says *why* it is 503.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from faust.types import TP

from streams import metrics

log = logging.getLogger(__name__)


class Readiness:
    """Tracks broker reachability (a metadata probe) and partition movement (Faust's rebalance signals)."""

    def __init__(self, app: Any, probe_interval_s: float = 1.0, probe_timeout_s: float = 2.0,
                 unreachable_after_s: float = 3.0) -> None:
        self.app = app
        self.probe_interval_s = probe_interval_s
        self.probe_timeout_s = probe_timeout_s
        self.unreachable_after_s = unreachable_after_s
        #: partitions revoked and not yet recovered (set on revoke, cleared when Faust reports the rebalance done)
        self.moving = True
        self.broker_ok_at: float | None = None
        self.broker_error: str | None = "not probed yet"
        self._ends: dict[TP, int] = {}
        self._ends_at = 0.0

    def on_revoked(self) -> None:
        self.moving = True

    def on_rebalance_complete(self) -> None:
        self.moving = False

    @property
    def broker_reachable(self) -> bool:
        ok = self.broker_ok_at
        return ok is not None and time.monotonic() - ok <= self.unreachable_after_s

    def partitions_moving(self) -> str | None:
        """Why this worker's partitions cannot be served right now, or None."""
        if self.app.rebalancing:
            return "rebalancing: the worker group is reassigning partitions"
        if self.moving or self.app.in_recovery:
            return "recovering: partitions are being restored from their changelogs"
        return None

    async def behind(self, partition: int) -> int:
        """Telemetry records on ``partition`` this worker has not processed yet (0: caught up).

        A settled owner may still be replaying what followed its last committed offset; a twin
        it does not find may be in that backlog. End offsets are cached for a second.
        """
        tp = TP(self.app.fleet_settings.topic_telemetry, partition)
        consumer = self.app.consumer
        if time.monotonic() - self._ends_at > 1.0 or tp not in self._ends:
            self._ends = dict(await consumer.highwaters(tp))
            self._ends_at = time.monotonic()
        # The next record to process, never the fetch position: records fetched but not yet handled
        # (or skipped by a bad fetch start) are still to be read, and a 404 meanwhile would be false.
        done = await consumer.expected_start(tp)
        return max(0, self._ends.get(tp, 0) - done)

    def reasons(self) -> list[str]:
        """Every reason this worker is not ready (empty: ready)."""
        out: list[str] = []
        if not self.broker_reachable:
            since = "" if self.broker_ok_at is None else f" for {time.monotonic() - self.broker_ok_at:.0f} s"
            out.append(f"broker unreachable{since}: {self.broker_error or 'no answer to a metadata request'}")
        moving = self.partitions_moving()
        if moving:
            out.append(moving)
        elif not self.app.assignor.assigned_actives():
            out.append("no partitions assigned to this worker")
        metrics.READY.set(0 if out else 1)
        return out

    async def run_probe(self) -> None:
        """Ask the broker for cluster metadata every ``probe_interval_s`` (an app task)."""
        from aiokafka.client import AIOKafkaClient

        from streams.kafka_security import aiokafka_kwargs

        settings = self.app.fleet_settings
        timeout_ms = int(self.probe_timeout_s * 1000)
        client = AIOKafkaClient(bootstrap_servers=settings.bootstrap_servers, client_id="fleet-readiness-probe",
                                request_timeout_ms=timeout_ms, **aiokafka_kwargs(settings))
        bootstrapped = False
        try:
            while True:
                try:
                    if not bootstrapped:
                        await asyncio.wait_for(client.bootstrap(), self.probe_timeout_s * 2)
                        bootstrapped = True
                    await asyncio.wait_for(client.fetch_all_metadata(), self.probe_timeout_s * 2)
                except Exception as exc:  # any failure means "not reachable now"; the next probe retries
                    if self.broker_error is None:
                        log.warning("readiness: the broker stopped answering (%s: %s)", type(exc).__name__, exc)
                    name, text = type(exc).__name__, str(exc)
                    self.broker_error = text if text.startswith(name) else f"{name}: {text}" if text else name
                else:
                    if self.broker_error is not None and self.broker_ok_at is not None:
                        log.info("readiness: the broker answers again")
                    self.broker_ok_at = time.monotonic()
                    self.broker_error = None
                await asyncio.sleep(self.probe_interval_s)
        finally:
            await client.close()
