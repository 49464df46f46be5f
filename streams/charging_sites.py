"""Charging sites (depots) from the ``FLEET_CHARGING_SITES`` JSON file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from models.charging import Site
from models.charging.tariff import available_tariffs
from twins.errors import ConfigurationError


@dataclass(frozen=True)
class SiteConfig:
    """A site for the planner plus where it is and which tariff prices it."""

    site: Site
    lat: float
    lon: float
    tariff: str

    def as_dict(self) -> dict[str, Any]:
        """JSON view for ``GET /sites``."""
        return {**msgspec.to_builtins(self.site), "location": {"lat": self.lat, "lon": self.lon},
                "tariff": self.tariff}


def load_sites(path: Path | None) -> dict[str, SiteConfig]:
    """Site id -> config; empty without a file. Errors name the site, the field and the value."""
    if path is None:
        return {}
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"FLEET_CHARGING_SITES {path}: cannot read JSON: {exc}") from None
    tariffs = set(available_tariffs())
    out: dict[str, SiteConfig] = {}
    for i, raw in enumerate(doc.get("sites", [])):
        where = f"FLEET_CHARGING_SITES {path}: site #{i} ({raw.get('id', '?')!r})"
        try:
            loc = raw["location"]
            tariff = raw["tariff"]
            site = msgspec.convert({k: v for k, v in raw.items() if k not in ("location", "tariff")}, Site)
            lat, lon = float(loc["lat"]), float(loc["lon"])
        except KeyError as exc:
            raise ConfigurationError(f"{where}: missing field {exc}") from None
        except (msgspec.ValidationError, ValueError, TypeError) as exc:
            raise ConfigurationError(f"{where}: {exc}") from None
        if tariff not in tariffs:
            raise ConfigurationError(f"{where}: tariff {tariff!r} is not one of {sorted(tariffs)}")
        if site.id in out:
            raise ConfigurationError(f"{where}: duplicate site id {site.id!r}")
        out[site.id] = SiteConfig(site, lat, lon, tariff)
    if not out:
        raise ConfigurationError(f"FLEET_CHARGING_SITES {path}: no sites under 'sites'")
    return out
