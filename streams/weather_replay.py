"""``fleet weather-replay``: real typical-year weather (NREL TMY, shipped in models/data) onto ``fleet.weather``.

Each hour publishes, for every cell around each region's depot, an observation
(``ts == issued``) and forecasts for the next hours. Forecasts are the typical-year
values themselves (perfect foresight): a replay of real climate, not a weather model.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import msgspec

from models.simulation.regions import REGIONS
from models.simulation.weather import load_site
from streams.settings import Settings
from twins.geohash import cells_around
from twins.weather import HOUR_MS


def weather_records(regions: list[str], first_hour: int, hours: int, precision: int,
                    forecast_hours: int = 24) -> Iterator[list[dict[str, Any]]]:
    """Per hour (hours since epoch, UTC), the records to publish for that hour."""
    unknown = [r for r in regions if r not in REGIONS]
    if unknown:
        raise ValueError(f"unknown region(s) {unknown}; choose from {sorted(REGIONS)}")
    plan = []
    for rid in regions:
        region = REGIONS[rid]
        site = load_site(region.site_id)
        cells = cells_around(region.lat, region.lon, region.roam_km, precision)
        plan.append((site, cells, f"NREL TMY {site.site_id} {site.name}"))
    for hour in range(first_hour, first_hour + hours):
        batch = []
        for site, cells, source in plan:
            times = [(hour + k) * HOUR_MS for k in range(forecast_hours + 1)]
            temp, rh, _ = site.sample(times)
            wind = site._interp(site.wind_mps, times)
            precip = site._interp(site.precip_mm, times)
            for k, ts in enumerate(times):
                values = {"air_temp_c": round(float(temp[k]), 2), "rel_humidity_pct": round(float(min(100.0, rh[k])), 1),
                          "precip_mm": round(float(max(0.0, precip[k])), 2), "wind_mps": round(float(max(0.0, wind[k])), 2)}
                for cell in cells:
                    batch.append({"schema": 1, "cell": cell, "ts": ts, "issued": hour * HOUR_MS, **values,
                                  "source": source})
        yield batch


def replay(settings: Settings, regions: list[str], backfill_hours: int, hours: int, speedup: float,
           forecast_hours: int) -> int:
    """Publish ``backfill_hours`` of past weather at once, then ``hours`` more at ``speedup``× real time."""
    from streams.simulate import make_producer

    if speedup <= 0:
        raise ValueError(f"speedup must be positive, got {speedup!r}")
    producer = make_producer(settings, client_id="fleet-weather-replay")
    encode = msgspec.json.Encoder().encode
    now_hour = int(time.time() * 1000) // HOUR_MS
    first = now_hour - backfill_hours + 1
    sent = 0
    started = time.monotonic()
    try:
        for i, batch in enumerate(weather_records(regions, first, backfill_hours + hours, settings.weather_cell_precision,
                                                  forecast_hours)):
            for rec in batch:
                producer.send(settings.topic_weather, key=rec["cell"].encode(), value=encode(rec))
            sent += len(batch)
            if i >= backfill_hours:
                producer.flush()
                due = started + (i - backfill_hours + 1) * 3600.0 / speedup
                time.sleep(max(0.0, due - time.monotonic()))
    except KeyboardInterrupt:
        pass
    finally:
        producer.flush()
        producer.close()
    return sent
