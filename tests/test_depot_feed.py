"""The demo depot feed turns simulated charging into plug-in/out requests and daily grid signals."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from streams.charging_sites import load_sites
from streams.depot_feed import DepotFeed

SITES = load_sites(Path(__file__).resolve().parents[1] / "deploy" / "demo-sites.json")
CHG = "Vehicle.Powertrain.TractionBattery.Charging.IsCharging"


def msg(ts: int, **signals: object) -> dict:
    paths = {"lat": "Vehicle.CurrentLocation.Latitude", "lon": "Vehicle.CurrentLocation.Longitude", "chg": CHG}
    return {"vin": "1G1FZ6S09L4100001", "ts": ts, "signals": {paths[k]: v for k, v in signals.items()}}


def test_plug_in_near_a_depot_then_plug_out():
    feed = DepotFeed(SITES)
    t = int(datetime(2026, 11, 21, 23, 0, tzinfo=timezone.utc).timestamp() * 1000)  # 18:00 in Miami
    assert feed.observe(msg(t, lat=25.9, lon=-80.0, chg=True)) == []  # 27 km away: no depot
    [(kind, site, req)] = feed.observe(msg(t + 1000, lat=25.801, lon=-80.267, chg=True))
    assert (kind, site, req["type"]) == ("requests", "miami-depot", "plug_in")
    assert req["request"]["departure"] == "2026-11-22T06:30:00-05:00"
    assert feed.observe(msg(t + 2000, chg=True)) == []  # still plugged: nothing new
    [(kind, site, out)] = feed.observe(msg(t + 3000, chg=False))
    assert out == {"type": "plug_out", "site_id": "miami-depot", "vin": "1G1FZ6S09L4100001",
                   "at": "2026-11-21T23:00:03+00:00"}


def test_grid_signals_once_per_local_day():
    feed = DepotFeed(SITES)
    now = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)
    first = feed.grid_messages(now)
    assert sorted(site for _, site, _ in first) == sorted(SITES)
    miami = next(doc for _, site, doc in first if site == "miami-depot")
    assert len(miami["signals"]["prices_per_kwh"]) == 192 and miami["signals"]["peak_windows"]
    assert feed.grid_messages(now.replace(hour=13)) == []
    assert [s for _, s, _ in feed.grid_messages(now.replace(day=22, hour=6))] == ["miami-depot",
                                                                                  "greensboro-depot"]
