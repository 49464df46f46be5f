"""deploy/docker-compose.yml: a complete stack that comes up with one command, checked without a
Docker daemon (``docker compose config`` / ``docker-compose config`` when a client is installed)."""

from __future__ import annotations

import shutil
import subprocess

import yaml

from streams.cli import build_parser
from streams.settings import Settings
from tests.deploy._helpers import DEPLOY, PROMETHEUS, tool

COMPOSE = DEPLOY / "docker-compose.yml"
SPEC = yaml.safe_load(COMPOSE.read_text())
SERVICES = SPEC["services"]
FLEET = {name: s for name, s in SERVICES.items() if s.get("image", "").startswith("fleet-assurance")}
WORKERS = {name: s for name, s in FLEET.items() if s["command"][:2] == ["fleet", "worker"]}


def test_compose_config_validates_with_the_docker_client():
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        cmd = ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"]
    else:  # Debian's docker-compose, which `make test` installs when no compose client is there
        cmd = [tool("docker-compose"), "-f", str(COMPOSE), "config", "--quiet"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_stack_is_complete():
    images = {name: s.get("image", "") for name, s in SERVICES.items()}
    assert images["kafka"].startswith("apache/kafka:")
    assert images["prometheus"].startswith("prom/prometheus:") and images["grafana"].startswith("grafana/grafana")
    commands = {tuple(s["command"][:2]) for s in FLEET.values()}
    assert {("fleet", "topics"), ("fleet", "simulate"), ("fleet", "weather-replay")} <= commands
    assert len(WORKERS) == 2
    parser = build_parser()
    for name, s in FLEET.items():
        parser.parse_args(s["command"][1:])  # SystemExit if the CLI does not know it
        assert s["build"]["dockerfile"] == "deploy/Dockerfile", name
    kafka = SERVICES["kafka"]["environment"]
    listeners = kafka["KAFKA_ADVERTISED_LISTENERS"]
    bootstrap = {s["environment"]["FLEET_KAFKA_BOOTSTRAP"] for s in FLEET.values()}
    assert len(bootstrap) == 1 and f"//{bootstrap.pop()}" in listeners  # containers use the internal listener
    assert "//localhost:9092" in listeners and "9092:9092" in SERVICES["kafka"]["ports"]  # the host too


def test_workers_have_volumes_restart_policies_healthchecks_and_real_settings():
    known = {f"FLEET_{n.upper()}" for n in Settings.model_fields}
    for name, s in FLEET.items():
        env = s["environment"]
        assert set(env) <= known, (name, set(env) - known)
        Settings(**{k.removeprefix("FLEET_").lower(): v for k, v in env.items()})  # valid values
        assert s["restart"] in ("unless-stopped", "on-failure"), name
    host_ports = set()
    for name, s in WORKERS.items():
        settings = Settings(**{k.removeprefix("FLEET_").lower(): v for k, v in s["environment"].items()})
        assert settings.store == "rocksdb://" and settings.web_host == name == s["hostname"]
        assert settings.risk_model_dir is not None and settings.charging_sites is not None
        (volume,) = s["volumes"]
        named, path = volume.split(":")
        assert named in SPEC["volumes"] and path == str(settings.data_dir)
        (mapping,) = s["ports"]
        host, container = mapping.split(":")
        assert int(container) == settings.web_port
        host_ports.add(host)
        assert f"http://{name}:{settings.web_port}/healthz" in " ".join(s["healthcheck"]["test"])
        assert s["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert len(host_ports) == 2
    for name in ("kafka", "prometheus", "grafana"):
        assert SERVICES[name]["healthcheck"]["test"], name
    assert SERVICES["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_prometheus_scrapes_exactly_the_workers_and_grafana_is_provisioned():
    prom = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    (job,) = [j for j in prom["scrape_configs"] if j["job_name"] == "fleet-worker"]
    targets = {t for c in job["static_configs"] for t in c["targets"]}
    assert targets == {f"{name}:{s['environment']['FLEET_WEB_PORT']}" for name, s in WORKERS.items()}
    mounts = dict(v.split(":")[:2] for v in SERVICES["prometheus"]["volumes"])
    assert (DEPLOY / mounts["./prometheus"].replace("/etc/prometheus", "prometheus")).is_dir()
    assert all((PROMETHEUS / f).is_file() for f in prom["rule_files"])
    grafana = dict(v.split(":")[:2] for v in SERVICES["grafana"]["volumes"])
    provisioning = DEPLOY / "grafana" / "provisioning"
    assert grafana["./grafana/provisioning"] == "/etc/grafana/provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["url"] == "http://prometheus:9090" and source["type"] == "prometheus"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "fleet-assurance.yml").read_text())["providers"]
    assert grafana["./grafana/dashboards"] == provider["options"]["path"]
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (DEPLOY / "grafana" / "dashboards" / home.rsplit("/", 1)[1]).is_file()
