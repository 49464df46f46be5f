"""Batched in-stream risk scoring with hot model reload.

Every ``FLEET_RISK_SCORE_TICK_S`` the scorer takes the twins changed since they were
last scored (at most once per ``FLEET_RISK_SCORE_INTERVAL_S`` per vehicle; a repair
record makes a vehicle due at once), builds their feature rows with the same
``models.risk.features`` code training used, scores them in one vectorised call per
component, and stores probability, horizon, model version and the top contributing
features in each twin (written with the next flush). A twin already flushed is decoded from
its stored record and scored as a twin: one scoring path. The weather days of the exposure
features are looked up once and kept while their stored record is unchanged
(``models.risk.exposure.ExposureCache``). The model directory is checked every
``FLEET_RISK_RELOAD_S``: a new version is picked up without a restart; a broken one is
logged and the running model stays in force. Every artifact is checked against its SHA-256
manifest before it is parsed or unpickled (``models.risk.artifact.verify_manifest``); a
tampered one is refused, logged and counted in ``fleet_risk_model_integrity_failures_total``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from models.risk.artifact import ArtifactIntegrityError, load_model_set
from models.risk.exposure import ExposureCache
from models.risk.scoring import component_ages, score_twins, warm_up
from streams import metrics
from streams.worker_metrics import RISK_SCORES
from twins.brief import decode_brief
from twins.twin import Twin, decode_twin, encode_twin

log = logging.getLogger(__name__)


def newest_artifact(root: Path) -> Path | None:
    """``root`` itself if it is an artifact, else its newest artifact subdirectory (by name)."""
    if (root / "metadata.json").exists():
        return root
    versions = sorted(p for p in root.iterdir() if (p / "metadata.json").exists()) if root.is_dir() else []
    return versions[-1] if versions else None


class RiskScorer:
    """Owns the loaded model set and the scoring loop of one worker."""

    def __init__(self, app: Any, model_dir: Path | None, interval_s: float, tick_s: float, reload_s: float,
                 batch_max: int, in_service_ms: dict[str, int]) -> None:
        self.app = app
        self.model_dir = model_dir
        self.interval_ms = int(interval_s * 1000)
        self.tick_s = tick_s
        self.reload_s = reload_s
        self.batch_max = batch_max
        self.in_service_ms = in_service_ms
        self.models: Any = None
        self.loaded_from: tuple[Path, float] | None = None
        self.last_error: str | None = None
        self._exposure: ExposureCache | None = None
        #: VIN -> when it is next due (epoch ms), for the twins this worker scored (others: read from the record)
        self._next_due: dict[str, int] = {}
        #: VINs whose stored record could not be read (logged once each)
        self._unreadable: set[str] = set()

    @property
    def exposure(self) -> ExposureCache:
        """The weather days looked up for exposure, kept across batches while their stored record is unchanged."""
        if self._exposure is None:
            self._exposure = ExposureCache(self.app.hourly_weather, day_version=self.app.weather_day_version)
        return self._exposure

    def maybe_reload(self) -> bool:
        """Load a newer artifact if there is one; True when the model changed (blocks while it compiles)."""
        found = self._newer()
        return found is not None and self._adopt(found, self._load(found[0]))

    async def reload(self) -> bool:
        """:meth:`maybe_reload` with the loading and compiling in a thread: the event loop (heartbeats, ingest,
        HTTP) keeps running through a first compile (~25 s with an empty numba cache)."""
        found = self._newer()
        if found is None:
            return False
        adopted = self._adopt(found, await asyncio.to_thread(self._load, found[0]))
        audit = getattr(self.app, "audit", None)
        if audit is not None:
            await audit.record("system", "model_switch", found[0].name, "FLEET_RISK_MODEL_DIR",
                               "ok" if adopted else "rejected", self.last_error or "")
        return adopted

    def _newer(self) -> tuple[Path, float] | None:
        """The newest artifact's (path, mtime) if it is not the one loaded last."""
        if self.model_dir is None:
            return None
        path = newest_artifact(self.model_dir)
        if path is None:
            return None
        stamp = (path, (path / "metadata.json").stat().st_mtime)
        return None if stamp == self.loaded_from else stamp

    @staticmethod
    def _load(path: Path) -> Any:
        """The model set at ``path`` with the batch's loops compiled, or the exception that stopped it."""
        try:
            models = load_model_set(path)
            warm_up(models)                               # compile the batch's loops now, not mid-batch
            return models
        except Exception as exc:  # reported by _adopt
            return exc

    def _adopt(self, stamp: tuple[Path, float], models: Any) -> bool:
        """Put a loaded model set in force (or log why it could not be loaded and keep the one in force)."""
        path = stamp[0]
        if isinstance(models, Exception):  # keep scoring with the model in force
            self.last_error = f"{path}: {models}"
            log.error("risk model %s not loaded, keeping %s: %s", path,
                      self.models.version if self.models else "none", models)
            metrics.RISK_MODEL_ERRORS.inc()
            if isinstance(models, ArtifactIntegrityError):
                metrics.RISK_MODEL_REJECTED.inc()
            self.loaded_from = stamp
            return False
        self.models, self.loaded_from, self.last_error = models, stamp, None
        self._next_due.clear()
        self.app.ingest.changed.update(self.app.ingest.local_vins())  # rescore everyone with the new version
        metrics.RISK_MODEL_INFO.info({"version": models.version, "artifact": path.name})  # no file-system paths
        log.info("risk model %s loaded from %s", models.version, path)
        return True

    async def score_due(self, now_ms: int) -> int:
        """Score the due twins (one batch); returns how many were scored.

        Unflushed twins are scored as they are; stored ones are decoded first (``decode_twin``, ~25 µs
        a twin), scored the same way and queued for the flush as their new record (a decoded twin holds
        ~14 KB, its record ~2 KB: a fleet-wide re-score must not hold the fleet decoded until the flush).
        """
        ingest = self.app.ingest
        models = self.models
        if models is None:
            # nothing to score with: forget who changed (a model, once loaded, re-scores every vehicle)
            ingest.changed.clear()
            ingest.urgent.clear()
            return 0
        if not ingest.changed:
            return 0
        alerts = ingest.alerts
        async with ingest._lock:
            started = time.perf_counter()
            objects, decoded = self._due(now_ms)
            twins = objects + decoded
            if not twins:
                return 0
            services = self.in_service_ms
            states = score_twins(models, twins, self.exposure, now_ms=now_ms,
                                 in_service_ms=[services.get(t.vin) for t in twins],
                                 component_ages_days=[component_ages(t.maintenance, now_ms, services.get(t.vin))
                                                      for t in twins])
            raised: list[Any] = []
            due_again = now_ms + self.interval_ms
            for k, (twin, state) in enumerate(zip(twins, states)):
                twin.risk = state
                if alerts is not None:
                    raised += alerts.on_risk(twin)           # may change the twin's alert book: before encoding
                vin = twin.vin
                ingest.put_record(vin, twin if k < len(objects) else encode_twin(twin))
                ingest.changed.discard(vin)
                ingest.urgent.discard(vin)
                self._next_due[vin] = due_again
            if raised:
                await alerts.publish(raised)
            elapsed = time.perf_counter() - started
        n = len(twins)
        metrics.RISK_SCORED.inc(n)
        metrics.RISK_BATCH_SECONDS.observe(elapsed)
        everything = np.array([st.probability for st in states]).reshape(n, len(models.components))
        RISK_SCORES.observe(models.components, everything)
        top = everything.max(axis=0)
        for k, c in enumerate(models.components):
            metrics.RISK_MAX.labels(c).set(float(top[k]))
        return n

    def _due(self, now_ms: int) -> tuple[list[Twin], list[Twin]]:
        """The changed twins due for scoring, at most ``batch_max``: unflushed ones, and stored ones decoded.

        A twin is due when it has no risk state of the model in force, or its state is an interval
        old, or it is urgent (a repair record). For a stored twin this worker scored since the model
        was loaded, that time is kept (``_next_due``); other records are read as briefs
        (``twins.brief``, a few µs) for their state's version and time, and decoded only when due.
        At most ``batch_max`` twins are taken and four times as many briefs read per call, so one batch
        holds the event loop for a bounded time even when the whole fleet changed (a new model). A
        record that cannot be decoded (a newer layout, a corrupt record: whatever the decoders raise) is
        logged once and left unscored rather than failing every batch."""
        ingest = self.app.ingest
        alerts = ingest.alerts
        version = self.models.version
        interval = self.interval_ms
        objects: list[Twin] = []
        decoded: list[Twin] = []
        next_due, urgent = self._next_due, ingest.urgent
        briefs = 0
        for vin in list(ingest.changed):
            if len(objects) + len(decoded) >= self.batch_max or briefs >= 4 * self.batch_max:
                break
            state = ingest.stored(vin)
            if state is None:
                ingest.changed.discard(vin)
                continue
            if alerts is not None and not alerts.ready(vin):
                continue  # its partition is not reconciled with the alerts topic yet: score it later
            if type(state) is not bytes:
                r = state.risk
                if r is None or r.version != version or now_ms - r.scored_ms >= interval or vin in urgent:
                    objects.append(state)
                continue
            due = next_due.get(vin)
            try:
                if vin not in urgent and due is None:     # not scored here yet: when was it scored?
                    briefs += 1
                    r = decode_brief(state).risk
                    if r is not None and r.version == version and now_ms - r.scored_ms < interval:
                        next_due[vin] = r.scored_ms + interval
                        continue
                elif vin not in urgent and due > now_ms:
                    continue
                decoded.append(decode_twin(state))
            except Exception as exc:  # the decoding boundary of stored records: none may stop scoring
                if vin not in self._unreadable:
                    log.error("twin %s not scored: its stored record cannot be read: %s", vin, exc)
                    self._unreadable.add(vin)
                ingest.changed.discard(vin)
                ingest.urgent.discard(vin)
        return objects, decoded

    async def run(self) -> None:
        """The loop: reload check and scoring ticks."""
        last_reload = 0.0
        while True:
            if time.monotonic() - last_reload >= self.reload_s:
                await self.reload()
                last_reload = time.monotonic()
            try:
                scored = await self.score_due(int(time.time() * 1000))
            except Exception:  # a bug or an unreadable twin must not stop scoring for good: log, go on
                log.exception("risk scoring batch failed; retrying in %.1f s", self.tick_s)
                scored = 0
            await asyncio.sleep(0 if scored >= self.batch_max else self.tick_s)
