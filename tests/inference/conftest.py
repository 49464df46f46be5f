"""Shared fits for the inference tests: small data, small budgets, fixed seeds (each fit once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.inference.artifact import save
from models.inference.engine import TwinInference
from models.inference.generators import coupled_segments, to_dataset

CELL_IN, CELL_OUT = ["current_A", "ambient_C"], ["voltage_V", "temperature_C", "heat_W"]
LOOP_IN, LOOP_OUT = ["heat_W", "ambient_C", "speed_mps"], ["coolant_C"]
GREYBOX = ("greybox", {"integrator": True, "lags": 2, "thermal": True, "residual": 0})
LAGS = ("greybox", {"integrator": False, "lags": 2, "thermal": True, "residual": 0})
# one drive and one AC charge: with 8 small segments the default (most extreme first) would hold out
# both DC charges and leave no fast charging to learn from
VALIDATION = ["drive-2", "ac-5"]


@pytest.fixture(scope="session")
def coupled():
    """Training segments of the coupled cell + coolant-loop generator, and held-out test segments."""
    return coupled_segments(8, seed=3, scale=0.6), coupled_segments(4, seed=11, scale=0.6)


@pytest.fixture(scope="session")
def cell_fit(coupled, tmp_path_factory) -> tuple[TwinInference, Path]:
    """Cell twin (current, ambient -> voltage, temperature, heat) and its artifact."""
    est = TwinInference(budget_s=300.0, candidates=(GREYBOX,), seed=0, max_iterations=300)
    est.fit(to_dataset(coupled[0], CELL_IN, CELL_OUT), validation=VALIDATION)
    return est, save(est, tmp_path_factory.mktemp("cell"))


@pytest.fixture(scope="session")
def loop_fit(coupled, tmp_path_factory) -> tuple[TwinInference, Path]:
    """Coolant-loop twin (heat, ambient, speed -> coolant temperature) and its artifact."""
    est = TwinInference(budget_s=300.0, candidates=(LAGS,), seed=0, max_iterations=150)
    est.fit(to_dataset(coupled[0], LOOP_IN, LOOP_OUT), validation=VALIDATION)
    return est, save(est, tmp_path_factory.mktemp("loop"), write_report=False)
