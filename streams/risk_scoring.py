"""Batched in-stream risk scoring with hot model reload.

Every ``FLEET_RISK_SCORE_TICK_S`` the scorer takes the twins changed since they were
last scored (at most once per ``FLEET_RISK_SCORE_INTERVAL_S`` per vehicle; a repair
record makes a vehicle due at once), builds their feature rows with the same
``models.risk.features`` code training used, scores them in one vectorised call per
component, and stores probability, horizon, model version and the top contributing
features in each twin (written with the next flush). The weather days of the exposure
features are looked up once and kept while their stored record is unchanged
(``models.risk.exposure.ExposureCache``). The model directory is checked every
``FLEET_RISK_RELOAD_S``: a new version is picked up without a restart; a broken one is
logged and the running model stays in force.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from models.risk.artifact import load_model_set
from models.risk.exposure import ExposureCache
from models.risk.scoring import score_twins, warm_up
from streams import metrics
from twins.maintenance import COMPONENTS as MAINT_COMPONENTS
from twins.maintenance import component_age_days

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

    @property
    def exposure(self) -> ExposureCache:
        """The weather days looked up for exposure, kept across batches while their stored record is unchanged."""
        if self._exposure is None:
            self._exposure = ExposureCache(self.app.hourly_weather, day_version=self.app.weather_day_version)
        return self._exposure

    def maybe_reload(self) -> bool:
        """Load a newer artifact if there is one; True when the model changed."""
        if self.model_dir is None:
            return False
        path = newest_artifact(self.model_dir)
        if path is None:
            return False
        stamp = (path, (path / "metadata.json").stat().st_mtime)
        if stamp == self.loaded_from:
            return False
        try:
            models = load_model_set(path)
            warm_up(models)                               # compile the batch's loops now, not mid-batch
        except Exception as exc:  # keep scoring with the model in force
            self.last_error = f"{path}: {exc}"
            log.error("risk model %s not loaded, keeping %s: %s", path,
                      self.models.version if self.models else "none", exc)
            metrics.RISK_MODEL_ERRORS.inc()
            self.loaded_from = stamp
            return False
        self.models, self.loaded_from, self.last_error = models, stamp, None
        self.app.ingest.changed.update(self.app.ingest.local_vins())  # rescore everyone with the new version
        metrics.RISK_MODEL_INFO.info({"version": models.version, "path": str(path)})
        log.info("risk model %s loaded from %s", models.version, path)
        return True

    async def score_due(self, now_ms: int) -> int:
        """Score the due twins (one batch); returns how many were scored."""
        ingest = self.app.ingest
        if self.models is None:
            # nothing to score with: forget who changed (a model, once loaded, re-scores every vehicle)
            ingest.changed.clear()
            ingest.urgent.clear()
            return 0
        if not ingest.changed:
            return 0
        alerts = ingest.alerts
        async with ingest._lock:
            due = []
            for vin in list(ingest.changed):
                twin = ingest.get_twin(vin)
                if twin is None:
                    ingest.changed.discard(vin)
                    continue
                if alerts is not None and not alerts.ready(vin):
                    continue  # its partition is not reconciled with the alerts topic yet: score it later
                r = twin.risk
                if r is None or r.version != self.models.version or now_ms - r.scored_ms >= self.interval_ms \
                        or vin in ingest.urgent:
                    due.append(twin)
                    if len(due) >= self.batch_max:
                        break
            if not due:
                return 0
            started = time.perf_counter()
            states = score_twins(self.models, due, self.exposure, now_ms=now_ms,
                                 in_service_ms=[self.in_service_ms.get(t.vin) for t in due],
                                 component_ages_days=[self._ages(t, now_ms) for t in due])
            raised: list[Any] = []
            for twin, state in zip(due, states):
                twin.risk = state
                ingest.mark_dirty(twin)
                ingest.changed.discard(twin.vin)
                ingest.urgent.discard(twin.vin)
                if alerts is not None:
                    raised += alerts.on_risk(twin)
            if raised:
                await alerts.publish(raised)
            elapsed = time.perf_counter() - started
        metrics.RISK_SCORED.inc(len(due))
        metrics.RISK_BATCH_SECONDS.observe(elapsed)
        for k, c in enumerate(self.models.components):
            metrics.RISK_MAX.labels(c).set(max(st.probability[k] for st in states))
        return len(due)

    def _ages(self, twin: Any, now_ms: int) -> dict[str, float | None] | None:
        """Days since each component's last repair; None (= the vehicle's age) for a vehicle never serviced."""
        repairs = twin.maintenance
        if not any(repairs.serviced_ms):
            return None
        return {c: component_age_days(repairs, c, now_ms, self.in_service_ms.get(twin.vin)) for c in MAINT_COMPONENTS}

    async def run(self) -> None:
        """The loop: reload check and scoring ticks."""
        last_reload = 0.0
        while True:
            if time.monotonic() - last_reload >= self.reload_s:
                self.maybe_reload()
                last_reload = time.monotonic()
            scored = await self.score_due(int(time.time() * 1000))
            await asyncio.sleep(0 if scored >= self.batch_max else self.tick_s)
