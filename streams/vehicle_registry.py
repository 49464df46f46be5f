"""Home cells of vehicles from an optional registry CSV (``vin,home_lat,home_lon``)."""

from __future__ import annotations

import csv
from pathlib import Path

from twins import geohash
from twins.errors import ConfigurationError


def load_home_cells(path: Path | None, precision: int) -> dict[str, str]:
    """VIN -> home weather cell; empty without a registry. Bad rows name line and value."""
    if path is None:
        return {}
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            missing = {"vin", "home_lat", "home_lon"} - set(reader.fieldnames or ())
            if missing:
                raise ConfigurationError(f"FLEET_VEHICLE_REGISTRY {path}: missing columns {sorted(missing)}")
            cells = {}
            for line, row in enumerate(reader, start=2):
                try:
                    cells[row["vin"]] = geohash.encode(float(row["home_lat"]), float(row["home_lon"]), precision)
                except ValueError as exc:
                    raise ConfigurationError(f"FLEET_VEHICLE_REGISTRY {path} line {line}: {exc} in {row!r}") from None
            return cells
    except OSError as exc:
        raise ConfigurationError(f"FLEET_VEHICLE_REGISTRY {path!s} cannot be read: {exc}") from None
