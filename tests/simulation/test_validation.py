"""Bad arguments fail fast with a ValueError naming the argument and the offending value."""

from __future__ import annotations

import math

import pytest

from models.simulation import FleetSimulator


@pytest.mark.parametrize("n", [0, -3, 1.5, True, "10", 2_000_000])
def test_n_vehicles_must_be_a_positive_int(n: object) -> None:
    with pytest.raises(ValueError, match=rf"n_vehicles must be an integer in \[1, 1000000\], got {n!r}"):
        FleetSimulator(n)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [-1, 0.5, None])
def test_seed_must_be_a_non_negative_int(seed: object) -> None:
    with pytest.raises(ValueError, match="seed must be an integer"):
        FleetSimulator(2, seed=seed)  # type: ignore[arg-type]


def test_start_ms_must_be_epoch_milliseconds() -> None:
    with pytest.raises(ValueError, match="start_ms must be an integer"):
        FleetSimulator(2, start_ms=-5)
    with pytest.raises(ValueError, match="start_ms"):
        FleetSimulator(2, start_ms=1.767e12)  # type: ignore[arg-type]


def test_unknown_region_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown region 'x' in regions; valid regions: "
                                         r"\['greensboro', 'miami', 'sand-point'\]"):
        FleetSimulator(2, regions=["miami", "x"])


@pytest.mark.parametrize("regions", [[], "miami", 42])
def test_regions_must_be_a_non_empty_sequence_of_ids(regions: object) -> None:
    with pytest.raises(ValueError, match="regions must be a non-empty sequence"):
        FleetSimulator(2, regions=regions)  # type: ignore[arg-type]


@pytest.mark.parametrize("dt_s", [0, -1.0, math.nan, math.inf, 86_401.0, "1"])
def test_step_rejects_bad_dt(dt_s: object) -> None:
    sim = FleetSimulator(2)
    with pytest.raises(ValueError, match="dt_s must be a finite number"):
        sim.step(dt_s)  # type: ignore[arg-type]
    assert sim.now_ms == 1_767_225_600_000


def test_run_rejects_bad_arguments() -> None:
    sim = FleetSimulator(2)
    with pytest.raises(ValueError, match="rate_hz must be finite and > 0, got 0"):
        next(sim.run(10.0, rate_hz=0))
    with pytest.raises(ValueError, match="duration_s must be finite and >= 0, got -1"):
        next(sim.run(-1))
    assert list(sim.run(0.0)) == []


def test_region_of_unknown_vin() -> None:
    with pytest.raises(ValueError, match="unknown vin 'NOPE'"):
        FleetSimulator(2).region_of("NOPE")
