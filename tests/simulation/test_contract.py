"""Every message honours the telemetry contract and the twins signal catalogue."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from typing import Any

import pytest

from models.simulation import SIGNAL_PATHS, FleetSimulator
from models.simulation.ev_models import load_ev_models
from models.simulation.vin import VIN_ALPHABET, check_digit
from tests.simulation._helpers import CHARGING, DC_CURRENT, MODEL, PACK_CURRENT, SPEED, TB
from twins.reading import present_signals, reading_from_dict
from twins.signals import ALLOWED_LV_STATES, SIGNALS

# Monday 2026-01-05 08:00 in Miami/Greensboro, 04:00 in Sand Point: vehicles leave during the run.
START = int(dt.datetime(2026, 1, 5, 13, tzinfo=dt.timezone.utc).timestamp() * 1000)
N = 150
FINE_STEPS, COARSE_STEPS = 700, 300
PY_TYPES = {"float": float, "bool": bool, "str": str}


@pytest.fixture(scope="module")
def run() -> tuple[FleetSimulator, list[list[dict[str, Any]]]]:
    sim = FleetSimulator(N, seed=42, start_ms=START)
    batches = [sim.step(1.0) for _ in range(FINE_STEPS)] + [sim.step(60.0) for _ in range(COARSE_STEPS)]
    return sim, batches


def test_signal_paths_are_exactly_the_catalogue() -> None:
    assert list(SIGNAL_PATHS) == [s.path for s in SIGNALS]


def test_envelope_fields(run) -> None:
    sim, batches = run
    for batch in batches:
        assert len(batch) == N
        for msg, vin in zip(batch, sim.vins):
            assert list(msg) == ["schema", "vin", "ts", "seq", "signals"]
            assert msg["schema"] == 1 and msg["vin"] == vin
            assert type(msg["ts"]) is int and type(msg["seq"]) is int
            assert isinstance(msg["signals"], dict)


def test_values_within_catalogue_range_and_of_the_right_kind(run) -> None:
    _, batches = run
    catalogue = {s.path: s for s in SIGNALS}
    seen: dict[str, int] = defaultdict(int)
    for batch in batches:
        for msg in batch:
            for path, value in msg["signals"].items():
                sig = catalogue[path]
                seen[path] += 1
                if sig.kind == "str_list":
                    assert type(value) is list and all(type(c) is str and len(c) == 5 for c in value), value
                    continue
                assert type(value) is PY_TYPES[sig.kind], (path, value)
                if sig.kind == "float":
                    assert math.isfinite(value), (path, value)
                    assert sig.minimum <= value <= sig.maximum, (path, value)
                if path == "Vehicle.LowVoltageSystemState":
                    assert value in ALLOWED_LV_STATES
    assert set(seen) == set(SIGNAL_PATHS)


def test_every_message_passes_the_strict_twin_decoder(run) -> None:
    _, batches = run
    for batch in batches[::7] + batches[-3:]:
        for msg in batch:
            reading = reading_from_dict(msg)
            assert present_signals(reading) == msg["signals"]


def test_vins_are_unique_valid_and_match_the_model(run) -> None:
    sim, batches = run
    vins = sim.vins
    assert len(set(vins)) == N
    wmi = {m.model: m.wmi for m in load_ev_models()}
    for vin, msg in zip(vins, batches[0]):
        assert len(vin) == 17 and set(vin) <= set(VIN_ALPHABET)
        assert vin[8] == check_digit(vin)
        assert vin[:3] == wmi[msg["signals"][MODEL]]


def test_seq_increments_by_one_and_ts_advances_by_dt(run) -> None:
    sim, batches = run
    expected_ts = [START + 1000 * (k + 1) for k in range(FINE_STEPS)]
    expected_ts += [expected_ts[-1] + 60_000 * (k + 1) for k in range(COARSE_STEPS)]
    for k, batch in enumerate(batches):
        assert {m["ts"] for m in batch} == {expected_ts[k]}
        assert all(m["seq"] == k for m in batch)
    assert sim.now_ms == expected_ts[-1]


def test_first_message_is_full_and_snapshots_recur(run) -> None:
    _, batches = run
    assert all(set(m["signals"]) == set(SIGNAL_PATHS) for m in batches[0])
    full_seqs: dict[str, list[int]] = defaultdict(list)
    for batch in batches:
        for m in batch:
            if MODEL in m["signals"]:  # static signals travel only in full snapshots
                assert set(m["signals"]) == set(SIGNAL_PATHS)
                full_seqs[m["vin"]].append(m["seq"])
    for seqs in full_seqs.values():
        gaps = [b - a for a, b in zip(seqs, seqs[1:])]
        assert len(seqs) >= 4 and max(gaps) <= 300


def test_partial_updates_carry_only_changed_values(run) -> None:
    _, batches = run
    state: dict[str, dict[str, Any]] = defaultdict(dict)
    partial_sizes = []
    for batch in batches:
        for m in batch:
            sig, known = m["signals"], state[m["vin"]]
            if set(sig) != set(SIGNAL_PATHS):
                partial_sizes.append(len(sig))
                for path, value in sig.items():
                    assert known[path] != value, (m["vin"], m["seq"], path, value)
            known.update(sig)
    assert partial_sizes and sum(partial_sizes) / len(partial_sizes) < 12


def test_current_sign_follows_vss_convention(run) -> None:
    _, batches = run
    state: dict[str, dict[str, Any]] = defaultdict(dict)
    checked = {"drive": 0, "charge": 0, "dc": 0}
    for batch in batches:
        for m in batch:
            st = state[m["vin"]]
            st.update(m["signals"])
            power = st["Vehicle.Powertrain.ElectricMotor.Power"]
            if power > 10.0:
                assert st[PACK_CURRENT] < 0, st
                checked["drive"] += 1
            if st[CHARGING]:
                assert st[PACK_CURRENT] > 0 and st[SPEED] == 0.0
                checked["charge"] += 1
            if st[DC_CURRENT] > 0:
                assert st[CHARGING] and st[DC_CURRENT] == st[PACK_CURRENT]
                assert st["Vehicle.LowVoltageSystemState"] == "ACC"
                checked["dc"] += 1
            else:
                assert st[DC_CURRENT] == 0.0
    assert checked["drive"] > 500 and checked["charge"] > 1000 and checked["dc"] > 0, checked
    assert st[f"{TB}.CurrentVoltage"] > 250
