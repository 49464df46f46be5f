"""Vehicle position as an east/north offset (km) from its depot, moved along a wandering heading.

Headings are radians clockwise from north. While driving the heading does a
random walk scaled by the distance covered; beyond ~60 % of the region's roam
radius it is pulled back toward the depot, and once the distance left in the
shift is about the distance home the vehicle heads straight for the depot, so
it arrives as the shift ends.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]
KM_PER_DEG_LAT = 111.32
WANDER_RAD_PER_SQRT_KM = 0.6


def _wrap(angle: Array) -> Array:
    return (angle + np.pi) % (2.0 * np.pi) - np.pi


def move(east: Array, north: Array, heading: Array, dist_km: Array, remaining_km: Array,
         roam_km: Array, noise: Array) -> tuple[Array, Array, Array]:
    """Advance positions by ``dist_km`` (0 for stationary vehicles); ``noise`` ~ N(0, 1) per vehicle."""
    moving = dist_km > 0.0
    r = np.hypot(east, north)
    home = np.arctan2(-east, -north)
    heading = heading + WANDER_RAD_PER_SQRT_KM * np.sqrt(dist_km) * noise
    pull = np.clip((r - 0.6 * roam_km) / (0.4 * roam_km), 0.0, 1.0)
    heading = heading + pull * _wrap(home - heading)
    homing = remaining_km <= 1.05 * r + 0.3
    heading = np.where(homing, home, heading)
    step = np.where(homing, np.minimum(dist_km, r), dist_km)
    e = east + step * np.sin(heading)
    n = north + step * np.cos(heading)
    r_new = np.hypot(e, n)
    scale = np.where(r_new > roam_km, roam_km / np.maximum(r_new, 1e-9), 1.0)
    e, n = e * scale, n * scale
    return np.where(moving, e, east), np.where(moving, n, north), _wrap(heading)


def to_lat_lon(depot_lat: Array, depot_lon: Array, east: Array, north: Array) -> tuple[Array, Array]:
    """Convert depot-relative km offsets to WGS 84 degrees (local flat-earth approximation)."""
    lat = depot_lat + north / KM_PER_DEG_LAT
    lon = depot_lon + east / (KM_PER_DEG_LAT * np.cos(np.radians(depot_lat)))
    return lat, lon
