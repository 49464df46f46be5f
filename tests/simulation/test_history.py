"""The history dataset writer: files, schemas, wire format, order, determinism."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from models.simulation import FleetSimulator
from models.simulation.history import FLEET_COLUMNS, MAINTENANCE_COLUMNS, geohash, write_history
from twins import geohash as twin_geohash
from twins.maintenance import decode_maintenance, records_from_csv
from twins.reading import decode_reading
from twins.weather import decode_weather

START = int(dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc).timestamp() * 1000)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """50 vehicles x 30 days at dt = 3600 s, parts of at most 10,000 lines."""
    out = tmp_path_factory.mktemp("history")
    return out, write_history(out, vehicles=50, days=30, seed=7, start_ms=START, part_lines=10_000)


def _lines(path: Path) -> list[bytes]:
    with gzip.open(path, "rb") as fh:
        return fh.read().splitlines()


def test_all_files_are_written_with_the_summary_counts(small) -> None:
    out, summary = small
    parts = sorted((out / "telemetry").glob("part-*.jsonl.gz"))
    assert [p.name for p in parts] == [f"part-{k:05d}.jsonl.gz" for k in range(len(parts))]
    assert summary["steps"] == 30 * 24 and summary["telemetry_lines"] == 50 * 30 * 24
    assert len(parts) == summary["telemetry_parts"] == 4
    sizes = [len(_lines(p)) for p in parts]
    assert sum(sizes) == summary["telemetry_lines"] and max(sizes) <= 10_000
    for name in ("maintenance.csv", "fleet.csv", "weather.jsonl.gz", "README.md"):
        assert (out / name).stat().st_size > 0
    readme = (out / "README.md").read_text()
    assert "--seed 7" in readme and "python -m models.simulation.history" in readme
    assert "maintenance.csv" in readme and "fleet.weather" in readme


def test_every_telemetry_line_is_a_valid_wire_message_in_time_order(small) -> None:
    out, _ = small
    vins = [row["vin"] for row in csv.DictReader(open(out / "fleet.csv"))]
    lines = [ln for p in sorted((out / "telemetry").glob("part-*.jsonl.gz")) for ln in _lines(p)]
    prev_ts, seq = 0, {}
    for k, raw in enumerate(lines):
        r = decode_reading(raw)
        assert r.vin == vins[k % 50]                       # every step lists the fleet in vehicle order
        assert r.ts >= prev_ts and (k % 50 or r.ts > prev_ts)
        assert r.ts == START + (k // 50 + 1) * 3_600_000
        assert r.seq == seq.get(r.vin, -1) + 1
        prev_ts, seq[r.vin] = r.ts, r.seq


def test_telemetry_is_exactly_the_producers_wire_format(small) -> None:
    """The stream's producer sends ``msgspec.json.Encoder().encode(msg)`` of each ``step`` message."""
    out, _ = small
    first = _lines(out / "telemetry" / "part-00000.jsonl.gz")[:50 * 30]
    sim = FleetSimulator(50, seed=7, start_ms=START)
    enc = msgspec.json.Encoder()
    expected = [enc.encode(m) for _ in range(30) for m in sim.step(3600.0)]
    assert first == expected


def test_maintenance_csv_follows_the_repair_log_contract(small) -> None:
    out, summary = small
    text = (out / "maintenance.csv").read_text()
    assert text.splitlines()[0] == ",".join(MAINTENANCE_COLUMNS)
    records = records_from_csv(text)
    assert len(records) == summary["maintenance_events"] > 0
    times = [decode_maintenance(msgspec.json.encode(r)).time_ms for r in records]
    assert times == sorted(times)
    assert all(START < t <= START + 30 * 86_400_000 for t in times)
    vins = {row["vin"] for row in csv.DictReader(open(out / "fleet.csv"))}
    assert {r["vin"] for r in records} <= vins


def test_fleet_csv_lists_every_vehicle(small) -> None:
    out, _ = small
    rows = list(csv.DictReader(open(out / "fleet.csv")))
    assert list(rows[0]) == list(FLEET_COLUMNS) and len(rows) == 50
    assert {r["region"] for r in rows} == {"miami", "greensboro", "sand-point"}
    for r in rows:
        in_service = dt.date.fromisoformat(r["in_service_date"])
        assert dt.date(2020, 1, 1) <= in_service <= dt.date(2026, 3, 2)
        assert -90 <= float(r["home_lat"]) <= 90 and -180 <= float(r["home_lon"]) <= 180


def test_weather_covers_every_home_cell_hourly(small) -> None:
    out, summary = small
    recs = [decode_weather(ln) for ln in _lines(out / "weather.jsonl.gz")]
    homes = {twin_geohash.encode(float(r["home_lat"]), float(r["home_lon"]), 4)
             for r in csv.DictReader(open(out / "fleet.csv"))}
    cells = {r.cell for r in recs}
    assert homes <= cells and cells == set(summary["weather_cells"])
    assert len(recs) == summary["weather_records"] == len(cells) * (30 * 24 + 1)
    assert all(r.ts == r.issued and r.ts % 3_600_000 == 0 for r in recs)
    assert [r.ts for r in recs] == sorted(r.ts for r in recs)
    miami = [r for r in recs if r.cell == "dhwf"]
    assert miami[0].source == "NREL TMY 12839 Miami, FL"
    assert 15.0 < np.mean([r.air_temp_c for r in miami]) < 30.0          # March in Miami
    raw = _lines(out / "weather.jsonl.gz")[0]
    assert list(msgspec.json.decode(raw)) == ["schema", "cell", "ts", "issued", "air_temp_c", "rel_humidity_pct",
                                              "precip_mm", "wind_mps", "source"]


def test_a_full_year_of_weather_honours_the_contract() -> None:
    """Every hour of every region's typical year decodes (missing or out-of-range precipitation is null)."""
    from models.simulation.history import weather_records
    start = int(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
    recs = weather_records({"dhwf": "miami", "dnrj": "greensboro", "b3vf": "sand-point"}, start,
                           start + 365 * 86_400_000)
    decoded = [decode_weather(msgspec.json.encode(r)) for r in recs]
    assert len(decoded) == 3 * (365 * 24 + 1)
    assert all(r.precip_mm is None for r in decoded if r.cell == "dhwf")        # TMY2: no precipitation field
    assert any(r.precip_mm is None for r in decoded if r.cell == "b3vf")        # gaps and a 753 mm hour
    assert all(r.precip_mm is not None for r in decoded if r.cell == "dnrj")
    assert any(r.precip_mm for r in decoded if r.cell == "dnrj")


def test_same_seed_writes_byte_identical_files(tmp_path: Path) -> None:
    def digest(d: Path) -> dict[str, str]:
        return {p.relative_to(d).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(d.rglob("*")) if p.is_file() and p.name != "README.md"}

    a, b = tmp_path / "a", tmp_path / "b"
    write_history(a, vehicles=8, days=2, seed=3, dt_s=900.0, regions=["miami"])
    write_history(b, vehicles=8, days=2, seed=3, dt_s=900.0, regions=["miami"])
    assert digest(a) == digest(b)
    write_history(b, vehicles=8, days=2, seed=4, dt_s=900.0, regions=["miami"])   # overwrites in place
    assert digest(a) != digest(b)
    assert len(list((b / "telemetry").glob("part-*"))) == 1


def test_geohash_matches_the_twins_cells() -> None:
    rng = np.random.default_rng(0)
    for lat, lon in zip(rng.uniform(-90, 90, 300), rng.uniform(-180, 180, 300)):
        for precision in (1, 4, 7):
            assert geohash(lat, lon, precision) == twin_geohash.encode(lat, lon, precision)


def test_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="vehicles"):
        write_history(tmp_path, vehicles=0, days=1, seed=1)
    with pytest.raises(ValueError, match="dt_s"):
        write_history(tmp_path, vehicles=1, days=1, seed=1, dt_s=0.0)
    with pytest.raises(ValueError, match="region"):
        write_history(tmp_path, vehicles=1, days=1, seed=1, regions=["atlantis"])
