"""Real TOU tariffs (copied from the acnportal wheel) to per-slot prices, peak windows and demand charges."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from models.charging import load_tariff, tariff_signals
from models.charging.tariff import available_tariffs

LA = "America/Los_Angeles"


def test_sce_tou_ev4_published_prices_on_a_winter_weekday():
    t = load_tariff("sce_tou_ev_4_march_2019")
    assert (t.name, t.effective) == ("SCE TOU-EV-4", "2019-3-1")
    start, prices = t.day_prices(date(2019, 3, 5), LA, 15)  # Tuesday
    assert start == datetime(2019, 3, 5, tzinfo=ZoneInfo(LA)) and len(prices) == 96
    hour = {h: prices[4 * h] for h in range(24)}
    assert [hour[h] for h in (0, 7, 8, 11, 12, 17, 18, 22, 23)] == [
        0.06087, 0.06087, 0.07492, 0.07492, 0.0869, 0.0869, 0.07492, 0.07492, 0.06087]
    assert t.demand_charge(date(2019, 3, 5)) == 15.51
    windows = t.peak_windows(date(2019, 3, 5), LA)
    assert [(w.start.hour, w.end.hour) for w in windows] == [(12, 18)]


def test_weekend_summer_and_season_wrap():
    t = load_tariff("sce_tou_ev_4_march_2019")
    assert set(t.day_prices(date(2019, 3, 9), LA)[1]) == {0.06087}  # Saturday: one price, no peak window
    assert t.peak_windows(date(2019, 3, 9), LA) == []
    assert t.price_at_hour(date(2019, 7, 9), 13.0) == 0.26668  # summer on-peak
    assert t.price_at_hour(date(2019, 6, 1), 13.0) == 0.05623  # Saturday, first summer day
    assert t.price_at_hour(date(2019, 5, 31), 13.0) == 0.0869  # Friday, last winter day
    assert t.price_at_hour(date(2019, 12, 16), 13.0) == 0.0869  # winter wraps over new year


def test_tou_ev8_evening_peak_and_dst_days():
    t = load_tariff("sce_tou_ev_8_june_2019")
    d = date(2019, 3, 5)
    assert (t.price_at_hour(d, 10), t.price_at_hour(d, 17), t.price_at_hour(d, 22)) == (0.07724, 0.297, 0.13568)
    assert [(w.start.hour, w.end.hour) for w in t.peak_windows(d, LA)] == [(16, 21)]
    assert len(t.day_prices(date(2019, 3, 10), LA)[1]) == 92  # spring forward: 23 h
    assert len(t.day_prices(date(2019, 11, 3), LA)[1]) == 100  # fall back: 25 h
    # on the DST day 16:00 local is still the start of the peak
    w = t.peak_windows(date(2019, 3, 10), LA)[0]
    assert (w.start.hour, w.end.hour, w.end - w.start) == (16, 21, timedelta(hours=5))


def test_tariff_signals_span_days_in_absolute_time():
    t = load_tariff("sce_tou_ev_4_march_2019")
    g = tariff_signals("s", t, LA, date(2019, 3, 9), 3, slot_minutes=5, demand_charge_scope="all")
    assert len(g.prices_per_kwh) == 288 + 276 + 288  # Sat, Sun (DST), Mon
    assert g.demand_charge_per_kw == 15.51 and g.demand_charge_scope == "all"
    monday_noon = datetime(2019, 3, 11, 12, tzinfo=ZoneInfo(LA))
    k = int((monday_noon.timestamp() - g.start.timestamp()) // 300)  # absolute seconds across DST
    assert g.prices_per_kwh[k - 1] == 0.07492 and g.prices_per_kwh[k] == 0.0869
    assert [w.start for w in g.peak_windows] == [monday_noon]


def test_shipped_files_are_verbatim_acnportal_and_unknown_names_fail():
    from importlib import resources

    assert available_tariffs() == ["sce_tou_ev_4_march_2019", "sce_tou_ev_8_june_2019"]
    raw = json.loads(resources.files("models.data.charging.tariffs").joinpath(
        "sce_tou_ev_4_march_2019.json").read_text())
    assert raw["link"] == "https://www1.sce.com/NR/sc3/tm2/pdf/ce141-12.pdf"
    with pytest.raises(ValueError, match="not found; shipped tariffs"):
        load_tariff("pge_e19")
