"""deploy/k8s: every overlay renders with ``kubectl kustomize``, every object validates against the
Kubernetes schemas offline (kubernetes-validate, strict: unknown fields fail), and the manifests
agree with the code: probes on real endpoints, ports = FLEET_WEB_PORT, every FLEET_* a real setting
with a valid value, commands that the CLI accepts."""

from __future__ import annotations

import base64
import copy
import functools
import os
import re
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from streams.cli import build_parser
from streams.settings import Settings
from tests.deploy._helpers import DEPLOY, PROMETHEUS, tool

K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.32.0"  # the kubectl on these machines
CUSTOM_KINDS = {"ServiceMonitor", "ScaledObject"}  # CRDs: checked structurally below
#: created by the operator before `kubectl apply` (README "Deploy"), so absent from the render
EXTERNAL = {("Secret", "fleet-kafka-credentials"), ("ConfigMap", "fleet-alert-rules")}
SECRET_KEYS = {"FLEET_KAFKA_SASL_USERNAME": "fleet", "FLEET_KAFKA_SASL_PASSWORD": "example"}
SECRET_VALUES = {"hs256-secret": "an-example-secret-of-at-least-32-characters"}  # Secrets made by hand
OVERLAYS = ["dev", "production", "production+keda"]


@functools.cache
def render(name: str) -> tuple[dict[str, Any], ...]:
    """The objects of an overlay; ``a+keda`` is overlay ``a`` with the KEDA component added."""
    kubectl = tool("kubectl")
    overlay, _, component = name.partition("+")
    with tempfile.TemporaryDirectory() as tmp:
        target = K8S / "overlays" / overlay
        if component:  # a throwaway kustomization (kustomize wants relative paths)
            rel = os.path.relpath(K8S, tmp)
            (Path(tmp) / "kustomization.yaml").write_text(yaml.safe_dump({
                "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                "resources": [f"{rel}/overlays/{overlay}"], "components": [f"{rel}/components/{component}"]}))
            target = Path(tmp)
        out = subprocess.run([kubectl, "kustomize", str(target)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d)


def one(objs: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"].startswith(name)]
    assert len(found) == 1, (kind, name, [o["metadata"]["name"] for o in found])
    return found[0]


def pod_specs(objs: tuple[dict[str, Any], ...]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["spec"])
            for o in objs if o["kind"] in ("StatefulSet", "Deployment", "Job")]


def fleet_env(objs: tuple[dict[str, Any], ...], container: dict[str, Any]) -> dict[str, str]:
    """The FLEET_* environment a container gets: ConfigMaps via envFrom, then its own env (Secrets: examples)."""
    env: dict[str, str] = {}
    for src in container.get("envFrom", []):
        if "configMapRef" in src:
            env |= one(objs, "ConfigMap", src["configMapRef"]["name"])["data"]
        elif src["secretRef"]["name"] == "fleet-kafka-credentials":
            env |= SECRET_KEYS
    for var in container.get("env", []):
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        if ref:  # a generated Secret's name carries kustomize's hash suffix
            secret = next((o for o in objs if o["kind"] == "Secret" and o["metadata"]["name"] == ref["name"]), None)
            env[var["name"]] = (base64.b64decode(secret["data"][ref["key"]]).decode() if secret is not None
                                else SECRET_VALUES[ref["key"]])
        else:
            env[var["name"]] = var.get("value", "")
    return {k: v for k, v in env.items() if k.startswith("FLEET_")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_every_object_matches_the_kubernetes_schema(overlay):
    objs = render(overlay)
    kinds = {o["kind"] for o in objs}
    assert {"StatefulSet", "Service", "PodDisruptionBudget", "Job", "ConfigMap", "Namespace"} <= kinds
    for obj in objs:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        assert obj["metadata"]["namespace" if obj["kind"] != "Namespace" else "name"] == \
            ("fleet-dev" if overlay == "dev" else "fleet-assurance")


def test_the_schema_check_catches_a_typo():
    sts = copy.deepcopy(one(render("dev"), "StatefulSet", "fleet-worker"))
    sts["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {"httpGet": {"path": "/readyz"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(sts, KUBERNETES_VERSION, strict=True)


@functools.cache
def worker_routes() -> set[str]:
    from streams.app import create_app

    return set(create_app(Settings(kafka_bootstrap="localhost:9", auth_hs256_secret="s" * 32)).web.views)


@pytest.mark.parametrize("overlay", OVERLAYS[:2])
def test_workers_probes_ports_storage_and_routing_agree_with_the_code(overlay):
    objs = render(overlay)
    sts = one(objs, "StatefulSet", "fleet-worker")
    spec = sts["spec"]["template"]["spec"]
    (worker,) = spec["containers"]
    env = fleet_env(objs, worker)
    settings = Settings(**{k.removeprefix("FLEET_").lower(): v for k, v in env.items()
                           if k != "FLEET_WEB_HOST"})
    assert env["FLEET_WEB_BIND"] == "0.0.0.0" and settings.auth_hs256_secret is not None
    ports = {p["name"]: p["containerPort"] for p in worker["ports"]}
    assert ports == {"http": settings.web_port}
    routes = worker_routes()
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"), ("startupProbe", "/healthz")):
        get = worker[probe]["httpGet"]
        assert get["path"] == path and path in routes and get["port"] == "http", probe
    # RocksDB state on the pod's own volume
    assert settings.store == "rocksdb://"
    mounts = {m["name"]: m["mountPath"] for m in worker["volumeMounts"]}
    assert mounts["data"] == str(settings.data_dir)
    assert [t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]] == ["data"]
    # the advertised URL is the pod's DNS name under the headless Service, published before readiness
    headless = one(objs, "Service", sts["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"]
    web_host = next(v["value"] for v in worker["env"] if v["name"] == "FLEET_WEB_HOST")
    assert web_host == f"$(POD_NAME).{headless['metadata']['name']}.$(POD_NAMESPACE).svc"
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for svc in (o for o in objs if o["kind"] == "Service" and o["metadata"]["name"].startswith("fleet-")):
        assert svc["spec"]["selector"].items() <= labels.items(), svc["metadata"]["name"]
        assert all(p["targetPort"] in ports for p in svc["spec"]["ports"]), svc["metadata"]["name"]
    pdb = one(objs, "PodDisruptionBudget", "fleet-worker")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert 1 <= sts["spec"]["replicas"] <= settings.partitions
    # scraping: annotations without the Operator, a ServiceMonitor on the headless Service with it
    annotations = sts["spec"]["template"]["metadata"].get("annotations", {})
    monitors = [o for o in objs if o["kind"] == "ServiceMonitor"]
    if overlay == "dev":
        assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": str(settings.web_port),
                               "prometheus.io/path": "/metrics"} and not monitors
    else:
        (monitor,) = monitors
        assert not annotations
        assert monitor["spec"]["selector"]["matchLabels"].items() <= headless["metadata"]["labels"].items()
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] in {p["name"] for p in headless["spec"]["ports"]} and endpoint["path"] in routes
        assert headless["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "fleet-worker"  # job= in rules.yml


@pytest.mark.parametrize("overlay", OVERLAYS[:2])
def test_every_fleet_variable_is_a_real_setting_with_a_valid_value(overlay, monkeypatch):
    from streams.settings import load_settings

    objs = render(overlay)
    known = {f"FLEET_{n.upper()}" for n in Settings.model_fields}
    parser = build_parser()
    for where, spec in pod_specs(objs):
        for container in spec["containers"]:
            if container["image"].startswith("apache/kafka:"):  # the dev overlay's broker
                continue
            env = fleet_env(objs, container)
            assert env and set(env) <= known, (where, set(env) - known)
            with monkeypatch.context() as m:
                for k, v in env.items():
                    m.setenv(k, re.sub(r"\$\(\w+\)", "x", v))
                m.chdir(Path(__file__).parent)  # no stray .env
                load_settings()  # raises naming the variable and value if one is wrong
            args = container["command"]
            assert args[0] == "fleet", where
            parser.parse_args(args[1:])  # SystemExit if the CLI does not know it
            assert container["image"].split("/")[-1].startswith("fleet-assurance:"), where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_references_resolve_inside_the_render(overlay):
    objs = render(overlay)
    present = {(o["kind"], o["metadata"]["name"]) for o in objs} | EXTERNAL
    for where, spec in pod_specs(objs):
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for v in volumes.values():
            if "configMap" in v:
                assert ("ConfigMap", v["configMap"]["name"]) in present, (where, v)
            if "persistentVolumeClaim" in v:
                assert ("PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"]) in present, (where, v)
        claims = {t["metadata"]["name"] for o in objs if o["kind"] == "StatefulSet"
                  for t in o["spec"].get("volumeClaimTemplates", [])}
        for container in spec["containers"]:
            for m in container.get("volumeMounts", []):
                assert m["name"] in volumes or m["name"] in claims, (where, m)
            for src in container.get("envFrom", []):
                kind, ref = ("ConfigMap", src["configMapRef"]) if "configMapRef" in src else ("Secret", src["secretRef"])
                assert (kind, ref["name"]) in present, (where, ref)
        if "serviceAccountName" in spec:
            assert ("ServiceAccount", spec["serviceAccountName"]) in present


def test_production_is_the_documented_24_partition_3_broker_cluster():
    objs = render("production")
    env = fleet_env(objs, one(objs, "StatefulSet", "fleet-worker")["spec"]["template"]["spec"]["containers"][0])
    assert env["FLEET_PARTITIONS"] == "24" and env["FLEET_REPLICATION_FACTOR"] == "3"
    assert len(env["FLEET_KAFKA_BOOTSTRAP"].split(",")) == 3
    assert env["FLEET_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["FLEET_ALERT_RULES"].startswith("/etc/fleet/alert-rules/")
    job = one(objs, "Job", "fleet-topics")
    assert shlex.join(job["spec"]["template"]["spec"]["containers"][0]["command"]) == "fleet topics"


def test_keda_scales_the_workers_on_a_recorded_lag_series_up_to_the_partition_count():
    objs = render("production+keda")
    scaled = one(objs, "ScaledObject", "fleet-worker")
    target = scaled["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("StatefulSet", "fleet-worker")
    env = fleet_env(objs, one(objs, "StatefulSet", "fleet-worker")["spec"]["template"]["spec"]["containers"][0])
    assert scaled["spec"]["minReplicaCount"] >= 1 and scaled["spec"]["maxReplicaCount"] <= int(env["FLEET_PARTITIONS"])
    (trigger,) = scaled["spec"]["triggers"]
    records = {r["record"] for g in yaml.safe_load((PROMETHEUS / "rules.yml").read_text())["groups"]
               for r in g["rules"] if "record" in r}
    used = set(re.findall(r"fleet:[a-z0-9_:]+", trigger["metadata"]["query"]))
    assert trigger["type"] == "prometheus" and used and used <= records
    assert float(trigger["metadata"]["threshold"]) > 0
