"""Shared by the deploy tests: paths, the worker's metric names, required Debian tools."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"


def tool(name: str) -> str:
    """Path of a command-line tool; skipped when missing outside CI (``make test`` installs it), failed in CI."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing: `make test` installs it (Debian package) when run as root")
        pytest.skip(f"{name} is not installed (`make test` as root installs it)")
    return path


def metric_names() -> set[str]:
    """Every series name a worker exports (``fleet_*`` and the process/Python collectors)."""
    import streams.worker_metrics  # noqa: F401  (registers the scrape-time collectors)
    from streams.metrics import REGISTRY

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",),
                "info": ("_info",), "unknown": ("",)}
    return {family.name + suffix for family in REGISTRY.collect() for suffix in suffixes[family.type]}


def referenced(expr: str) -> set[str]:
    """Worker metric names (``fleet_*``, ``process_*``, ``python_*``; not ``fleet:`` recording rules) in PromQL."""
    return set(re.findall(r"(?<![:\w])((?:fleet|process|python)_[a-z0-9_]+)", expr))


def recorded(expr: str) -> set[str]:
    """Recording-rule names (``level:metric:operations``) used in a PromQL expression."""
    return set(re.findall(r"\b(fleet:[a-z0-9_:]+)", expr))
