"""Locate the data files shipped in ``models/data`` (no network, no site-packages)."""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable


def data_file(*parts: str) -> Traversable:
    """Return a traversable handle on ``models/data/<parts...>``."""
    node = resources.files("models.data")
    for part in parts:
        node = node.joinpath(part)
    return node


def read_text(*parts: str) -> str:
    """Read a shipped data file as UTF-8 text."""
    return data_file(*parts).read_text(encoding="utf-8")
