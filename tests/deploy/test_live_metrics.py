"""Two real workers on the real broker, scraped directly and by a real Prometheus running the
shipped rules: fleet-wide figures add up, lag drains to 0, every dashboard query and alert
expression parses and the ones that should have data return it."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.broker import EmbeddedBroker, free_port
from tests.conftest import Stack, http_get, new_stack, wait_until
from tests.deploy._helpers import DEPLOY, PROMETHEUS, recorded, referenced, tool
from tests.deploy.test_worker_metrics import samples
from tests.integration.test_pipeline import make_messages, produce

pytestmark = pytest.mark.integration


class Fleet:
    """Two workers that have processed ``sent`` telemetry records (``unique`` of them new)."""

    def __init__(self, stack: Stack, ports: list[int], sent: list[dict[str, Any]], unique: list[dict[str, Any]]):
        self.stack, self.ports, self.sent, self.unique = stack, ports, sent, unique

    def scrape(self) -> dict[int, str]:
        return {port: http_get(self.stack.url(port, "/metrics"))[1] for port in self.ports}


@pytest.fixture(scope="module")
def fleet(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    stack = new_stack(broker, tmp_path_factory.mktemp("live-metrics"))
    stack.settings = stack.settings.model_copy(update={"alert_sweep_s": 2.0})  # fleet_vehicles is set by the sweep
    try:
        ports = [stack.start_worker(), stack.start_worker(wait_ready=False)]
        unique, sent = make_messages(vehicles=40, per_vehicle=8, seed=11)
        produce(stack, sent)
        yield Fleet(stack, ports, sent, unique)
    finally:
        stack.stop()


def by_topic(text: str, name: str, topic: str) -> list[float]:
    return [v for lbl, v in samples(text, name) if lbl.get("topic") == topic]


def open_alerts_by_severity(fleet: Fleet) -> dict[str, int]:
    """The true fleet: every open or acknowledged alert in the alerts topic, as any worker's API reads it."""
    status, body = http_get(fleet.stack.url(fleet.ports[0], "/alerts?status=open,acknowledged&limit=1000"))
    assert status == 200, body
    truth: dict[str, int] = {}
    for alert in body["alerts"]:
        truth[alert["severity"]] = truth.get(alert["severity"], 0) + 1
    return truth


def test_two_workers_sum_to_the_fleet_and_lag_drains(fleet: Fleet):
    topic = fleet.stack.settings.topic_telemetry

    def settled() -> dict[int, str] | None:
        texts = fleet.scrape()
        parts = [sum(by_topic(t, "fleet_consumer_partitions_assigned", topic)) for t in texts.values()]
        lag = [v for t in texts.values() for v in by_topic(t, "fleet_consumer_lag_records", topic)]
        committed = sum(v for t in texts.values() for v in by_topic(t, "fleet_consumer_committed_offset", topic))
        ok = parts == [2, 2] and len(lag) == 4 and not any(lag) and committed == len(fleet.sent)
        return texts if ok else None

    texts = wait_until(settled, 120, interval=1.0, what="two workers owning 2 partitions each with lag 0")
    truth = open_alerts_by_severity(fleet)
    assert sum(truth.values()) >= 5, truth  # the messages carry DTCs that open alerts

    def by_severity(text: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for lbl, v in samples(text, "fleet_alerts_active"):
            out[lbl["severity"]] = out.get(lbl["severity"], 0) + v
        return out

    def adds_up() -> bool:
        per = [by_severity(t) for t in fleet.scrape().values()]
        total = {s: per[0].get(s, 0) + per[1].get(s, 0) for s in set(per[0]) | set(per[1])}
        return ({s: n for s, n in total.items() if n} == truth
                and all(0 < sum(p.values()) < sum(truth.values()) for p in per))  # each exports only its share

    wait_until(adds_up, 30, what=f"fleet_alerts_active summed over the workers == {truth}")
    for text in texts.values():
        ends = sum(by_topic(text, "fleet_consumer_end_offset", topic))
        assert 0 < ends < len(fleet.sent)  # each worker reports only its own partitions
        assert samples(text, "fleet_consumer_rebalances_total")[0][1] >= 1
        (build,) = samples(text, "fleet_build_info")
        assert re.fullmatch(r"\d+\.\d+\.\d+", build[0]["version"])
        assert build[0]["alert_rules"] and build[0]["risk_model"] == ""  # shipped rules; no model in this stack
        assert samples(text, "process_resident_memory_bytes")[0][1] > 10e6


class Prometheus:
    """A real Prometheus server (Debian's package) scraping the workers every second with the shipped rules."""

    def __init__(self, tmp: Path, targets: list[str]) -> None:
        self.port = free_port()
        config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
        config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        config["rule_files"] = [str(PROMETHEUS / f) for f in config["rule_files"]]
        job = next(j for j in config["scrape_configs"] if j["job_name"] == "fleet-worker")
        job["static_configs"] = [{"targets": targets}]
        config["scrape_configs"] = [job]
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = tmp / "prometheus.log"
        self.proc = subprocess.Popen(
            [tool("prometheus"), f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"], stdout=open(self.log, "wb"), stderr=subprocess.STDOUT)

    def query(self, expr: str) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        status, body = http_get(url)
        assert isinstance(body, dict), (status, body)
        return body

    def api(self, path: str) -> Any:
        status, body = http_get(f"http://127.0.0.1:{self.port}/api/v1/{path}")
        assert status == 200, body
        return body["data"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def dashboard_queries() -> list[tuple[str, str]]:
    """(dashboard/panel, expr) of every panel target, with template variables matching everything."""
    out = []
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                out.append((f"{path.stem}/{panel['title']}", re.sub(r"\$\w+", ".*", target["expr"])))
    return out


def test_a_real_prometheus_scrapes_the_workers_and_every_query_works(fleet: Fleet, tmp_path: Path):
    tool("prometheus")
    prom = Prometheus(tmp_path, [f"127.0.0.1:{p}" for p in fleet.ports])
    try:
        def scraped() -> bool:
            body = prom.query('sum(fleet_records_in_total{outcome="applied"})')
            result = body.get("data", {}).get("result", [])
            up = prom.query('sum(up{job="fleet-worker"})').get("data", {}).get("result", [])
            return bool(result) and float(result[0]["value"][1]) == len(fleet.unique) and \
                bool(up) and float(up[0]["value"][1]) == 2
        wait_until(scraped, 60, interval=0.5, what=f"Prometheus sees both workers and {len(fleet.unique)} applied")

        def alerts_add_up() -> bool:
            body = prom.query("sum by (severity) (fleet_alerts_active) > 0")
            got = {r["metric"]["severity"]: int(float(r["value"][1])) for r in body["data"]["result"]}
            return got == open_alerts_by_severity(fleet) and bool(got)
        wait_until(alerts_add_up, 30, interval=0.5, what="PromQL sum of fleet_alerts_active == the API's open alerts")
        summary = http_get(fleet.stack.url(fleet.ports[0], "/fleet/summary"))[1]
        assert summary["workers"] == 2 and summary["vehicles"] == summary["stale"] == 40  # January events: all stale

        def stale_adds_up() -> bool:  # each worker counts its own partitions' vehicles at its sweep
            per = prom.query('fleet_vehicles{state="stale"}')["data"]["result"]
            values = sorted(float(r["value"][1]) for r in per)
            return len(values) == 2 and sum(values) == summary["stale"] and 0 < values[0] <= values[1] < 40
        wait_until(stale_adds_up, 60, interval=1.0, what="fleet_vehicles{state=stale} summed over workers == 40")
        lag = prom.query(f'fleet_consumer_lag_records{{topic="{fleet.stack.settings.topic_telemetry}"}}')
        assert sorted(r["metric"]["partition"] for r in lag["data"]["result"]) == ["0", "1", "2", "3"]

        def rules_evaluated() -> list[dict[str, Any]] | None:
            rules = [r for g in prom.api("rules")["groups"] for r in g["rules"]]
            return rules if rules and all(r["health"] == "ok" and r.get("lastEvaluation", "").startswith("20")
                                          for r in rules) else None
        time.sleep(2)  # a second evaluation, so rate() has two samples
        rules = wait_until(rules_evaluated, 30, what="every shipped rule evaluated without error")
        shipped = [r for g in yaml.safe_load((PROMETHEUS / "rules.yml").read_text())["groups"] for r in g["rules"]]
        assert len(rules) == len(shipped)
        firing = {a["labels"]["alertname"] for a in prom.api("alerts")["alerts"] if a["state"] == "firing"}
        # a healthy pipeline pages nobody; the simulated DTCs may be a real critical-alert surge if Prometheus
        # scraped before the workers had processed them all
        surge = open_alerts_by_severity(fleet).get("critical", 0) > 10
        assert firing <= ({"FleetCriticalAlertSurge"} if surge else set()), firing
        present = {name for name in {n for _, e in dashboard_queries() for n in referenced(e) | recorded(e)}
                   if prom.query(f"count({name})")["data"]["result"]}
        empty = []
        for where, expr in dashboard_queries():
            body = prom.query(expr)
            assert body["status"] == "success", (where, expr, body)
            should_have_data = "offset" not in expr and (referenced(expr) | recorded(expr)) <= present
            if should_have_data and not body["data"]["result"]:
                empty.append((where, expr))
        assert not empty, empty
        assert {"fleet_records_in_total", "fleet_consumer_lag_records", "fleet_alerts_active",
                "fleet:records_in:rate1m", "fleet:consumer_lag_records:sum_by_topic"} <= present
    finally:
        prom.stop()
