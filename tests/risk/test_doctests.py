"""The runnable examples in the module docstrings stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["features", "feature_names", "labels", "split", "calibration", "attribution", "metrics", "model", "exposure"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(f"models.risk.{name}")
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_readme_lists_every_feature():
    from pathlib import Path

    from models.risk.feature_names import FEATURE_NAMES, markdown_table

    readme = (Path(__file__).resolve().parents[2] / "models" / "risk" / "README.md").read_text()
    assert markdown_table() in readme, "regenerate the table: python -m models.risk.feature_names"
    assert all(f"`{n}`" in readme for n in FEATURE_NAMES)


def test_twin_risk_state_example():
    import twins.risk

    result = doctest.testmod(twins.risk, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
