"""deploy/prometheus: the config passes promtool as shipped, every alert has unit tests, every
expression names metrics a worker really exports."""

from __future__ import annotations

import subprocess

import yaml

from tests.deploy._helpers import PROMETHEUS, metric_names, recorded, referenced, tool

RULES = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())
TESTS = yaml.safe_load((PROMETHEUS / "rules_test.yml").read_text())
ALERTS = [r for g in RULES["groups"] for r in g["rules"] if "alert" in r]
RECORDS = {r["record"]: r["expr"] for g in RULES["groups"] for r in g["rules"] if "record" in r}
REQUIRED = {"FleetConsumerLagGrowing", "FleetDeadLetters", "FleetWorkerDown", "FleetRebalanceStorm",
            "FleetCriticalAlertSurge", "FleetStaleVehicleSurge", "FleetRiskScoringStalled", "FleetSSEClientSaturation"}


def test_promtool_check_config_passes_outside_the_container():
    out = subprocess.run([tool("promtool"), "check", "config", str(PROMETHEUS / "prometheus.yml")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout and f"{len(ALERTS) + len(RECORDS)} rules found" in out.stdout


def test_promtool_rule_unit_tests_pass():
    out = subprocess.run([tool("promtool"), "test", "rules", str(PROMETHEUS / "rules_test.yml")],
                         capture_output=True, text=True, cwd=PROMETHEUS)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    names = {r["alert"] for r in ALERTS}
    assert REQUIRED <= names
    firing, quiet = set(), set()
    for case in TESTS["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    assert names <= firing, f"alerts never tested firing: {sorted(names - firing)}"
    assert names <= quiet, f"alerts never tested quiet: {sorted(names - quiet)}"


def test_rules_use_real_metrics_and_every_alert_is_documented():
    known = metric_names()
    for expr in [r["expr"] for r in ALERTS] + list(RECORDS.values()):
        assert referenced(expr) <= known, (expr, referenced(expr) - known)
        assert recorded(expr) <= set(RECORDS), expr
    for rule in ALERTS:
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def test_make_prometheusrule_wraps_exactly_the_shipped_rules():
    out = subprocess.run(["make", "-s", "prometheusrule"], capture_output=True, text=True, cwd=PROMETHEUS.parents[1])
    assert out.returncode == 0, out.stderr
    rule = yaml.safe_load(out.stdout)
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert rule["spec"] == RULES


def test_readme_reference_tables_name_every_alert_and_metric():
    readme = (PROMETHEUS.parents[1] / "README.md").read_text()
    deploy = readme[readme.index("## Deploy"):]
    for rule in ALERTS:
        assert f"`{rule['alert']}`" in deploy, rule["alert"]
    families = {n.removesuffix("_total").removesuffix("_info").removesuffix("_bucket") for n in metric_names()
                if n.startswith("fleet_") and not n.endswith(("_sum", "_count"))}
    missing = sorted(f for f in families if f"`{f}" not in deploy)
    assert not missing, f"README Deploy tables lack {missing}"
