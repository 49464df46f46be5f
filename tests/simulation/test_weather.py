"""The TMY loader maps UTC timestamps onto the typical year and interpolates the real hourly data."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from models.simulation import REGIONS
from models.simulation.weather import HOURS_PER_YEAR, air_temperature, load_site, relative_humidity

WEATHER_DIR = Path(__file__).resolve().parents[2] / "models" / "data" / "weather"


def _ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.timezone.utc).timestamp() * 1000)


def _raw_rows(site_id: str) -> list[dict[str, str]]:
    with open(WEATHER_DIR / f"{site_id}.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_region_has_a_loadable_typical_year() -> None:
    assert {"miami", "greensboro", "sand-point"} <= set(REGIONS)
    for region in REGIONS.values():
        site = load_site(region.site_id)
        assert site.temp_air_c.shape == (HOURS_PER_YEAR,)
        assert abs(site.lat - region.lat) < 0.01 and abs(site.lon - region.lon) < 0.01
        assert region.timezone.startswith("America/")


def test_exact_hour_returns_the_tmy_row() -> None:
    rows = _raw_rows("723170")
    # Row for 15 July hour-ending 14:00 LST (UTC-5) is 19:00Z.
    row = next(r for r in rows if (r["month"], r["day"], r["hour"]) == ("7", "15", "14"))
    site = load_site("723170")
    assert float(site.air_temperature(_ms(2026, 7, 15, 19))) == pytest.approx(float(row["temp_air_c"]))
    assert float(relative_humidity(site, _ms(2026, 7, 15, 19))) == pytest.approx(float(row["rh_pct"]))


def test_linear_interpolation_between_hours() -> None:
    site = load_site("12839")
    a, b = site.air_temperature(_ms(2026, 3, 3, 17)), site.air_temperature(_ms(2026, 3, 3, 18))
    mid = site.air_temperature(_ms(2026, 3, 3, 17) + 1_800_000)
    assert float(mid) == pytest.approx((float(a) + float(b)) / 2)


def test_year_wraps_and_leap_day_repeats_feb_28() -> None:
    site = load_site("703165")
    # Midnight 1 Jan LST is the last row (31 Dec hour 24) of the typical year.
    midnight = _ms(2026, 1, 1, 9)  # UTC-9
    assert float(site.air_temperature(midnight)) == pytest.approx(site.temp_air_c[-1])
    leap, feb28 = _ms(2028, 2, 29, 21, 30), _ms(2027, 2, 28, 21, 30)
    assert float(site.air_temperature(leap)) == pytest.approx(float(site.air_temperature(feb28)))
    assert float(site.air_temperature(_ms(2028, 3, 1, 12))) == pytest.approx(
        float(site.air_temperature(_ms(2027, 3, 1, 12))))


def test_monthly_means_match_the_real_climates() -> None:
    def month_mean(site_id: str, month: int) -> float:
        start = _ms(2026, month, 1, 12)
        ts = start + np.arange(28 * 24, dtype=np.int64) * 3_600_000
        return float(np.mean(air_temperature(load_site(site_id), ts)))

    miami_jul, greensboro_jan, sand_point_jan = month_mean("12839", 7), month_mean("723170", 1), \
        month_mean("703165", 1)
    assert 27.0 < miami_jul < 30.0          # TMY2 Miami July mean ~28 °C
    assert -2.0 < greensboro_jan < 5.0      # TMY3 Greensboro January ~0-3 °C
    assert -3.0 < sand_point_jan < 3.0      # TMY3 Sand Point January ~0.6 °C
    raw = [float(r["temp_air_c"]) for r in _raw_rows("12839") if r["month"] == "7"]
    assert miami_jul == pytest.approx(np.mean(raw), abs=0.5)


def test_unknown_site_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown weather site_id 'nowhere'"):
        load_site("nowhere")
