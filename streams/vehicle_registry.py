"""The optional vehicle registry CSV: ``vin,home_lat,home_lon[,in_service_date,...]``.

Gives each vehicle its home weather cell (used until it reports a position) and the
date it entered service (vehicle age for risk models). A dataset's ``fleet.csv`` is a
valid registry. Extra columns are ignored.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from twins import geohash
from twins.errors import ConfigurationError


@dataclass
class Registry:
    """Per-VIN facts from the registry (empty without one)."""

    home_cells: dict[str, str] = field(default_factory=dict)
    in_service_ms: dict[str, int] = field(default_factory=dict)


def load_registry(path: Path | None, precision: int) -> Registry:
    """Read the registry; bad rows raise :class:`ConfigurationError` naming line and value."""
    reg = Registry()
    if path is None:
        return reg
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            missing = {"vin", "home_lat", "home_lon"} - set(reader.fieldnames or ())
            if missing:
                raise ConfigurationError(f"FLEET_VEHICLE_REGISTRY {path}: missing columns {sorted(missing)}")
            for line, row in enumerate(reader, start=2):
                try:
                    reg.home_cells[row["vin"]] = geohash.encode(float(row["home_lat"]), float(row["home_lon"]),
                                                                precision)
                    if row.get("in_service_date"):
                        day = date.fromisoformat(row["in_service_date"][:10])
                        reg.in_service_ms[row["vin"]] = int(
                            datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)
                except ValueError as exc:
                    raise ConfigurationError(f"FLEET_VEHICLE_REGISTRY {path} line {line}: {exc} in {row!r}") from None
    except OSError as exc:
        raise ConfigurationError(f"FLEET_VEHICLE_REGISTRY {path!s} cannot be read: {exc}") from None
    return reg


def load_home_cells(path: Path | None, precision: int) -> dict[str, str]:
    """VIN -> home weather cell (see :func:`load_registry`)."""
    return load_registry(path, precision).home_cells
