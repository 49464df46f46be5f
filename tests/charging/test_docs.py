"""The module docstring examples run (they are the API's usage documentation)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import models.charging


def test_all_charging_doctests_pass():
    names = ["models.charging"] + [f"models.charging.{m.name}" for m in pkgutil.iter_modules(models.charging.__path__)]
    attempted = 0
    for name in names:
        result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, name
        attempted += result.attempted
    assert attempted >= 20


def test_modules_are_small():
    from pathlib import Path

    for path in Path(models.charging.__file__).parent.glob("*.py"):
        assert len(path.read_text().splitlines()) < 400, path.name
