"""Real Caltech ACN sessions (March 2019) as scheduler inputs.

``models/data/charging/acn/caltech_2019-03_sessions.csv`` holds 954 sessions at
47 stations (208 V, 6.6 kW). The ``*_period`` columns are 5-minute *wall-clock*
indices from 2019-03-01 00:00 (acnportal ignores DST), while ``arrival_local``
/ ``departure_local`` carry the UTC offset; we use the latter, so sessions that
span the 2019-03-10 DST change last their true duration.

>>> sessions = load_acn_sessions()
>>> len(sessions), len({s.station_id for s in sessions})
(954, 47)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from importlib import resources

import msgspec

from models.charging.types import Charger, SessionRequest, Site

__all__ = ["AcnSession", "load_acn_sessions", "acn_site", "acn_requests", "ACN_TIMEZONE"]

ACN_TIMEZONE = "America/Los_Angeles"
_PKG = "models.data.charging.acn"
_FILE = "caltech_2019-03_sessions.csv"


class AcnSession(msgspec.Struct, frozen=True):
    """One real charging session."""

    session_id: str
    station_id: str
    arrival: datetime
    departure: datetime
    arrival_period: int
    departure_period: int
    requested_kwh: float
    max_kw: float


def load_acn_sessions() -> list[AcnSession]:
    """All 954 sessions, in file order (sorted by arrival)."""
    text = resources.files(_PKG).joinpath(_FILE).read_text()
    out = []
    for row in csv.DictReader(io.StringIO(text)):
        out.append(AcnSession(
            session_id=row["session_id"], station_id=row["station_id"],
            arrival=datetime.fromisoformat(row["arrival_local"]),
            departure=datetime.fromisoformat(row["departure_local"]),
            arrival_period=int(row["arrival_period"]), departure_period=int(row["departure_period"]),
            requested_kwh=float(row["requested_energy_kwh"]), max_kw=float(row["max_power_kw"])))
    return out


def acn_site(sessions: Sequence[AcnSession], cap_kw: float, site_id: str = "caltech-acn") -> Site:
    """The Caltech garage as one site: one 6.6 kW AC charger per station, one aggregate cap."""
    stations = sorted({s.station_id for s in sessions})
    kw = {s.station_id: s.max_kw for s in sessions}
    return Site(site_id, ACN_TIMEZONE, cap_kw, tuple(Charger(st, kw[st], "AC") for st in stations))


def acn_requests(sessions: Sequence[AcnSession], site_id: str = "caltech-acn") -> list[SessionRequest]:
    """Energy requests keyed by session id (ACN has no VINs); vehicle limit = station power."""
    return [SessionRequest(vin=s.session_id, site_id=site_id, plug_in=s.arrival, departure=s.departure,
                           max_kw=s.max_kw, energy_kwh=s.requested_kwh, charger_id=s.station_id)
            for s in sessions]
