"""Operating regions: a TMY weather site, a home depot and a local time zone."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Region:
    """One operating region of the fleet.

    ``lat``/``lon`` is the home depot (the TMY station itself), ``site_id`` the
    weather file in ``models/data/weather``, ``timezone`` an IANA zone used for
    the drivers' local schedule; ``roam_km`` bounds how far vehicles wander.
    """

    id: str
    name: str
    site_id: str
    lat: float
    lon: float
    timezone: str
    roam_km: float = 30.0


REGIONS: dict[str, Region] = {
    "miami": Region("miami", "Miami, FL (hot-humid)", "12839", 25.8, -80.2667, "America/New_York"),
    "greensboro": Region("greensboro", "Greensboro, NC (temperate)", "723170", 36.1, -79.95,
                         "America/New_York"),
    # Sand Point sits on a small island: keep routes local.
    "sand-point": Region("sand-point", "Sand Point, AK (cold)", "703165", 55.317, -160.517,
                         "America/Anchorage", roam_km=12.0),
}
