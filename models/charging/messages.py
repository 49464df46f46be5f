"""Proposed message contract for the stream wiring: tagged msgspec Structs + a pure dispatcher.

Topics (key = ``site_id`` everywhere, so one partition owns a site's Planner):

- ``fleet.charging.requests``: ``PlugIn`` / ``PlugOut``
- ``fleet.grid``: ``GridUpdate`` / ``DemandResponse``
- ``fleet.charging.schedules``: ``SitePlan`` (``results.py``), one per re-plan

``Tick`` is what a timer sends to re-plan on elapsed time. ``apply(planner, msg)``
is all a stream processor needs; the planner's ``state()`` is its table value.

>>> raw = (b'{"type":"plug_out","site_id":"depot-1","vin":"V1",'
...        b'"at":"2026-03-03T18:00:00-08:00"}')
>>> msg = decode_message(raw)
>>> type(msg).__name__, msg.site_id, msg.at.isoformat()
('PlugOut', 'depot-1', '2026-03-03T18:00:00-08:00')
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from models.charging.planner import Planner
from models.charging.results import SitePlan
from models.charging.types import DemandResponseEvent, GridSignals, SessionRequest
from twins.errors import InvalidReading
from twins.reading import strict_decode

__all__ = ["PlugIn", "PlugOut", "GridUpdate", "DemandResponse", "Tick", "ChargingMessage", "decode_message",
           "encode", "message_site", "apply"]


class PlugIn(msgspec.Struct, frozen=True, tag="plug_in", tag_field="type", forbid_unknown_fields=True):
    """A vehicle plugged in (or updated its request) at ``at``."""

    request: SessionRequest
    at: datetime


class PlugOut(msgspec.Struct, frozen=True, tag="plug_out", tag_field="type", forbid_unknown_fields=True):
    """A vehicle left its charger at ``at``."""

    site_id: str
    vin: str
    at: datetime


class GridUpdate(msgspec.Struct, frozen=True, tag="grid", tag_field="type", forbid_unknown_fields=True):
    """New prices / peak windows / DR events for a site, valid from ``at``."""

    signals: GridSignals
    at: datetime


class DemandResponse(msgspec.Struct, frozen=True, tag="dr_event", tag_field="type", forbid_unknown_fields=True):
    """A demand-response event announced at ``at`` (added to the site's signals, same id replaces)."""

    site_id: str
    event: DemandResponseEvent
    at: datetime


class Tick(msgspec.Struct, frozen=True, tag="tick", tag_field="type", forbid_unknown_fields=True):
    """Elapsed time: re-plan if the planner's interval has passed."""

    site_id: str
    at: datetime


ChargingMessage = PlugIn | PlugOut | GridUpdate | DemandResponse | Tick
_decoder = msgspec.json.Decoder(ChargingMessage)
_encoder = msgspec.json.Encoder()
_object_decoder = msgspec.json.Decoder(dict[str, Any])


def decode_message(raw: bytes) -> ChargingMessage:
    """Decode and validate one message; :class:`~twins.errors.InvalidReading` names the field and value."""
    return strict_decode(_decoder, raw)


def decode_object(raw: bytes) -> dict[str, Any]:
    """A message as a plain JSON object (to be completed before :func:`decode_message`); InvalidReading else."""
    doc = strict_decode(_object_decoder, raw)
    if not isinstance(doc.get("type"), str):
        raise InvalidReading("a charging message needs a string field type (plug_in, plug_out, grid, dr_event)",
                             "$.type", doc.get("type"))
    return doc


def encode(obj: ChargingMessage | SitePlan) -> bytes:
    """JSON bytes of a message or a plan."""
    return _encoder.encode(obj)


def message_site(msg: ChargingMessage) -> str:
    """The site a message belongs to (the Kafka key)."""
    if isinstance(msg, PlugIn):
        return msg.request.site_id
    if isinstance(msg, GridUpdate):
        return msg.signals.site_id
    return msg.site_id


def apply(planner: Planner, msg: ChargingMessage) -> SitePlan | None:
    """Feed one message to the site's planner; returns the new plan (None for a tick that is not due)."""
    if message_site(msg) != planner.site.id:
        raise ValueError(f"message for site {message_site(msg)!r} sent to the planner of {planner.site.id!r}")
    if isinstance(msg, PlugIn):
        return planner.plug_in(msg.request, msg.at)
    if isinstance(msg, PlugOut):
        return planner.plug_out(msg.vin, msg.at)
    if isinstance(msg, GridUpdate):
        return planner.update_signals(msg.signals, msg.at)
    if isinstance(msg, DemandResponse):
        return planner.demand_response(msg.event, msg.at)
    return planner.tick(msg.at)
