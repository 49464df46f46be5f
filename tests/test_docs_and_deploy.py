"""The README and deploy files stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_documents_every_setting():
    documented = set(re.findall(r"FLEET_[A-Z0-9_]+", README))
    missing = []
    for name in Settings.model_fields:
        env = f"FLEET_{name.upper()}"
        # grouped rows such as FLEET_KAFKA_SASL_MECHANISM / _USERNAME / _PASSWORD count
        if env not in documented and f"`_{name.upper().split('_')[-1]}`" not in README:
            missing.append(env)
    assert not missing, f"README configuration table lacks {missing}"


def test_readme_test_command_is_what_ci_runs():
    assert "make test" in README
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")


def test_compose_uses_only_real_settings():
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    known = {f"FLEET_{n.upper()}" for n in Settings.model_fields}
    used = set()
    for service in compose["services"].values():
        used |= {k for k in (service.get("environment") or {}) if k.startswith("FLEET_")}
    assert used and used <= known, used - known
    prom = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    targets = prom["scrape_configs"][0]["static_configs"][0]["targets"]
    ports = {s["environment"]["FLEET_WEB_PORT"] for s in compose["services"].values()
             if "FLEET_WEB_PORT" in (s.get("environment") or {})}
    assert {t.split(":")[1] for t in targets} == ports


def _metric_names() -> set[str]:
    import streams.worker_metrics  # noqa: F401  (registers the scrape-time collectors)
    from streams.metrics import REGISTRY

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",), "info": ("_info",)}
    return {family.name + suffix for family in REGISTRY.collect() for suffix in suffixes[family.type]}


def _referenced(expr: str) -> set[str]:
    return set(re.findall(r"\b(fleet_[a-z0-9_]+)", expr))


def test_grafana_dashboard_panels_query_real_metrics():
    import json

    dash = json.loads((ROOT / "deploy" / "grafana" / "fleet-assurance.json").read_text())
    known = _metric_names()
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) >= 10
    for panel in dash["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            refs = _referenced(target["expr"])
            assert refs and refs <= known, (panel["title"], refs - known)
    # no overlapping panels on the grid
    cells = set()
    for p in dash["panels"]:
        g = p["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, p["title"]
                cells.add((x, y))


def test_prometheus_rules_use_real_metrics():
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus-rules.yml").read_text())
    known = _metric_names()
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    assert len(exprs) >= 4
    for expr in exprs:
        assert _referenced(expr) <= known, expr
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    if promtool:  # Debian's prometheus package; CI installs it when it can
        out = subprocess.run([promtool, "check", "rules", str(ROOT / "deploy" / "prometheus-rules.yml")],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
