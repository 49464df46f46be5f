"""Metrics read from the worker's state when ``/metrics`` is scraped: consumer lag, rebalances,
partitions, open alerts, build info; and every labelled counter created at 0 at start-up.

**No double counting.** Every figure here is exported only for the partitions this worker
owns (its active assignment), so ``sum()`` over all workers is the fleet value:
``fleet_alerts_active`` counts the open alerts of the owned telemetry partitions (each worker
reads the whole alerts topic, but exports only its share), and ``fleet_consumer_*{topic,partition}``
series come only from the partition's current owner.

**Lag** = end offset − committed offset (0 when the group has committed nothing yet), per
source partition. The end offset is the larger of the last fetch response's high watermark and
a ListOffsets answer refreshed every :data:`END_OFFSETS_EVERY_S`, so lag keeps growing while
processing is stuck.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import platform
import subprocess
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from prometheus_client import Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from streams import metrics
from streams.ingest import partition_of
from streams.settings import Settings
from twins.alerts.rules import COMPONENTS, KINDS, SEVERITIES

log = logging.getLogger(__name__)
END_OFFSETS_EVERY_S = 10.0
#: label values known before any event, per label name (counters are created with every combination)
OUTCOMES = ("applied", "duplicate", "too_late", "invalid", "failed")
ALERT_EVENTS = ("opened", "escalated", "acknowledged", "resolved")
CHARGING_TRIGGERS = ("plug_in", "plug_out", "grid", "dr_event", "tick", "manual")


def known_label_sets() -> dict[Counter, list[dict[str, str]]]:
    """For each labelled counter, the label sets it is created with at start-up (the dead-letter counter's:
    :class:`streams.dead_letter.DeadLetters`)."""
    def product(**values: tuple[str, ...]) -> list[dict[str, str]]:
        return [dict(zip(values, combo)) for combo in itertools.product(*values.values())]

    return {
        metrics.RECORDS_IN: product(outcome=OUTCOMES),
        metrics.ALERT_RECORDS: product(event=ALERT_EVENTS, severity=SEVERITIES, rule_kind=KINDS),
        metrics.CHARGING_PLANS: product(trigger=CHARGING_TRIGGERS),
    }


def init_counters() -> None:
    """Create every labelled counter's known series at 0, so ``increase()`` sees the first event."""
    for counter, label_sets in known_label_sets().items():
        for labels in label_sets:
            counter.labels(**labels)


def build_labels() -> dict[str, str]:
    """Version, git commit (``GIT_COMMIT`` from the image build, else ``git``), Python and Faust versions."""
    commit = os.environ.get("GIT_COMMIT", "")
    if not commit:
        try:
            commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                                    timeout=5, cwd=Path(__file__).resolve().parent).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            commit = ""
    return {"version": metadata.version("fleet-assurance"), "commit": commit or "unknown",
            "python": platform.python_version(), "faust": metadata.version("faust-streaming")}


class WorkerCollector(Collector):
    """Reads the bound app at scrape time (one per process; :func:`register_worker_metrics` binds it)."""

    def __init__(self) -> None:
        self.app: Any = None
        self.build = build_labels()
        #: end offsets from the last ListOffsets, per TP
        self.end_offsets: dict[TP, int] = {}
        #: site -> (plan record, (peak, cap, excess)) of the last plan decoded
        self._plans: dict[str, tuple[bytes, tuple[float, float, float]]] = {}

    def source_partitions(self) -> list[TP]:
        """This worker's assigned partitions of the topics it processes (not changelogs, not the leader topic)."""
        consumer = self.app.consumer
        skip = set(self.app.tables.changelog_topics) | set(consumer.randomly_assigned_topics)
        return sorted(tp for tp in consumer.assignment() if tp.topic not in skip)

    async def refresh_end_offsets(self) -> None:
        """Ask the broker for the end offsets of the assigned source partitions (no Tansu probe)."""
        tps = self.source_partitions()
        ends = await faust_aiokafka.Consumer.highwaters(self.app.consumer, *tps) if tps else {}
        self.end_offsets = {tp: int(o) for tp, o in ends.items() if o is not None}

    def collect(self) -> Iterator[Any]:
        app = self.app  # None until a worker binds it: the families are still described, empty or 0
        info = InfoMetricFamily("fleet_build", "Build of this worker and the model versions in force (a hot reload "
                                "starts a new series).")
        models = getattr(getattr(app, "scorer", None), "models", None)
        rules = getattr(getattr(app, "alerts", None), "rules", None)
        info.add_metric([], self.build | {"risk_model": models.version if models is not None else "",
                                          "alert_rules": rules.version if rules is not None else ""})
        yield info
        yield CounterMetricFamily("fleet_consumer_rebalances", "Consumer group rebalances this worker took part in.",
                                  value=app.rebalancing_count if app is not None else 0)
        yield from self._partitions()
        yield self._alerts_active()
        yield from self._charging()

    def _partitions(self) -> Iterator[Any]:
        assigned = GaugeMetricFamily("fleet_consumer_partitions_assigned", "Source partitions assigned to this "
                                     "worker, by topic.", labels=["topic"])
        lag = GaugeMetricFamily("fleet_consumer_lag_records", "Records between the group's committed offset and the "
                                "end of the partition (exported by the partition's owner only).",
                                labels=["topic", "partition"])
        committed = GaugeMetricFamily("fleet_consumer_committed_offset", "Offset committed by the consumer group.",
                                      labels=["topic", "partition"])
        end = GaugeMetricFamily("fleet_consumer_end_offset", "End offset (high watermark) of the partition.",
                                labels=["topic", "partition"])
        try:
            tps = self.source_partitions()
        except Exception:  # consumer not started yet: nothing assigned
            tps = []
        consumer = self.app.consumer if tps else None
        per_topic: dict[str, int] = {}
        for tp in tps:
            per_topic[tp.topic] = per_topic.get(tp.topic, 0) + 1
            labels = [tp.topic, str(tp.partition)]
            try:
                fetched = consumer.highwater(tp)
            except Exception:  # no fetch response for it yet
                fetched = None
            high = max(x for x in (fetched, self.end_offsets.get(tp), -1) if x is not None)
            done = consumer._committed_offset.get(tp)  # Faust's record of its last commit
            if high >= 0:
                end.add_metric(labels, high)
                lag.add_metric(labels, max(0, high - (done or 0)))
            if done is not None:
                committed.add_metric(labels, done)
        for topic, n in sorted(per_topic.items()):
            assigned.add_metric([topic], n)
        yield from (assigned, lag, committed, end)

    def _alerts_active(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily("fleet_alerts_active", "Open and acknowledged alerts of the vehicles whose "
                                   "partitions this worker owns (sum over workers = the fleet).",
                                   labels=["severity", "component", "region"])
        app = self.app
        feed = getattr(app, "alert_feed", None)
        totals = {(s, c, ""): 0 for s in SEVERITIES for c in COMPONENTS}
        if feed is not None:
            for partition in self._owned():
                for key, n in feed.active.get(partition, {}).items():
                    totals[key] = totals.get(key, 0) + n
        for key, n in sorted(totals.items()):
            family.add_metric(list(key), n)
        return family

    def _owned(self) -> set[int]:
        app = self.app
        topic = app.fleet_settings.topic_telemetry
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}

    def _charging(self) -> Iterator[GaugeMetricFamily]:
        """Newest plan's peak, cap and cap excess per site, from the sites whose partition this worker owns."""
        peak = GaugeMetricFamily("fleet_charging_site_peak_kw", "Peak site load of the newest charging plan.",
                                 labels=["site"])
        cap = GaugeMetricFamily("fleet_charging_site_cap_kw", "Highest site cap over the newest plan's horizon.",
                                labels=["site"])
        excess = GaugeMetricFamily("fleet_charging_site_cap_excess_kw", "Largest planned load above the cap "
                                   "(0 unless the cap cannot be met).", labels=["site"])
        app = self.app
        plans = getattr(app, "charging_plans", None)
        if plans is not None:
            owned, partitions = self._owned(), app.fleet_settings.partitions
            for site in sorted(getattr(app, "charging_sites", {})):
                key = site.encode()
                raw = plans.data.get(key) if partition_of(key, partitions) in owned else None
                if raw is None:
                    continue
                cached = self._plans.get(site)
                if cached is None or cached[0] != raw:  # decode a (large) plan only when it changed
                    plan = json.loads(raw)
                    m = plan["metrics"]
                    cached = (raw, (m["peak_kw"], max(plan["cap_kw"], default=0.0), m["max_cap_excess_kw"]))
                    self._plans[site] = cached
                for family, value in zip((peak, cap, excess), cached[1]):
                    family.add_metric([site], value)
        yield from (peak, cap, excess)


class RiskDistribution(Collector):
    """``fleet_risk_probability{component}``: a histogram of every score produced, filled a batch at a time
    with numpy (one ``Histogram.observe`` per vehicle and component would cost as much as the scoring)."""

    BUCKETS = np.array([0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0])

    def __init__(self) -> None:
        self.counts: dict[str, np.ndarray] = {c: np.zeros(len(self.BUCKETS) + 1, np.int64) for c in COMPONENTS
                                              if c != "vehicle"}
        self.sums: dict[str, float] = dict.fromkeys(self.counts, 0.0)

    def observe(self, components: Sequence[str], probability: np.ndarray) -> None:
        """Add a batch: ``probability[i, k]`` is vehicle i's probability for ``components[k]``."""
        for k, c in enumerate(components):
            column = probability[:, k]
            slots = np.searchsorted(self.BUCKETS, column, side="left")  # value <= bucket bound
            self.counts.setdefault(c, np.zeros(len(self.BUCKETS) + 1, np.int64))
            self.counts[c] += np.bincount(slots, minlength=len(self.BUCKETS) + 1)
            self.sums[c] = self.sums.get(c, 0.0) + float(column.sum())

    def collect(self) -> Iterator[Any]:
        family = HistogramMetricFamily("fleet_risk_probability", "Failure probabilities produced by the risk "
                                       "scorer, by component (each scoring of each vehicle).", labels=["component"])
        for c, counts in sorted(self.counts.items()):
            cumulative = np.cumsum(counts)
            buckets = [(f"{b:g}", int(n)) for b, n in zip(self.BUCKETS, cumulative)] + [("+Inf", int(cumulative[-1]))]
            family.add_metric([c], buckets, self.sums[c])
        yield family


COLLECTOR = WorkerCollector()
RISK_SCORES = RiskDistribution()
metrics.REGISTRY.register(COLLECTOR)
metrics.REGISTRY.register(RISK_SCORES)


def register_worker_metrics(app: Any, settings: Settings) -> None:
    """Bind the collector to ``app``, create the counters' known series, refresh end offsets periodically."""
    COLLECTOR.app = app
    init_counters()

    @app.timer(END_OFFSETS_EVERY_S)
    async def _end_offsets() -> None:
        try:
            await COLLECTOR.refresh_end_offsets()
        except Exception as exc:  # a broker hiccup must not stop the worker; lag falls back to fetch responses
            log.warning("end offsets for the lag metric not refreshed: %s: %s", type(exc).__name__, exc)
