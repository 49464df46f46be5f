"""The worker's /metrics: counters at 0 before their first event, fleet-wide figures that add up
over two workers, consumer lag per partition that drains to 0."""

from __future__ import annotations

import re

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams import metrics
from streams.settings import Settings
from streams.worker_metrics import RiskDistribution, init_counters, known_label_sets
from tests.conftest import Stack, http_get, wait_until
from tests.integration.test_pipeline import make_messages, produce


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample called ``name`` in an exposition text."""
    return [(s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]


def test_every_labelled_counter_exists_at_zero_before_its_first_event():
    settings = Settings(topic_telemetry_dlq="t.dlq", topic_weather_dlq="w.dlq")
    init_counters(settings)
    text = metrics.render().decode()
    counters = [f for f in text_string_to_metric_families(text) if f.type == "counter" and f.name.startswith("fleet_")]
    assert len(counters) >= 10
    for family in counters:  # a counter added later without known label values fails here
        assert [s for s in family.samples if s.name.endswith("_total")], f"{family.name} has no series at start-up"
    outcomes = {lbl["outcome"] for lbl, _ in samples(text, "fleet_records_in_total")}
    assert outcomes == {"applied", "duplicate", "too_late", "invalid"}
    opened = [lbl for lbl, _ in samples(text, "fleet_alert_records_total")]
    assert {"event": "opened", "severity": "critical", "rule_kind": "risk"} in opened
    assert len(opened) == 4 * 4 * 4
    dlq = {tuple(sorted(lbl.items())) for lbl, _ in samples(text, "fleet_dlq_records_total")}
    want = {tuple(sorted((k, v) for k, v in ls.items() if k in metrics.DLQ_OUT._labelnames))
            for ls in known_label_sets(settings)[metrics.DLQ_OUT]}
    assert want <= dlq


def test_risk_distribution_buckets_are_cumulative_and_count_every_score():
    dist = RiskDistribution()
    dist.observe(["inverter", "lv_battery"], np.array([[0.01, 0.5], [0.3, 0.99], [0.0, 0.02], [0.7, 0.02]]))
    (family,) = list(dist.collect())
    inv = {s.labels["le"]: s.value for s in family.samples
           if s.name.endswith("_bucket") and s.labels["component"] == "inverter"}
    assert (inv["0.01"], inv["0.3"], inv["0.6"], inv["0.8"], inv["+Inf"]) == (2, 3, 3, 4, 4)
    lv_sum = [s.value for s in family.samples if s.name.endswith("_sum") and s.labels["component"] == "lv_battery"]
    assert lv_sum == [pytest.approx(1.53)]


@pytest.mark.integration
def test_two_workers_sum_to_the_fleet_and_lag_drains(stack: Stack):
    a = stack.start_worker()
    b = stack.start_worker(wait_ready=False)
    unique, sent = make_messages(vehicles=40, per_vehicle=8, seed=11)
    produce(stack, sent)
    topic = stack.settings.topic_telemetry

    def scrape() -> dict[int, str]:
        return {port: http_get(stack.url(port, "/metrics"))[1] for port in (a, b)}

    def settled() -> dict[int, str] | None:
        texts = scrape()
        parts = [sum(v for lbl, v in samples(t, "fleet_consumer_partitions_assigned") if lbl["topic"] == topic)
                 for t in texts.values()]
        lag = [v for t in texts.values() for lbl, v in samples(t, "fleet_consumer_lag_records")
               if lbl["topic"] == topic]
        committed = sum(v for t in texts.values() for lbl, v in samples(t, "fleet_consumer_committed_offset")
                        if lbl["topic"] == topic)
        if parts == [2, 2] and len(lag) == 4 and not any(lag) and committed == len(sent):
            return texts
        return None

    texts = wait_until(settled, 120, interval=1.0, what="two workers owning 2 partitions each with lag 0")
    # the true fleet: every open or acknowledged alert in the alerts topic, as any worker's API reads it
    status, body = http_get(stack.url(a, "/alerts?status=open,acknowledged&limit=1000"))
    assert status == 200
    truth: dict[str, int] = {}
    for alert in body["alerts"]:
        truth[alert["severity"]] = truth.get(alert["severity"], 0) + 1
    assert sum(truth.values()) >= 5, body["total"]  # the messages carry DTCs that open alerts

    def by_severity(text: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for lbl, v in samples(text, "fleet_alerts_active"):
            out[lbl["severity"]] = out.get(lbl["severity"], 0) + v
        return out

    def adds_up() -> bool:
        per = [by_severity(t) for t in scrape().values()]
        total = {s: per[0].get(s, 0) + per[1].get(s, 0) for s in set(per[0]) | set(per[1])}
        return ({s: n for s, n in total.items() if n} == truth
                and all(0 < sum(p.values()) < sum(truth.values()) for p in per))

    wait_until(adds_up, 30, what=f"fleet_alerts_active summed over the workers == {truth}")
    for text in texts.values():
        ends = sum(v for lbl, v in samples(text, "fleet_consumer_end_offset") if lbl["topic"] == topic)
        assert 0 < ends < len(sent)  # each worker reports only its own partitions
        assert samples(text, "fleet_consumer_rebalances_total")[0][1] >= 1
        (build,) = samples(text, "fleet_build_info")
        assert re.fullmatch(r"\d+\.\d+\.\d+", build[0]["version"])
        assert samples(text, "process_resident_memory_bytes")[0][1] > 10e6
