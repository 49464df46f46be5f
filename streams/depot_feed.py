"""Demo depot-management feed for ``fleet run``: plug-in/out requests and daily TOU grid signals.

Watches the simulated fleet's messages: a vehicle that starts AC charging within
3 km of a configured site plugs in there (departure: next 06:30 local time, at least
2 h later; SoC, capacity, power and energy need are left for the planner to complete
from the twin), and plugs out when charging stops. Each site gets its tariff's
time-of-use prices and peak windows for the local day at start and every local midnight.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from models.charging.tariff import load_tariff, tariff_signals
from streams.charging_sites import SiteConfig

_CHARGING = "Vehicle.Powertrain.TractionBattery.Charging.IsCharging"
_DC = "Vehicle.Powertrain.TractionBattery.Charging.ChargeCurrent.DC"
_LAT = "Vehicle.CurrentLocation.Latitude"
_LON = "Vehicle.CurrentLocation.Longitude"
NEAR_KM = 3.0


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    dlat = math.radians(lat2 - lat1)
    dlon = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    return 6371.0 * math.hypot(dlat, dlon)


class DepotFeed:
    """Turns simulator messages into charging requests and grid signals (messages as dicts)."""

    def __init__(self, sites: dict[str, SiteConfig]) -> None:
        self.sites = sites
        self.where: dict[str, tuple[float, float]] = {}
        self.plugged: dict[str, str] = {}  # vin -> site
        self.grid_day: dict[str, str] = {}

    def _site_near(self, vin: str) -> SiteConfig | None:
        pos = self.where.get(vin)
        if pos is None:
            return None
        return next((c for c in self.sites.values() if _km(pos[0], pos[1], c.lat, c.lon) <= NEAR_KM), None)

    def grid_messages(self, now: datetime) -> list[tuple[str, str, dict[str, Any]]]:
        """(topic kind, site, message) for sites whose local day changed."""
        out = []
        for sid, cfg in self.sites.items():
            local = now.astimezone(ZoneInfo(cfg.site.timezone))
            day = local.date().isoformat()
            if self.grid_day.get(sid) == day:
                continue
            self.grid_day[sid] = day
            signals = tariff_signals(sid, load_tariff(cfg.tariff), cfg.site.timezone, local.date(), 2)
            out.append(("grid", sid, {"type": "grid", "at": now.isoformat(),
                                      "signals": msgspec.to_builtins(signals)}))
        return out

    def observe(self, msg: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
        """Requests caused by one telemetry message."""
        vin, sig = msg["vin"], msg["signals"]
        if _LAT in sig and _LON in sig:
            self.where[vin] = (sig[_LAT], sig[_LON])
        if _CHARGING not in sig:
            return []
        at = datetime.fromtimestamp(msg["ts"] / 1000, tz=timezone.utc)
        if sig[_CHARGING] and not sig.get(_DC) and vin not in self.plugged:
            cfg = self._site_near(vin)
            if cfg is None:
                return []
            tz = ZoneInfo(cfg.site.timezone)
            local = at.astimezone(tz)
            departure = local.replace(hour=6, minute=30, second=0, microsecond=0)
            while departure < local + timedelta(hours=2):
                departure += timedelta(days=1)
            self.plugged[vin] = cfg.site.id
            return [("requests", cfg.site.id, {"type": "plug_in", "at": at.isoformat(), "request": {
                "vin": vin, "site_id": cfg.site.id, "plug_in": at.isoformat(), "departure": departure.isoformat()}})]
        if not sig[_CHARGING] and vin in self.plugged:
            site = self.plugged.pop(vin)
            return [("requests", site, {"type": "plug_out", "site_id": site, "vin": vin, "at": at.isoformat()})]
        return []
