"""The README stays true to the code (deploy files: tests/deploy)."""

from __future__ import annotations

import re
from pathlib import Path

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
