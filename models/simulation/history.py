"""Write a simulated operating history to disk: telemetry, repair log, fleet list, weather.

    python -m models.simulation.history OUT_DIR --vehicles 5000 --days 365 --seed 1

writes (see :func:`write_history`)::

    OUT_DIR/telemetry/part-00000.jsonl.gz ...  telemetry wire messages, one per line, in time order
    OUT_DIR/maintenance.csv                    vin,component,event,time,odometer_km (sorted by time)
    OUT_DIR/fleet.csv                          vin,region,model,variant,in_service_date,home_lat,home_lon
    OUT_DIR/weather.jsonl.gz                   hourly fleet.weather observations of every home cell
    OUT_DIR/README.md                          what the files are and how they were made

Telemetry lines are exactly what the producer publishes on ``fleet.telemetry``
(``msgspec.json`` of :meth:`FleetSimulator.step` messages, vehicles interleaved
per step). Memory stays bounded: each step is encoded and compressed straight
to disk. gzip members carry no file name or time stamp, so a seed gives
byte-identical files.

The weather cells are geohash cells (Niemeyer's public-domain scheme, as in
``twins.geohash``; the simulator does not import ``twins``, so the 15-line
encoder is repeated here and checked against it in the tests) of precision 4
around each vehicle's depot (its ``home_lat``/``home_lon``).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
import numpy as np

from models.simulation.fleet import DEFAULT_START_MS, MAX_DT_S, FleetSimulator
from models.simulation.regions import REGIONS
from models.simulation.reliability import COMPONENTS, iso_utc
from models.simulation.validation import check_int, check_regions, is_finite_number
from models.simulation.weather import load_site

HOUR_MS = 3_600_000
PART_LINES = 200_000
WEATHER_PRECISION = 4
MAINTENANCE_COLUMNS = ("vin", "component", "event", "time", "odometer_km")
FLEET_COLUMNS = ("vin", "region", "model", "variant", "in_service_date", "home_lat", "home_lon")
_BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"


def geohash(lat: float, lon: float, precision: int) -> str:
    """Geohash of a WGS 84 point (same cells as ``twins.geohash.encode``)."""
    lat_lo, lat_hi, lon_lo, lon_hi = -90.0, 90.0, -180.0, 180.0
    out, ch, bits, even = [], 0, 0, True
    while len(out) < precision:
        if even:
            mid = (lon_lo + lon_hi) / 2
            ch, lon_lo, lon_hi = (ch << 1 | 1, mid, lon_hi) if lon >= mid else (ch << 1, lon_lo, mid)
        else:
            mid = (lat_lo + lat_hi) / 2
            ch, lat_lo, lat_hi = (ch << 1 | 1, mid, lat_hi) if lat >= mid else (ch << 1, lat_lo, mid)
        even = not even
        bits += 1
        if bits == 5:
            out.append(_BASE32[ch])
            ch, bits = 0, 0
    return "".join(out)


def _gzip_writer(path: Path, level: int) -> tuple[BinaryIO, gzip.GzipFile]:
    raw = open(path, "wb")
    return raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=level, mtime=0)


class _PartWriter:
    """Telemetry lines into ``part-NNNNN.jsonl.gz`` files of at most ``max_lines`` lines each."""

    def __init__(self, directory: Path, max_lines: int, level: int) -> None:
        self.dir, self.max_lines, self.level = directory, max_lines, level
        self.parts: list[str] = []
        self.lines = 0
        self._in_part = 0
        self._raw: BinaryIO | None = None
        self._gz: gzip.GzipFile | None = None

    def _open(self) -> None:
        name = f"part-{len(self.parts):05d}.jsonl.gz"
        self._raw, self._gz = _gzip_writer(self.dir / name, self.level)
        self.parts.append(name)
        self._in_part = 0

    def write(self, lines: list[bytes]) -> None:
        pos = 0
        while pos < len(lines):
            if self._gz is None or self._in_part >= self.max_lines:
                self.close()
                self._open()
            assert self._gz is not None
            take = min(len(lines) - pos, self.max_lines - self._in_part)
            self._gz.write(b"".join(lines[pos:pos + take]))
            pos += take
            self._in_part += take
            self.lines += take

    def close(self) -> None:
        if self._gz is not None:
            self._gz.close()
            assert self._raw is not None
            self._raw.close()
        self._gz = self._raw = None


def weather_records(cells: dict[str, str], first_ms: int, last_ms: int) -> list[dict[str, Any]]:
    """Hourly ``fleet.weather`` observations (``ts == issued``) for ``cells`` (cell -> region id), in time order.

    ``precip_mm`` is the TMY3 "Lprecip depth" as shipped (of doubtful quality, see
    ``models/data/weather/README.md``) and ``null`` where it is missing (Miami's TMY2 file has
    none) or outside the contract's 0-500 mm.
    """
    first = -(-first_ms // HOUR_MS) * HOUR_MS
    times = np.arange(first, last_ms + 1, HOUR_MS, dtype=np.int64)
    per_cell = []
    for cell, region in sorted(cells.items()):
        site = load_site(REGIONS[region].site_id)
        temp, rh, _ = site.sample(times)
        wind = site._interp(site.wind_mps, times)
        precip = site._interp(site.precip_mm, times)             # NaN where missing
        per_cell.append((cell, f"NREL TMY {site.site_id} {site.name}", temp, rh, wind, precip))
    out = []
    for k, ts in enumerate(times.tolist()):
        for cell, source, temp, rh, wind, precip in per_cell:
            out.append({"schema": 1, "cell": cell, "ts": ts, "issued": ts,
                        "air_temp_c": round(float(temp[k]), 2),
                        "rel_humidity_pct": round(float(min(100.0, max(0.0, rh[k]))), 1),
                        "precip_mm": round(float(precip[k]), 2) if 0.0 <= precip[k] <= 500.0 else None,
                        "wind_mps": round(float(max(0.0, wind[k])), 2), "source": source})
    return out


def write_history(out_dir: Path, vehicles: int, days: int, seed: int, dt_s: float = 3600.0,
                  regions: Sequence[str] | None = None, start_ms: int = DEFAULT_START_MS, *,
                  part_lines: int = PART_LINES, compresslevel: int = 3, progress: bool = False) -> dict[str, Any]:
    """Simulate ``vehicles`` for ``days`` at ``dt_s`` and write the dataset into ``out_dir``; return counts.

    ``out_dir`` is created if needed; files of an earlier run there are replaced (stale
    telemetry parts are removed first). The returned summary (also in ``README.md``)
    holds the arguments, line counts, failures per component and the elapsed time.
    """
    out_dir = Path(out_dir)
    check_int("vehicles", vehicles, 1, 1_000_000)
    check_int("days", days, 1, 36_525)
    check_int("part_lines", part_lines, 1, 10**9)
    check_int("compresslevel", compresslevel, 0, 9)
    if not is_finite_number(dt_s) or not 0 < dt_s <= MAX_DT_S:
        raise ValueError(f"dt_s must be a finite number in (0, {MAX_DT_S:g}], got {dt_s!r}")
    region_list = check_regions(regions)
    started = time.perf_counter()
    sim = FleetSimulator(vehicles, seed=seed, start_ms=start_ms, regions=region_list)
    tel_dir = out_dir / "telemetry"
    tel_dir.mkdir(parents=True, exist_ok=True)
    for old in tel_dir.glob("part-*.jsonl.gz"):
        old.unlink()

    fleet = sim.fleet_table()
    with open(out_dir / "fleet.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FLEET_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(fleet)

    steps = math.ceil(days * 86_400.0 / dt_s - 1e-9)
    encode_lines = msgspec.json.Encoder().encode_lines
    parts = _PartWriter(tel_dir, part_lines, compresslevel)
    events: list[dict[str, Any]] = []
    try:
        for k in range(steps):
            parts.write(encode_lines(sim.step(dt_s)).splitlines(keepends=True))
            events.extend(sim.drain_maintenance_events())
            if progress and k % max(1, steps // 100) == 0:
                print(f"\r{k}/{steps} steps, {parts.lines:,} lines, {time.perf_counter() - started:.0f} s",
                      end="", file=sys.stderr, flush=True)
    finally:
        parts.close()
    if progress:
        print(file=sys.stderr)
    end_ms = sim.now_ms

    events.sort(key=lambda e: e["time"])            # ISO strings of one format sort by time
    with open(out_dir / "maintenance.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=MAINTENANCE_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(events)

    cells = {geohash(float(r["home_lat"]), float(r["home_lon"]), WEATHER_PRECISION): r["region"] for r in fleet}
    cells.update({geohash(REGIONS[r].lat, REGIONS[r].lon, WEATHER_PRECISION): r for r in dict.fromkeys(region_list)})
    wx = weather_records(cells, start_ms, end_ms)
    raw, gz = _gzip_writer(out_dir / "weather.jsonl.gz", compresslevel)
    try:
        gz.write(encode_lines(wx))
    finally:
        gz.close()
        raw.close()

    counts = Counter((e["component"], e["event"]) for e in events)
    vehicle_years = vehicles * (end_ms - start_ms) / (365.25 * 86_400_000)
    summary: dict[str, Any] = {
        "vehicles": vehicles, "days": days, "seed": seed, "dt_s": dt_s, "regions": list(dict.fromkeys(region_list)),
        "start": iso_utc(start_ms), "end": iso_utc(end_ms), "steps": steps,
        "telemetry_lines": parts.lines, "telemetry_parts": len(parts.parts),
        "maintenance_events": len(events), "weather_records": len(wx), "weather_cells": sorted(cells),
        "failures": {c: counts[(c, "failure")] for c in COMPONENTS},
        "failures_per_100_vehicle_years": {c: round(100.0 * counts[(c, "failure")] / vehicle_years, 2)
                                           for c in COMPONENTS},
        "events": {f"{c}/{e}": n for (c, e), n in sorted(counts.items())},
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    (out_dir / "README.md").write_text(_readme(summary))
    return summary


def _readme(s: dict[str, Any]) -> str:
    regions = " ".join(s["regions"])
    cmd = (f"python -m models.simulation.history OUT_DIR --vehicles {s['vehicles']} --days {s['days']} "
           f"--seed {s['seed']} --dt {s['dt_s']:g} --start {s['start']} --regions {regions}")
    fail = "\n".join(f"| `{c}` | {s['failures'][c]} | {s['failures_per_100_vehicle_years'][c]} |" for c in COMPONENTS)
    return f"""# Simulated fleet operating history

Generated by the Fleet Assurance simulator (`models/simulation`, `write_history`):

    {cmd}

{s['vehicles']} vehicles ({', '.join(s['regions'])}, round-robin), {s['start']} to {s['end']},
one telemetry message per vehicle every {s['dt_s']:g} s ({s['steps']} steps), seed {s['seed']}.
The same command reproduces every file byte for byte.

## Files

| file | content |
|------|---------|
| `telemetry/part-*.jsonl.gz` | {s['telemetry_lines']:,} telemetry messages in {s['telemetry_parts']} parts, one JSON object per line, exactly the `fleet.telemetry` wire format (`twins.reading.decode_reading` accepts every line): `{{"schema":1,"vin","ts","seq","signals":{{VSS path: value}}}}`. A vehicle's first message and every 300th carry all signals, the others only those that changed. Parts are in time order and each step lists every vehicle (vehicle order). |
| `maintenance.csv` | {s['maintenance_events']:,} repair-log rows `vin,component,event,time,odometer_km`, sorted by time (the `fleet.maintenance` contract, `twins.maintenance`). `component` ∈ inverter, traction_battery, drive_motor, lv_battery; `event` ∈ failure, repair, replacement, inspection_ok; `time` ISO 8601 UTC. Each failure is followed by its repair or replacement when the workshop is done (hours for a 12 V battery, days otherwise); failures near the end may have no repair yet. Routine services about twice a year add `inspection_ok` rows and, for a weak 12 V battery, sometimes a preventive `replacement` without a failure. |
| `fleet.csv` | `vin,region,model,variant,in_service_date,home_lat,home_lon`: home = the depot the vehicle parks at; in-service dates spread over up to 6 years before the start (not before the model year), and the components' wear at the start follows from that age. |
| `weather.jsonl.gz` | {s['weather_records']:,} hourly `fleet.weather` observations (`ts == issued`) for the geohash-4 cells {', '.join(f'`{c}`' for c in s['weather_cells'])} (every vehicle's home cell), from each region's NREL typical-meteorological-year file: `{{"schema":1,"cell","ts","issued","air_temp_c","rel_humidity_pct","precip_mm","wind_mps","source"}}`. `precip_mm` is the TMY3 field as shipped (doubtful quality, see `models/data/weather/README.md`; the simulator does not use it) and `null` where missing (Miami) or outside 0-500 mm. |

## Failures in this run

| component | failures | per 100 vehicle-years |
|-----------|---------:|----------------------:|
{fail}

Failures are ground truth from the simulator's physics-of-failure models
(`models/simulation/reliability.py`): inverter power cycling (CIPS08 on the
junction-temperature cycles) and humidity (Peck), battery SoH fade to a 70-75 %
end of life or an internal fault, 12 V wear and cold wakes, motor insulation
ageing (10 K rule). Risk concentrates in stressed vehicles (hot/humid Miami,
hard duty, many DC fast charges, poorly cooled inverters) and some failures are
preceded by diagnostic codes (P0A3C, P0A7F, P0AA6, P0562) or drifting signals
(inverter temperature, SoH, 12 V wake voltage).

```json
{json.dumps(s, indent=2)}
```
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m models.simulation.history OUT_DIR [--vehicles N] [--days D] [--seed S] ...``."""
    ap = argparse.ArgumentParser(prog="python -m models.simulation.history", description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--vehicles", type=int, default=5000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dt", type=float, default=3600.0, help="seconds per step (default 3600)")
    ap.add_argument("--start", default=None, help="start time, ISO 8601 UTC (default 2026-01-01T00:00:00Z)")
    ap.add_argument("--regions", nargs="+", default=None, help=f"region ids (default all: {' '.join(REGIONS)})")
    ap.add_argument("--part-lines", type=int, default=PART_LINES)
    ap.add_argument("--compresslevel", type=int, default=3)
    args = ap.parse_args(argv)
    start_ms = DEFAULT_START_MS
    if args.start:
        from datetime import datetime
        start_ms = int(datetime.fromisoformat(args.start.replace("Z", "+00:00")).timestamp() * 1000)
    summary = write_history(args.out_dir, args.vehicles, args.days, args.seed, args.dt, args.regions, start_ms,
                            part_lines=args.part_lines, compresslevel=args.compresslevel, progress=True)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
