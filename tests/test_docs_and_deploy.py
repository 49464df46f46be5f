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
