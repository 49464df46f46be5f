"""Geohash cells (Niemeyer's public-domain base-32 scheme) for joining vehicles to weather.

>>> encode(25.8, -80.2667, 4)
'dhwf'
>>> round(decode("dhwf")[0], 2), round(decode("dhwf")[1], 2)
(25.75, -80.33)
"""

from __future__ import annotations

_BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"
_DECODE = {c: i for i, c in enumerate(_BASE32)}
VALID_CHARS = frozenset(_BASE32)


def encode(lat: float, lon: float, precision: int) -> str:
    """Geohash of a WGS 84 point with ``precision`` characters."""
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"latitude {lat!r} / longitude {lon!r} out of range")
    lat_lo, lat_hi, lon_lo, lon_hi = -90.0, 90.0, -180.0, 180.0
    out = []
    bits = 0
    ch = 0
    even = True
    while len(out) < precision:
        if even:
            mid = (lon_lo + lon_hi) / 2
            if lon >= mid:
                ch = (ch << 1) | 1
                lon_lo = mid
            else:
                ch <<= 1
                lon_hi = mid
        else:
            mid = (lat_lo + lat_hi) / 2
            if lat >= mid:
                ch = (ch << 1) | 1
                lat_lo = mid
            else:
                ch <<= 1
                lat_hi = mid
        even = not even
        bits += 1
        if bits == 5:
            out.append(_BASE32[ch])
            bits = 0
            ch = 0
    return "".join(out)


def bounds(cell: str) -> tuple[float, float, float, float]:
    """(lat_min, lat_max, lon_min, lon_max) of a cell."""
    lat_lo, lat_hi, lon_lo, lon_hi = -90.0, 90.0, -180.0, 180.0
    even = True
    for c in cell:
        try:
            value = _DECODE[c]
        except KeyError:
            raise ValueError(f"{cell!r} is not a geohash: {c!r} is not in the base-32 alphabet") from None
        for shift in range(4, -1, -1):
            bit = (value >> shift) & 1
            if even:
                mid = (lon_lo + lon_hi) / 2
                lon_lo, lon_hi = (mid, lon_hi) if bit else (lon_lo, mid)
            else:
                mid = (lat_lo + lat_hi) / 2
                lat_lo, lat_hi = (mid, lat_hi) if bit else (lat_lo, mid)
            even = not even
    return lat_lo, lat_hi, lon_lo, lon_hi


def decode(cell: str) -> tuple[float, float]:
    """Centre (lat, lon) of a cell."""
    lat_lo, lat_hi, lon_lo, lon_hi = bounds(cell)
    return (lat_lo + lat_hi) / 2, (lon_lo + lon_hi) / 2


def cells_around(lat: float, lon: float, radius_km: float, precision: int) -> list[str]:
    """Cells touching a square of half-side ``radius_km`` around a point (sorted)."""
    import math

    dlat = radius_km / 111.0
    dlon = radius_km / (111.0 * max(0.1, math.cos(math.radians(lat))))
    steps = 12
    found = set()
    for i in range(steps + 1):
        for j in range(steps + 1):
            la = max(-90.0, min(90.0, lat - dlat + 2 * dlat * i / steps))
            lo = max(-180.0, min(180.0, lon - dlon + 2 * dlon * j / steps))
            found.add(encode(la, lo, precision))
    return sorted(found)
