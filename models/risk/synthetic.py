"""A small synthetic history dataset with *known* risk, for tests and smoke runs.

Telemetry comes from ``models.simulation.FleetSimulator``; a ``stressed`` subset of
vehicles gets its inverter temperature raised by ``inverter_offset_c`` and its hottest
cell by ``cell_offset_c`` in every message that carries them, and the maintenance log
draws failures (Poisson, per component) at a much higher rate for those vehicles.
Each failure is followed by a replacement ``downtime_h`` later. So a model that learns
"hot inverter / hot cells -> failure" ranks stressed vehicles first: a ground truth a
test can check. Weather is the simulator's typical-year weather (NREL TMY) for the
cells around each region, as ``fleet.weather`` observations.

>>> # write_synthetic_history("/tmp/risk-demo", vehicles=60, days=60)  # ~10 s
"""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from typing import Any
from datetime import datetime, timezone
from pathlib import Path

import msgspec
import numpy as np

from models.simulation import FleetSimulator
from models.simulation.regions import REGIONS
from models.simulation.weather import load_site
from twins.geohash import cells_around
from twins.weather import HOUR_MS

INV_T = "Vehicle.Powertrain.TractionInverter.Temperature"
CELL_T = "Vehicle.Powertrain.TractionBattery.Temperature.Max"
MODEL = "Vehicle.VehicleIdentification.Model"
VARIANT = "Vehicle.VehicleIdentification.Variant"
DAY_MS = 86_400_000


@dataclass(frozen=True)
class SyntheticTruth:
    """What the generator decided: stressed VINs, failures, data window."""

    vins: tuple[str, ...]
    stressed: frozenset[str]
    failures: tuple[tuple[str, str, int], ...]      # (vin, component, time_ms)
    start_ms: int
    end_ms: int


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_synthetic_history(out_dir: str | Path, vehicles: int = 80, days: int = 90, seed: int = 0,
                            dt_s: float = 3600.0, stressed_fraction: float = 0.3,
                            regions: tuple[str, ...] = ("miami", "greensboro", "sand-point"),
                            stressed_rate_per_day: float = 1 / 40, normal_rate_per_day: float = 1 / 5000,
                            inverter_offset_c: float = 30.0, cell_offset_c: float = 12.0,
                            downtime_h: float = 30.0, part_days: int = 30) -> SyntheticTruth:
    """Write ``telemetry/``, ``maintenance.csv``, ``fleet.csv`` and ``weather.jsonl.gz`` into ``out_dir``."""
    out = Path(out_dir)
    (out / "telemetry").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sim = FleetSimulator(vehicles, seed=seed, regions=list(regions))
    vins = sim.vins
    start = sim.now_ms
    end = start + days * DAY_MS
    stressed = frozenset(v for v in vins if rng.random() < stressed_fraction)
    enc = msgspec.json.Encoder()
    steps = int(round(days * 86_400 / dt_s))
    per_part = max(1, int(round(part_days * 86_400 / dt_s)))
    models: dict[str, tuple[str, str]] = {}
    fh = None
    for k in range(steps):
        if k % per_part == 0:
            if fh is not None:
                fh.close()
            fh = gzip.open(out / "telemetry" / f"part-{k // per_part:05d}.jsonl.gz", "wb", compresslevel=1)
        lines = []
        for msg in sim.step(dt_s):
            sig = msg["signals"]
            if msg["vin"] in stressed:
                if INV_T in sig:
                    sig[INV_T] = min(250.0, round(sig[INV_T] + inverter_offset_c, 1))
                if CELL_T in sig:
                    sig[CELL_T] = min(120.0, round(sig[CELL_T] + cell_offset_c, 1))
            if MODEL in sig:
                models[msg["vin"]] = (sig[MODEL], sig.get(VARIANT, ""))
            lines.append(enc.encode(msg))
        assert fh is not None
        fh.write(b"\n".join(lines) + b"\n")
    if fh is not None:
        fh.close()

    failures: list[tuple[str, str, int]] = []
    rows: list[tuple[str, str, str, int]] = []
    downtime_ms = int(downtime_h * 3_600_000)
    for vin in vins:
        for comp in ("inverter", "traction_battery", "drive_motor", "lv_battery"):
            hot = vin in stressed and comp in ("inverter", "traction_battery")
            rate = stressed_rate_per_day if hot else normal_rate_per_day
            t = start
            while True:
                t += int(rng.exponential(1.0 / rate) * DAY_MS)
                if t >= end:
                    break
                failures.append((vin, comp, t))
                rows.append((vin, comp, "failure", t))
                rows.append((vin, comp, "replacement", t + downtime_ms))
                t += downtime_ms
    rows.sort(key=lambda r: r[3])
    with open(out / "maintenance.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["vin", "component", "event", "time", "odometer_km"])
        for vin, comp, event, t in rows:
            w.writerow([vin, comp, event, _iso(t), ""])

    with open(out / "fleet.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["vin", "region", "model", "variant", "in_service_date", "home_lat", "home_lon"])
        for vin in vins:
            region = REGIONS[sim.region_of(vin)]
            service = start - int(rng.uniform(30, 5 * 365)) * DAY_MS
            model, variant = models.get(vin, ("", ""))
            w.writerow([vin, region.id, model, variant, _iso(service)[:10], region.lat, region.lon])

    _write_weather(out / "weather.jsonl.gz", regions, start // HOUR_MS - 24 * 31, end // HOUR_MS + 1)
    return SyntheticTruth(tuple(vins), stressed, tuple(failures), start, end)


def _write_weather(path: Path, regions: tuple[str, ...], first_hour: int, last_hour: int) -> None:
    """Hourly observations (ts == issued) for every cell around each region's depot."""
    enc = msgspec.json.Encoder()
    hours = np.arange(first_hour, last_hour + 1, dtype=np.int64)
    with gzip.open(path, "wb", compresslevel=1) as fh:
        for rid in regions:
            region = REGIONS[rid]
            site = load_site(region.site_id)
            temp, rh, _ = site.sample(hours * HOUR_MS)
            cells = cells_around(region.lat, region.lon, region.roam_km, 4)
            lines = []
            for h, t, r in zip(hours.tolist(), temp.tolist(), rh.tolist()):
                for cell in cells:
                    lines.append(enc.encode({"schema": 1, "cell": cell, "ts": h * HOUR_MS, "issued": h * HOUR_MS,
                                             "air_temp_c": round(t, 2), "rel_humidity_pct": round(min(r, 100.0), 1),
                                             "source": f"NREL TMY {site.site_id}"}))
            fh.write(b"\n".join(lines) + b"\n")


def stream_twins(data_dir: str | Path, copy_every: int = 0, copies_max: int = 0) -> tuple[dict[str, Any], list[Any]]:
    """Twins of a dataset built reading by reading with the stream's calls (``merge_into``, ``note_residency``
    at geohash precision 4 with the vehicle's home cell): the final twin per VIN, and copies taken every
    ``copy_every``-th reading (at most ``copies_max``) for twins at many points of their history."""
    from models.risk.dataset import dataset_paths, iter_lines, read_fleet, telemetry_parts
    from twins.join import note_residency
    from twins.reading import decode_reading
    from twins.twin import copy_twin, merge_into, new_twin

    p = dataset_paths(data_dir)
    fleet = read_fleet(p["fleet"])
    live: dict[str, Any] = {}
    copies: list[Any] = []
    for k, line in enumerate(iter_lines(telemetry_parts(p["telemetry"]))):
        r = decode_reading(line)
        t = live.get(r.vin)
        if t is None:
            t = live[r.vin] = new_twin(r.vin)
        merge_into(t, [r])
        note_residency(t, r.ts, r.ts, 4, fleet[r.vin].home_cell())
        if copy_every and k % copy_every == 0 and len(copies) < copies_max:
            copies.append(copy_twin(t))
    return live, copies
