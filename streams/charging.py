"""Fleet charging in the stream: requests and grid signals -> per-site Planner -> schedules.

Topics ``fleet.charging.requests`` and ``fleet.grid`` are keyed by site id and
co-partitioned, so one worker owns a site's ``models.charging.Planner``. Its state
lives in a changelog-backed table (``charging_state``), the newest plan in another
(``charging_plans``, for the API); every re-plan is published on
``fleet.charging.schedules``. Plug-in requests may omit SoC, capacity, power and
target: they are completed from the vehicle's twin (``models.charging.enrich``),
wherever in the group that twin lives. A timer re-plans each owned site every
``FLEET_CHARGING_REPLAN_MINUTES``.

The agent takes its input in batches (up to ``BATCH_MAX`` messages, waiting at most
``BATCH_WITHIN_S`` after the first): every message passes the decoding boundary on
its own (a bad one is dead-lettered alone), then each site's messages of the batch
go to its planner together (``apply_batch``): one re-plan and one published plan
per site per batch, however many plug-ins, plug-outs, meter readings and grid
events it holds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from typing import Any

import aiohttp
import msgspec

from models.charging import GridSignals, Planner, PlannerState
from models.charging.enrich import complete_request
from models.charging.messages import ChargingMessage, apply_batch, decode_message, decode_object, encode, message_site
from streams import metrics
from streams.auth import peer_headers
from streams.charging_sites import SiteConfig, load_sites
from streams.dead_letter import DeadLetters, Rejection
from streams.settings import Settings
from twins.decoding import check_key, check_not_future, decode_input
from twins.errors import InvalidReading
from twins.reading import is_vin
from twins.view import twin_view

log = logging.getLogger(__name__)
_SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
_state_decoder = msgspec.json.Decoder(PlannerState)
BATCH_MAX = 500  # messages per batch
BATCH_WITHIN_S = 0.5  # the longest a message waits for others to join its batch


def flat_signals(site_id: str, at: datetime, price: float = 0.2) -> GridSignals:
    """Grid signals before the site's first ``fleet.grid`` message: a flat price, no peak window."""
    return GridSignals(site_id, at.replace(minute=at.minute - at.minute % 15, second=0, microsecond=0),
                       tuple([price] * 96))


async def twin_snapshot(app: Any, vin: str) -> dict[str, Any] | None:
    """The twin's API view from whichever worker owns the VIN (None if unknown)."""
    settings = app.fleet_settings
    try:
        owner = str(app.router.key_store(app.twins.name, vin.encode())).rstrip("/")
    except Exception:  # no assignment metadata yet: only the local state can answer
        owner = str(app.conf.canonical_url).rstrip("/")
    if owner == str(app.conf.canonical_url).rstrip("/"):
        twin = app.ingest.get_twin(vin)
        return None if twin is None else twin_view(twin, int(time.time() * 1000), settings.stale_after_ms)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            async with session.get(f"{owner}/twins/{vin}", headers=peer_headers(app)) as resp:
                return await resp.json() if resp.status == 200 else None
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        log.warning("twin of %s not available from %s (%s); the request must carry its own SoC", vin, owner, exc)
        return None


def register_charging(app: Any, settings: Settings) -> None:
    """Create the charging topics, tables, agent, timer and ``app.charging_sites``."""
    sites: dict[str, SiteConfig] = load_sites(settings.charging_sites)
    app.charging_sites = sites
    state_table = app.Table("charging_state", default=None, partitions=settings.partitions, key_type=bytes,
                            value_type=bytes, use_partitioner=True, help="PlannerState JSON per site.")
    plans_table = app.Table("charging_plans", default=None, partitions=settings.partitions, key_type=bytes,
                            value_type=bytes, use_partitioner=True, help="Newest SitePlan JSON per site.")
    app.charging_plans = plans_table
    app.charging_state = state_table
    schedules = app.topic(settings.topic_charging_schedules, key_type=bytes, value_type=bytes,
                          partitions=settings.partitions)
    dlq = app.topic(settings.topic_charging_dlq, key_type=bytes, value_type=bytes, key_serializer="raw",
                    value_serializer="raw", partitions=settings.partitions)
    inputs = app.topic(settings.topic_charging_requests, settings.topic_grid, key_type=bytes, value_type=bytes,
                       key_serializer="raw", value_serializer="raw", partitions=settings.partitions)
    dead_letters = {topic: DeadLetters(dlq, topic, settings.partitions, settings.dlq_max_value_bytes)
                    for topic in (settings.topic_charging_requests, settings.topic_grid)}
    limits = settings.input_limits
    planners: dict[str, Planner] = {}

    def planner_for(site_id: str, at: datetime) -> Planner:
        planner = planners.get(site_id)
        if planner is None:
            raw = state_table.get(site_id.encode())
            if raw is not None:
                planner = Planner.from_state(_state_decoder.decode(raw))
            else:
                cfg = sites[site_id]
                planner = Planner(cfg.site, flat_signals(site_id, at),
                                  replan_every_min=settings.charging_replan_minutes)
            planners[site_id] = planner
        return planner

    async def publish(site_id: str, planner: Planner, plan: Any) -> None:
        state_table[site_id.encode()] = msgspec.json.encode(planner.state())
        if plan is not None:
            body = encode(plan)
            plans_table[site_id.encode()] = body
            await schedules.send(key=site_id.encode(), value=body)
            metrics.CHARGING_PLANS.labels(plan.trigger.split(":")[0] or "tick").inc()

    async def admit(msg: Any) -> tuple[str, ChargingMessage]:
        """The decoding boundary of the charging inputs: a typed message for a known site, or InvalidReading."""
        doc = decode_input(msg.value, decode_object, limits)
        if doc.get("type") == "plug_in" and isinstance(doc.get("request"), dict):
            req = doc["request"]
            site_id, vin = req.get("site_id"), req.get("vin")
            if site_id not in sites:
                raise InvalidReading(f"unknown site {str(site_id)[:64]!r}; configured sites: {sorted(sites)[:20]}",
                                     "$.request.site_id", site_id, code="unknown_site")
            if not is_vin(vin):
                raise InvalidReading(f"request.vin {str(vin)[:64]!r} is not a VIN", "$.request.vin", vin)
            snap = await twin_snapshot(app, vin)
            signals = (snap or {}).get("signals", {})
            soc = signals.get(_SOC, {}).get("value")
            charger = req.get("charger_id")
            dc = any(c.id == charger and c.kind == "DC" for c in sites[site_id].site.chargers)
            try:
                doc["request"] = complete_request(req, soc, (snap or {}).get("model"),
                                                  (snap or {}).get("history", {}) or {}, dc)
            except ValueError as exc:
                raise InvalidReading(str(exc), "$.request", None) from None
        cmsg = decode_input(msgspec.json.encode(doc), decode_message, limits)
        site_id = message_site(cmsg)
        if site_id not in sites:
            raise InvalidReading(f"unknown site {site_id[:64]!r}; configured sites: {sorted(sites)[:20]}",
                                 "$.site_id", site_id, code="unknown_site")
        check_key(msg.key, site_id, "$.site_id", "site id")
        check_not_future(int(cmsg.at.timestamp() * 1000), int(time.time() * 1000), limits, "$.at")
        return site_id, cmsg

    async def reject(msg: Any, exc: InvalidReading) -> None:
        await dead_letters[msg.topic].send([Rejection(
            msg.key, msg.value, exc, msg.partition, msg.offset, int(msg.timestamp * 1000) if msg.timestamp else None)])

    @app.agent(inputs, name="charging-planner")
    async def charging_planner(stream: Any) -> None:
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            by_site: dict[str, list[tuple[Any, ChargingMessage]]] = {}
            for event in events:
                try:
                    site_id, cmsg = await admit(event.message)
                except InvalidReading as exc:
                    await reject(event.message, exc)
                    continue
                by_site.setdefault(site_id, []).append((event.message, cmsg))
            for site_id, items in by_site.items():
                planner = planner_for(site_id, items[0][1].at)
                plans, refused = apply_batch(planner, [cmsg for _, cmsg in items])
                metrics.CHARGING_MESSAGES.inc(len(items) - len(refused))
                for i, exc in refused:  # the planner refused it (the error names the field and value)
                    await reject(items[i][0], InvalidReading(str(exc), "$", None, code="processing"))
                for plan in plans:
                    await publish(site_id, planner, plan)
                if not plans:
                    await publish(site_id, planner, None)

    @app.timer(interval=60.0)
    async def replan_due() -> None:
        now = datetime.now(timezone.utc)
        for site_id in sites:
            if site_id not in planners and state_table.data.get(site_id.encode()) is None:
                continue  # not owned here, or nothing planned yet
            try:
                planner = planner_for(site_id, now)
                plan = planner.tick(now)
            except Exception:  # noqa: BLE001 - one site's failure must not stop the others or the worker
                log.exception("re-planning site %s failed; it is tried again at the next tick", site_id)
                continue
            if plan is not None:
                await publish(site_id, planner, plan)

    @app.on_partitions_revoked.connect
    async def _forget(app_: Any, revoked: Any, **kwargs: Any) -> None:
        planners.clear()  # rebuilt from the changelog-backed state on next use

