"""Proposed message contract for the stream wiring: tagged msgspec Structs + a pure dispatcher.

Topics (key = ``site_id`` everywhere, so one partition owns a site's Planner):

- ``fleet.charging.requests``: ``PlugIn`` / ``PlugOut`` / ``Meter`` (a session's metered energy)
- ``fleet.grid``: ``GridUpdate`` / ``DemandResponse``
- ``fleet.charging.schedules``: ``SitePlan`` (``results.py``), one per re-plan

``Tick`` is what a timer sends to re-plan on elapsed time. ``apply(planner, msg)``
feeds one message; ``apply_batch(planner, msgs)`` feeds the messages a stream
processor took together for one site with a single re-plan. The planner's
``state()`` is its table value.

>>> raw = (b'{"type":"plug_out","site_id":"depot-1","vin":"V1",'
...        b'"at":"2026-03-03T18:00:00-08:00"}')
>>> msg = decode_message(raw)
>>> type(msg).__name__, msg.site_id, msg.at.isoformat()
('PlugOut', 'depot-1', '2026-03-03T18:00:00-08:00')
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

import msgspec

from models.charging.planner import Planner
from models.charging.results import SitePlan
from models.charging.types import MAX_SESSION_KWH, DemandResponseEvent, GridSignals, SessionRequest
from twins.errors import InvalidReading
from twins.reading import strict_decode

__all__ = ["PlugIn", "PlugOut", "Meter", "GridUpdate", "DemandResponse", "Tick", "ChargingMessage",
           "decode_message", "encode", "message_site", "apply", "apply_batch"]


class PlugIn(msgspec.Struct, frozen=True, tag="plug_in", tag_field="type", forbid_unknown_fields=True):
    """A vehicle plugged in (or updated its request) at ``at``."""

    request: SessionRequest
    at: datetime


class PlugOut(msgspec.Struct, frozen=True, tag="plug_out", tag_field="type", forbid_unknown_fields=True):
    """A vehicle left its charger at ``at``."""

    site_id: str
    vin: str
    at: datetime


class Meter(msgspec.Struct, frozen=True, tag="meter", tag_field="type", forbid_unknown_fields=True):
    """A meter reading: battery-side kWh ``vin`` has received in its current session, read at ``at``. It
    replaces the planner's integrated energy; a vehicle that took less than offered gets its acceptance rate
    lowered to what it took (``Planner.record_delivery``)."""

    site_id: str
    vin: str
    delivered_kwh: Annotated[float, msgspec.Meta(ge=0.0, le=MAX_SESSION_KWH)]
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


ChargingMessage = PlugIn | PlugOut | Meter | GridUpdate | DemandResponse | Tick
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
        raise InvalidReading("a charging message needs a string field type (plug_in, plug_out, meter, grid, "
                             "dr_event)",
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
    if isinstance(msg, Meter):
        return planner.update(msg.at, deliveries={msg.vin: msg.delivered_kwh})
    if isinstance(msg, GridUpdate):
        return planner.update_signals(msg.signals, msg.at)
    if isinstance(msg, DemandResponse):
        return planner.demand_response(msg.event, msg.at)
    return planner.tick(msg.at)


def _vin(msg: ChargingMessage) -> str | None:
    if isinstance(msg, PlugIn):
        return msg.request.vin
    return msg.vin if isinstance(msg, (PlugOut, Meter)) else None


def _update(planner: Planner, msgs: Sequence[ChargingMessage]) -> SitePlan | None:
    """One ``Planner.update`` for messages that touch each vehicle at most once, at their latest time."""
    now = max(m.at for m in msgs)
    events = [m for m in msgs if not isinstance(m, Tick)]
    if not events:
        return planner.tick(now)
    grid = [m.signals for m in events if isinstance(m, GridUpdate)]
    return planner.update(now, plug_ins=[m.request for m in events if isinstance(m, PlugIn)],
                          plug_outs=[m.vin for m in events if isinstance(m, PlugOut)],
                          deliveries={m.vin: m.delivered_kwh for m in events if isinstance(m, Meter)},
                          signals=grid[-1] if grid else None,
                          dr_events=[m.event for m in events if isinstance(m, DemandResponse)])


def apply_batch(planner: Planner, msgs: Sequence[ChargingMessage]
                ) -> tuple[list[SitePlan], list[tuple[int, Exception]]]:
    """Feed messages taken together for one site with one re-plan; returns (plans, refused).

    The messages are applied in order as few ``Planner.update`` calls as possible: one, unless a vehicle
    appears twice (e.g. plugs out and in again), where a new update starts so its events keep their order.
    Each update runs at its messages' latest ``at`` (a batch spans at most the stream's batch window). A
    batch of ticks only re-plans if due. If the planner refuses the batch (ValueError / UnknownSession),
    the messages are applied one by one instead, and ``refused`` lists (index, error) of those it refuses,
    for the dead-letter topic; the others are still applied.
    """
    if any(message_site(m) != planner.site.id for m in msgs):
        return _one_by_one(planner, msgs)
    parts: list[list[ChargingMessage]] = [[]]
    seen: set[str] = set()
    for m in msgs:
        vin = _vin(m)
        if vin is not None and vin in seen:
            parts.append([])
            seen = set()
        if vin is not None:
            seen.add(vin)
        parts[-1].append(m)
    before = planner.checkpoint()
    plans = []
    try:
        for part in parts:
            plan = _update(planner, part)
            if plan is not None:
                plans.append(plan)
    except (ValueError, KeyError):
        # start again from before the batch, message by message, so that only the bad ones are refused
        planner.rollback(before)
        return _one_by_one(planner, msgs)
    return plans, []


def _one_by_one(planner: Planner, msgs: Sequence[ChargingMessage]
                ) -> tuple[list[SitePlan], list[tuple[int, Exception]]]:
    plans, refused = [], []
    for i, m in enumerate(msgs):
        try:
            plan = apply(planner, m)
        except (ValueError, KeyError) as exc:
            refused.append((i, exc))
            continue
        if plan is not None:
            plans.append(plan)
    return plans, refused
