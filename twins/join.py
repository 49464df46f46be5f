"""Joining a twin to its weather cell: from the last known location, else the home cell."""

from __future__ import annotations

from twins import geohash
from twins.residency import note_location
from twins.signals import SLOT
from twins.twin import Twin

_LAT = SLOT["Vehicle.CurrentLocation.Latitude"]
_LON = SLOT["Vehicle.CurrentLocation.Longitude"]


def cell_of(twin: Twin, precision: int, home_cell: str) -> str:
    """The weather cell of the twin's last known position, or ``home_cell`` without a fix."""
    lat, lon = twin.values[_LAT], twin.values[_LON]
    if lat is None or lon is None:
        return home_cell
    return geohash.encode(lat, lon, precision)


def note_residency(twin: Twin, first_ts: int, last_ts: int, precision: int, home_cell: str) -> None:
    """Record (in place) that the twin spent ``first_ts``..``last_ts`` in its current cell."""
    cell = cell_of(twin, precision, home_cell)
    note_location(twin.residency, first_ts, cell)
    if last_ts != first_ts:
        note_location(twin.residency, last_ts, cell)
