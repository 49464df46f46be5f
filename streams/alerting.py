"""The worker's alerting: rules in force, publishing to ``fleet.alerts``, reconcile, sweeps, hand actions.

The pure lifecycle lives in :mod:`twins.alerts.engine`; this module connects it to the
stream:

* **readings** — the ingest calls :meth:`AlertService.on_readings` for each vehicle's
  group of a batch (signal, DTC, staleness-clear rules), the risk scorer calls
  :meth:`AlertService.on_risk` after each score;
* **publish** — each state change goes to ``fleet.alerts`` (key VIN, the twin's
  partition) at once; before the next twin flush the producer's acknowledgements are
  awaited (:meth:`AlertService.durable`), so a twin in the changelog never holds an
  alert revision the topic lacks;
* **reconcile** — before a worker processes a partition it has just been given, it
  reads the alerts topic up to its end and adopts newer revisions into the twins'
  books (:func:`twins.alerts.engine.adopt`). A record published just before a crash,
  whose twin never reached the changelog, is thus known when the telemetry is replayed:
  same id, no second alert;
* **sweeps** — every ``FLEET_ALERT_SWEEP_S`` the staleness rules are checked and alerts of
  rules that a reload removed are resolved;
* **reload** — the rules file is re-read when it changes; a bad file is logged and
  counted and the rules in force stay in force.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streams import metrics
from streams.alert_feed import AlertFeed
from twins.alerts import engine
from twins.alerts.rules import DEFAULT_RULES, RuleSet, RulesError, load_rules
from twins.alerts.state import Alert, AlertBook, encode_alert
from twins.brief import active_alerts, decode_brief
from twins.errors import ConfigurationError, FleetAssuranceError
from twins.reading import Reading
from twins.twin import Twin, copy_alerts, is_stale, new_twin
from twins.weather import context as weather_context

log = logging.getLogger(__name__)
SWEEP_CHUNK = 2_000


class AlertNotPublished(FleetAssuranceError):
    """An ack or resolve whose alert record the broker did not take: nothing was changed."""


class AlertService:
    """Owns the rules in force and the alert side effects of one worker."""

    def __init__(self, app: Any, rules_path: Path | None, topic: Any, feed: AlertFeed, reload_s: float,
                 sweep_s: float) -> None:
        self.app = app
        self.rules_path = rules_path or DEFAULT_RULES
        self.topic = topic
        self.feed = feed
        self.reload_s = reload_s
        self.sweep_s = sweep_s
        try:
            self.rules: RuleSet = load_rules(self.rules_path)
        except RulesError as exc:
            raise ConfigurationError(f"FLEET_ALERT_RULES: {exc}") from None
        self._stamp = self._file_stamp()
        self.last_error: str | None = None
        self.reconciled: set[int] = set()
        #: books adopted for VINs with no twin here yet (only resolved alerts): handed to the twin its replay makes
        self.orphan_books: dict[str, AlertBook] = {}
        self._reconcile_lock = asyncio.Lock()
        self._unacked: list[Any] = []
        metrics.ALERT_RULES_INFO.info({"version": self.rules.version, "digest": self.rules.digest,
                                       "file": self.rules_path.name})  # no file-system paths on /metrics

    # --- rules -------------------------------------------------------------------------------
    def _file_stamp(self) -> tuple[float, int] | None:
        try:
            st = self.rules_path.stat()
        except OSError:
            return None
        return st.st_mtime, st.st_size

    def maybe_reload(self) -> bool:
        """Load the rules file again if it changed; True when new rules are in force."""
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            rules = load_rules(self.rules_path)
        except RulesError as exc:
            self.last_error = str(exc)
            metrics.ALERT_RULES_ERRORS.inc()
            log.error("alert rules %s rejected, rules version %r stay in force: %s", self.rules_path,
                      self.rules.version, exc)
            return False
        if rules.digest == self.rules.digest:
            return False
        self.rules, self.last_error = rules, None
        metrics.ALERT_RULES_INFO.info({"version": rules.version, "digest": rules.digest, "file": self.rules_path.name})
        log.info("alert rules version %r (%s) in force", rules.version, rules.digest)
        return True

    # --- publishing --------------------------------------------------------------------------
    def partition_of(self, vin: str) -> int:
        """The VIN's partition, from the ingest's cache (one murmur2 per vehicle)."""
        return self.app.ingest.partition_of_key(vin.encode())

    async def publish(self, records: Sequence[Alert]) -> None:
        """Send alert records (key VIN, the VIN's partition); acknowledgements are awaited by :meth:`durable`."""
        now = time.time()
        for rec in records:
            fut = await self.topic.send(key=rec.vin.encode(), value=encode_alert(rec),
                                        partition=self.partition_of(rec.vin))
            self._unacked.append(fut)
            metrics.ALERT_RECORDS.labels(rec.event, rec.severity, rec.rule_kind).inc()
            if rec.event == "opened" and rec.rule_kind in ("signal", "dtc"):
                metrics.ALERT_LATENCY_SECONDS.observe(max(0.0, now - rec.updated_ms / 1000.0))

    async def durable(self) -> None:
        """Wait until every alert record sent so far is acknowledged by the broker (before a twin flush)."""
        if not self._unacked:
            return
        pending, self._unacked = self._unacked, []
        await asyncio.gather(*pending)

    def context(self, twin: Twin) -> engine.Context:
        """Region (weather cell) and current weather of the twin, computed only if an alert opens."""

        def ctx() -> tuple[str | None, dict[str, Any] | None]:
            cell = twin.residency.current or None
            state = self.app.cell_weather(cell) if cell else None
            if state is None:
                return cell, None
            return cell, {k: v for k, v in weather_context(state).items() if k != "forecast"}

        return ctx

    # --- hooks called with the ingest lock held ------------------------------------------------
    def book_of(self, twin: Twin) -> AlertBook:
        """The twin's book, or a new one seeded from its state (not yet stored in the twin)."""
        return twin.alerts or engine.seed_book(self.rules, twin.values, twin.last_seen)

    def before(self, twin: Twin) -> AlertBook | None:
        """Call before merging readings: a book seeded from the twin's state if it has none."""
        rules = self.rules
        if twin.alerts is None and self.orphan_books and not twin.n_applied:
            twin.alerts = self.orphan_books.pop(twin.vin, None)  # its alerts were published before a crash
        if twin.alerts is not None or not (rules.signal or rules.dtc):
            return None
        return engine.seed_book(rules, twin.values, twin.last_seen)

    def observe(self, twin: Twin, readings: Sequence[Reading], seed: AlertBook | None) -> list[Alert]:
        """Signal/DTC/staleness-clear rules over one vehicle's new (merged) readings; caller publishes.

        The twin keeps a book only while it holds something (alert history, a pending condition).
        """
        book = twin.alerts or seed
        if book is None:
            return []
        out = engine.observe_readings(book, self.rules, twin.vin, readings, self.context(twin))
        twin.alerts = None if engine.idle(book) else book
        return out

    def on_risk(self, twin: Twin) -> list[Alert]:
        """Risk rules after ``twin.risk`` was updated (caller publishes)."""
        if not self.rules.risk or twin.risk is None:
            return []
        book = self.book_of(twin)
        out = engine.observe_risk(book, self.rules, twin.vin, twin.risk, self.context(twin))
        if out:
            twin.alerts = book
        return out

    def ready(self, vin: str) -> bool:
        """True when the VIN's partition was reconciled with the alerts topic (alerts may be raised)."""
        return self.partition_of(vin) in self.reconciled

    # --- reconcile -----------------------------------------------------------------------------
    async def reconcile(self, partitions: set[int]) -> None:
        """Adopt the alerts topic's newer revisions into the books of ``partitions``' twins."""
        ingest = self.app.ingest
        async with self._reconcile_lock:
            todo = partitions - self.reconciled
            if not todo:
                return
            started = time.perf_counter()
            await self.feed.wait_caught_up(todo)
            adopted = 0
            async with ingest._lock:
                for alert in list(self.feed.latest.values()):
                    if self.partition_of(alert.vin) not in todo:
                        continue
                    twin = ingest.get_twin(alert.vin)
                    if twin is None and alert.status == "resolved":
                        # No twin (its records were never flushed) and nothing open: remember the episode
                        # and cooldown for the twin the replay makes, which would raise it again otherwise.
                        book = self.orphan_books.setdefault(alert.vin, AlertBook())
                        adopted += engine.adopt(book, alert, self.rules)
                        continue
                    twin = twin or new_twin(alert.vin)
                    book = self.book_of(twin)
                    if engine.adopt(book, alert, self.rules):
                        twin.alerts = book
                        ingest.mark_dirty(twin)
                        adopted += 1
                self.reconciled |= todo
            log.info("alerts: partitions %s reconciled with %s (%d books updated) in %.2f s", sorted(todo),
                     self.feed.topic, adopted, time.perf_counter() - started)

    async def reconcile_or_degrade(self, partition: int) -> None:
        """Reconcile before the partition's first batch; if the alerts topic cannot be read, go on without.

        Telemetry must keep flowing: the partition is then marked reconciled and an error logged
        (a crash in the last flush interval may then re-publish an alert revision).
        """
        try:
            await self.reconcile({partition})
        except (TimeoutError, asyncio.TimeoutError, RuntimeError, OSError) as exc:
            self.reconciled.add(partition)
            log.error("alerts: partition %d not reconciled with %s (%s: %s); continuing without — a revision "
                      "published just before a crash may repeat", partition, self.feed.topic, type(exc).__name__, exc)

    def forget(self, partitions: set[int]) -> None:
        """Partitions moved away: reconcile again if they come back."""
        self.reconciled -= partitions
        for vin in [v for v in self.orphan_books if self.partition_of(v) in partitions]:
            del self.orphan_books[vin]

    # --- hand actions (API) -----------------------------------------------------------------------
    async def act(self, vin: str, aid: str, action: str, by: str, note: str | None) -> Alert:
        """Acknowledge or resolve ``aid`` on this worker (the VIN's owner); publishes the change."""
        await self.reconcile({self.partition_of(vin)})
        ingest = self.app.ingest
        async with ingest._lock:
            twin = ingest.get_twin(vin)
            if twin is None or twin.alerts is None:
                raise engine.AlertNotFound(f"alert {aid!r} is not open: vehicle {vin} has no open alerts")
            now = int(time.time() * 1000)
            book = copy_alerts(twin.alerts)  # changed only once its record is on the alerts topic
            if action == "ack":
                rec = engine.acknowledge(book, aid, by, now, note)
            else:
                rec = engine.resolve(book, self.rules, aid, by, now, note)
            try:
                delivered = await self.topic.send(key=rec.vin.encode(), value=encode_alert(rec),
                                                  partition=self.partition_of(rec.vin))
                await delivered
            except Exception as exc:  # noqa: BLE001 - whatever the producer says, nothing changed
                raise AlertNotPublished(f"alert {aid!r} was not changed: its record could not be published "
                                        f"({type(exc).__name__}); try again") from None
            metrics.ALERT_RECORDS.labels(rec.event, rec.severity, rec.rule_kind).inc()
            twin.alerts = book
            ingest.mark_dirty(twin)
        return rec

    # --- background loop ------------------------------------------------------------------------
    def _assigned(self) -> set[int]:
        topic = self.app.fleet_settings.topic_telemetry
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic}

    async def sweep(self, now_ms: int) -> int:
        """Staleness rules and retired rules over the twins of reconciled partitions; returns records published."""
        ingest = self.app.ingest
        rules = self.rules
        keys = [k for k, v in ingest.table.data.items() if v is not None]
        keys += [vin.encode() for vin in ingest.dirty]
        seen: set[bytes] = set()
        published = vehicles = stale = 0
        stale_ms = self.app.fleet_settings.stale_after_ms
        for i in range(0, len(keys), SWEEP_CHUNK):
            async with ingest._lock:
                out: list[Alert] = []
                for key in keys[i:i + SWEEP_CHUNK]:
                    if key in seen:
                        continue
                    seen.add(key)
                    if ingest.partition_of_key(key) not in self.reconciled:  # the key: no re-encoding
                        continue
                    vin = key.decode()
                    state = ingest.stored(vin)
                    if state is None:
                        continue
                    brief = decode_brief(state) if type(state) is bytes else state
                    vehicles += 1
                    stale += is_stale(brief, now_ms, stale_ms)
                    if not active_alerts(brief) and not engine.staleness_due(rules, brief.last_seen, now_ms):
                        continue  # nothing to raise or retire: the rest of the twin is not decoded
                    twin = ingest.get_twin(vin)
                    book = self.book_of(twin)
                    recs = engine.retire_unknown(book, rules, now_ms) if book.active else []
                    if rules.staleness:
                        recs += engine.sweep_staleness(book, rules, vin, twin.last_seen, now_ms, self.context(twin))
                    if recs:
                        twin.alerts = book
                        ingest.mark_dirty(twin)
                        out += recs
                if out:
                    await self.publish(out)
                    published += len(out)
            await asyncio.sleep(0)
        metrics.VEHICLES.labels("stale").set(stale)  # the owned partitions' vehicles: sum over workers = fleet
        metrics.VEHICLES.labels("live").set(vehicles - stale)
        return published

    async def run(self) -> None:
        """Reload checks, reconcile of idle partitions, sweeps."""
        last_reload = last_sweep = time.monotonic()
        while True:
            await asyncio.sleep(min(self.reload_s, self.sweep_s, 1.0))
            now = time.monotonic()
            if now - last_reload >= self.reload_s:
                error_before = self.last_error
                if self.maybe_reload():
                    await self.app.audit.record("system", "rules_reload", self.rules.version, "FLEET_ALERT_RULES",
                                                "ok", self.rules.digest)
                elif self.last_error != error_before and self.last_error:
                    await self.app.audit.record("system", "rules_reload", self.rules_path.name, "FLEET_ALERT_RULES",
                                                "rejected", self.last_error)
                last_reload = now
            app = self.app
            if app.rebalancing or app.in_recovery:
                continue
            missing = self._assigned() - self.reconciled
            if missing:
                try:
                    await self.reconcile(missing)
                except (TimeoutError, asyncio.TimeoutError, RuntimeError) as exc:
                    log.warning("alerts: reconcile of partitions %s postponed: %s", sorted(missing), exc)
            if now - last_sweep >= self.sweep_s:
                last_sweep = now
                await self.sweep(int(time.time() * 1000))


def register_alerting(app: Any, settings: Any) -> AlertService:
    """Create the alerts topic handle, the feed and the service on ``app`` and start their tasks."""
    from streams.kafka_security import aiokafka_kwargs

    topic = app.topic(settings.topic_alerts, key_type=bytes, value_type=bytes, key_serializer="raw",
                      value_serializer="raw", partitions=settings.partitions)
    feed = AlertFeed(settings.bootstrap_servers, settings.topic_alerts, settings.partitions,
                     settings.fetch_max_wait_ms, int(settings.alert_keep_resolved_h * 3_600_000),
                     settings.verify_end_offsets, aiokafka_kwargs(settings))
    service = AlertService(app, settings.alert_rules, topic, feed, settings.alert_rules_reload_s,
                           settings.alert_sweep_s)
    app.alerts, app.alert_feed = service, feed
    app.ingest.alerts = service

    @app.task
    async def _alert_feed() -> None:
        await feed.run()

    @app.task
    async def _alert_service() -> None:
        await service.run()

    return service
