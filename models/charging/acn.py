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

from models.charging.network import Node
from models.charging.types import Charger, SessionRequest, Site

__all__ = ["AcnSession", "load_acn_sessions", "acn_site", "acn_requests", "caltech_site", "ACN_TIMEZONE"]

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


_CC_POD = ("CA-322", "CA-493", "CA-496", "CA-320", "CA-495", "CA-321", "CA-323", "CA-494")
_AV_POD = ("CA-324", "CA-325", "CA-326", "CA-327", "CA-489", "CA-490", "CA-491", "CA-492")
_PAIRS = {"AB": (308, 508, 303, 513, 310, 506, 316, 500, 318, 498),
          "BC": (304, 512, 305, 511, 313, 503, 311, 505, 317, 499, 148, 149, 212, 213),
          "CA": (307, 509, 309, 507, 306, 510, 315, 501, 319, 497, 312, 504, 314, 502)}


def caltech_site(transformer_kva: float = 150.0, site_id: str = "caltech-acn") -> Site:
    """The Caltech ACN garage with its electrical tree, as in ACN-Sim's ``caltech_acn(basic_evse=False)``.

    54 EVSEs at 208 V on phase pairs behind a delta-wye transformer (480 V / 120 V line-to-neutral,
    ``transformer_kva`` per-line limits on both sides); two 80 A pods on AB. AeroVironment EVSEs take
    0 or 6..32 A in 1 A steps, ClipperCreek ones 0, 8, 16, 24, 32 A. ``cap_kw`` is left loose: the tree binds.

    >>> site = caltech_site(50.0)
    >>> len(site.chargers), [n.id for n in site.nodes], site.charger("CA-322").step_a
    (54, ['transformer', 'cc-pod', 'av-pod'], 8.0)
    """
    def evse(cid: str, phases: str, panel: str, cc: bool = False) -> Charger:
        return Charger(cid, 6.656, "AC", panel=panel, phases=phases, voltage_v=208.0, min_a=8.0 if cc else 6.0,
                       max_a=32.0, step_a=8.0 if cc else 1.0)

    chargers = ([evse(f"CA-{i}", "AB", "transformer") for i in _PAIRS["AB"]]
                + [evse(c, "AB", "av-pod") for c in _AV_POD] + [evse(c, "AB", "cc-pod", cc=True) for c in _CC_POD]
                + [evse(f"CA-{i}", ph, "transformer") for ph in ("BC", "CA") for i in _PAIRS[ph]])
    nodes = (Node("transformer", "transformer", kva=transformer_kva, voltage_v=120.0 * 3 ** 0.5, primary_v=480.0),
             Node("cc-pod", "panel", parent="transformer", phases="AB", limit_a=80.0),
             Node("av-pod", "panel", parent="transformer", phases="AB", limit_a=80.0))
    return Site(site_id, ACN_TIMEZONE, 10.0 * transformer_kva, tuple(chargers), nodes)
