"""deploy/grafana/dashboards: two dashboards whose every query names real metrics and recording rules."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.deploy._helpers import DEPLOY, PROMETHEUS, metric_names, recorded, referenced

DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
RECORDS = {r["record"] for g in yaml.safe_load((PROMETHEUS / "rules.yml").read_text())["groups"]
           for r in g["rules"] if "record" in r}


def queries(dash: dict) -> list[str]:
    out = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    out += [v["query"]["query"] for v in dash["templating"]["list"] if v["type"] == "query"]
    return out


def test_there_is_a_pipeline_and_a_fleet_dashboard():
    assert [d.name for d in DASHBOARDS] == ["fleet-health.json", "fleet-pipeline.json"]
    titles = {json.loads(d.read_text())["uid"]: [p["title"] for p in json.loads(d.read_text())["panels"]]
              for d in DASHBOARDS}
    pipeline = " ".join(titles["fleet-pipeline"]).lower()
    for topic in ("records in", "latency", "lag per partition", "dead letters", "rebalances", "per worker"):
        assert topic in pipeline, topic
    fleet = " ".join(titles["fleet-health"]).lower()
    for topic in ("risk distribution", "by severity", "by component", "by region", "drift", "stale",
                  "peak vs site cap"):
        assert topic in fleet, topic


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_query_uses_real_metrics_and_the_panels_do_not_overlap(path):
    dash = json.loads(path.read_text())
    known = metric_names()
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) >= 10
    for panel in dash["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
    for expr in queries(dash):
        refs, recs = referenced(expr), recorded(expr)
        assert refs or recs or "up{" in expr, expr
        assert refs <= known, (expr, refs - known)
        assert recs <= RECORDS, (expr, recs - RECORDS)
    cells: set[tuple[int, int]] = set()
    for p in dash["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, p["title"]
                cells.add((x, y))
