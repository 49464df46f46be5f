"""A small synthetic history (FleetSimulator telemetry, injected failures for stressed vehicles), trained once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from models.risk.synthetic import SyntheticTruth, write_synthetic_history

#: fast but real training settings for the tests
FAST_PARAMS = {"learning_rate": 0.1, "max_iter": 80, "n_iter_no_change": 10, "min_samples_leaf": 40}


@dataclass
class Trained:
    data: Path
    artifact: Path
    cache: Path
    truth: SyntheticTruth


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """OpenMP on a busy 2-core box spins; one thread is faster and deterministic."""
    with threadpool_limits(1):
        yield


def synthetic_history(d: Path) -> SyntheticTruth:
    """The test fleet's history written to ``d`` (also used by ``tests/risk/history_golden.py``)."""
    return write_synthetic_history(d, vehicles=56, days=90, seed=3, dt_s=7200.0, stressed_rate_per_day=1 / 20)


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SyntheticTruth]:
    """56 vehicles x 90 days at dt = 7200 s; ~30 % stressed, their inverters/batteries failing every ~20 days."""
    d = tmp_path_factory.mktemp("risk-data")
    return d, synthetic_history(d)


@pytest.fixture(scope="session")
def trained(synthetic: tuple[Path, SyntheticTruth], tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """The CLI entry point of models.risk.train on the synthetic dataset."""
    from models.risk import train

    data, truth = synthetic
    art = tmp_path_factory.mktemp("risk-artifact") / "model"
    cache = tmp_path_factory.mktemp("risk-cache")
    with threadpool_limits(1):
        train.main(["--telemetry", str(data / "telemetry"), "--maintenance", str(data / "maintenance.csv"),
                    "--fleet", str(data / "fleet.csv"), "--weather", str(data / "weather.jsonl.gz"),
                    "--out", str(art), "--horizon-days", "14", "--eval-fraction", "0.4", "--workers", "2",
                    "--cache-dir", str(cache), "--params", json.dumps(FAST_PARAMS), "--budget", "60"])
    return Trained(data, art, cache, truth)
