"""HTTP API (JSON) served by every worker.

Single-vehicle reads are routed to the worker that owns the VIN's partition
(:func:`streams.routing.owner_route`: 503 with ``Retry-After`` while it is moving). Fleet-wide reads scatter to every worker's ``?local=1``
variant and merge, so any worker answers for the whole fleet.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import msgspec
from faust import web

from streams import http_input, metrics
from streams.api_spec import MAX_LIMIT, PAGE_MAX, SCOPE_OF, openapi
from streams.audit import read_audit
from streams.auth import AuthError, guard, peer_headers
from streams.http_input import query_int
from streams.kafka_security import aiokafka_kwargs
from streams.routing import RETRY_AFTER_S, owner_route
from twins.reading import is_vin
from twins.brief import decode_brief
from twins.twin import is_stale
from twins.maintenance import COMPONENTS
from twins.risk import risk_view
from twins.view import FleetSummary, twin_brief, twin_view
from twins.weather import context



log = logging.getLogger(__name__)
#: Refused requests written to the audit trail per second at most (all are counted in fleet_api_denied_total).
DENIALS_AUDITED_PER_S = 20
#: stored twins decoded per step of a fleet listing (the event loop runs between steps)
BRIEF_CHUNK = 2_000


def _now_ms() -> int:
    return int(time.time() * 1000)


async def local_briefs(app: Any) -> list[Any]:
    """Briefs (``twins.brief``) of the twins of this worker's active partitions, unflushed changes included
    (those as twin objects). Records are decoded in chunks of :data:`BRIEF_CHUNK` with the event loop
    free in between: 100,000 twins would otherwise hold every batch up for ~0.4 s."""
    settings = app.fleet_settings
    actives = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == settings.topic_telemetry}
    dirty = app.ingest.dirty
    out: list[Any] = [decode_brief(t) if type(t) is bytes else t for t in dirty.values()]
    part = app.ingest.partition_of_key  # cached murmur2: hashing every key cost half as much as its brief
    stored = [raw for key, raw in list(app.twins.data.items())
              if raw is not None and part(key) in actives and key.decode() not in dirty]
    for i in range(0, len(stored), BRIEF_CHUNK):
        out += map(decode_brief, stored[i:i + BRIEF_CHUNK])
        await asyncio.sleep(0)
    metrics.TWINS_LOCAL.set(len(out))
    return out


def _peer_urls(app: Any) -> list[str]:
    me = str(app.conf.canonical_url).rstrip("/")
    hosts = {str(h).rstrip("/") for h in app.router.table_metadata(app.twins.name)}
    return sorted(h for h in hosts if h != me)


async def _gather(app: Any, request: web.Request, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    """GET ``path?local=1`` on every other worker (with the caller's token); a worker that fails is reported."""
    urls = _peer_urls(app)
    if not urls:
        return []
    timeout = aiohttp.ClientTimeout(total=5)
    headers = peer_headers(app, request)

    async def one(session: aiohttp.ClientSession, base: str) -> dict[str, Any]:
        try:
            async with session.get(f"{base}{path}", params={**params, "local": "1"}, headers=headers) as resp:
                resp.raise_for_status()
                return {"worker": base, "body": await resp.json()}
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            return {"worker": base, "error": f"{type(exc).__name__}: {exc}"}

    async with aiohttp.ClientSession(timeout=timeout) as session:
        return list(await asyncio.gather(*(one(session, u) for u in urls)))


def _bool_param(request: web.Request, name: str) -> bool | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise ValueError(f"query parameter {name}={raw!r} must be true or false")


def register_views(app: Any) -> None:
    """Attach the API to ``app``."""
    settings = app.fleet_settings
    stale_ms = settings.stale_after_ms
    http_input.install(app.web.web_app)
    denials = [0, 0]  # [second, refusals in it]
    for status in ("401", "403"):
        metrics.AUTH_DENIED.labels(status)

    async def on_denied(request: web.Request, exc: AuthError) -> None:
        metrics.AUTH_DENIED.labels(str(exc.status)).inc()
        second = int(time.monotonic())
        denials[:] = [second, denials[1] + 1 if denials[0] == second else 1]
        if denials[1] <= DENIALS_AUDITED_PER_S:  # a flood is counted, not written record by record
            await app.audit.record(exc.sub or "anonymous", "authorization", f"{request.method} {request.path}",
                                   request.remote or "", "denied", str(exc))

    query_token = {"/alerts/stream"} if settings.auth_sse_query_token else set()
    app.web.web_app.middlewares.append(guard(SCOPE_OF, app.verifier, settings.metrics_access, query_token, on_denied))
    if app.verifier is None:
        log.warning("FLEET_AUTH_MODE=off: the API answers anyone, with every scope. For development only.")

    @app.page("/healthz")
    class Health(web.View):
        async def get(self, request: web.Request) -> web.Response:
            return self.json({"status": "ok"})

    @app.page("/readyz")
    class Ready(web.View):
        async def get(self, request: web.Request) -> web.Response:
            reasons = app.readiness.reasons()
            body = {"ready": not reasons, "reasons": reasons,
                    "broker_reachable": app.readiness.broker_reachable, "rebalancing": bool(app.rebalancing),
                    "assigned_partitions": len(app.assignor.assigned_actives())}
            if app.verifier is None:
                body["warning"] = "FLEET_AUTH_MODE=off: the API is open to anyone"
            return self.json(body, status=503 if reasons else 200,
                             headers=None if not reasons else {"Retry-After": str(RETRY_AFTER_S)})

    @app.page("/audit")
    class Audit(web.View):
        async def get(self, request: web.Request) -> web.Response:
            since = query_int(request.query, "since", 0, 0, 2**53)
            limit = query_int(request.query, "limit", 100, 1, PAGE_MAX)
            sub = request.query.get("sub")
            records = await read_audit(settings.bootstrap_servers, settings.topic_audit, since, sub, limit,
                                       **aiokafka_kwargs(settings))
            return self.bytes(msgspec.json.encode({"count": len(records), "records": records}),
                              content_type="application/json")

    @app.page("/openapi.json")
    class OpenApi(web.View):
        async def get(self, request: web.Request) -> web.Response:
            return self.json(openapi())

    @app.page("/metrics")
    class Metrics(web.View):
        async def get(self, request: web.Request) -> web.Response:
            names = [n for n in request.query.get("name", "").split(",") if n]
            return self.bytes(metrics.render(names), content_type="text/plain; version=0.0.4")

    @app.page("/twins/{vin}")
    class TwinDetail(web.View):
        @owner_route(app)
        async def get(self, request: web.Request, vin: str) -> web.Response:
            if not is_vin(vin):
                return self.json({"error": f"{vin!r} is not a VIN (17 characters, no I, O or Q)"}, status=400)
            twin = app.ingest.get_twin(vin)
            if twin is None:
                return self.json(
                    {"error": f"no twin for VIN {vin!r}: the fleet has sent no valid telemetry for it yet"},
                    status=404,
                )
            return self.json(twin_view(twin, _now_ms(), stale_ms, app.cell_weather, app.hourly_weather))

    @app.page("/twins/{vin}/risk")
    class TwinRisk(web.View):
        @owner_route(app)
        async def get(self, request: web.Request, vin: str) -> web.Response:
            if not is_vin(vin):
                return self.json({"error": f"{vin!r} is not a VIN (17 characters, no I, O or Q)"}, status=400)
            twin = app.ingest.get_twin(vin)
            if twin is None:
                return self.json({"error": f"no twin for VIN {vin!r}"}, status=404)
            if twin.risk is None:
                reason = ("no risk model is loaded (set FLEET_RISK_MODEL_DIR)" if app.scorer.models is None
                          else "the vehicle has not been scored yet")
                return self.json({"vin": vin, "risk": None, "reason": reason}, status=200)
            return self.json({"vin": vin, **risk_view(twin.risk)})

    @app.page("/fleet/risk")
    class FleetRisk(web.View):
        async def get(self, request: web.Request) -> web.Response:
            component = request.query.get("component")
            top = query_int(request.query, "top", 20, 1, MAX_LIMIT)
            try:
                if component is not None and component not in COMPONENTS:
                    raise ValueError(f"query parameter component={component!r} must be one of {list(COMPONENTS)}")
            except ValueError as exc:
                return self.json({"error": str(exc)}, status=400)
            rows = []
            for t in await local_briefs(app):
                if t.risk is None:
                    continue
                pairs = list(zip(t.risk.components, t.risk.probability))
                if component is not None:
                    pairs = [p for p in pairs if p[0] == component]
                if pairs:
                    c, p = max(pairs, key=lambda cp: cp[1])
                    rows.append({"vin": t.vin, "component": c, "probability": p, "model_version": t.risk.version,
                                 "horizon_days": t.risk.horizon_days, "scored_ms": t.risk.scored_ms})
            errors: list[dict[str, str]] = []
            if not request.query.get("local"):
                params = {"top": str(top)} | ({"component": component} if component else {})
                for peer in await _gather(app, request, "/fleet/risk", params):
                    if "error" in peer:
                        errors.append(peer)
                    else:
                        rows.extend(peer["body"]["vehicles"])
            rows.sort(key=lambda r: (-r["probability"], r["vin"]))
            body: dict[str, Any] = {"component": component, "count": min(top, len(rows)), "vehicles": rows[:top],
                                    "model_version": app.scorer.models.version if app.scorer.models else None}
            if errors:
                body["partial"] = errors
            return self.json(body)

    @app.page("/weather/{cell}")
    class WeatherCell(web.View):
        async def get(self, request: web.Request, cell: str) -> web.Response:
            state = app.cell_weather(cell)
            if state is None:
                return self.json({"error": f"no weather for cell {cell!r}: nothing was published to "
                                           f"{settings.topic_weather} for it (cells are geohashes of "
                                           f"{settings.weather_cell_precision} characters)"}, status=404)
            return self.json(context(state))

    @app.page("/twins")
    class TwinList(web.View):
        async def get(self, request: web.Request) -> web.Response:
            try:
                stale = _bool_param(request, "stale")
            except ValueError as exc:
                return self.json({"error": str(exc)}, status=400)
            limit = query_int(request.query, "limit", 100, 1, MAX_LIMIT)
            now = _now_ms()
            rows = [twin_brief(t, now, stale_ms) for t in await local_briefs(app)
                    if stale is None or is_stale(t, now, stale_ms) == stale]
            errors: list[dict[str, str]] = []
            if not request.query.get("local"):
                params = {"limit": str(limit)} | ({"stale": str(stale).lower()} if stale is not None else {})
                for peer in await _gather(app, request, "/twins", params):
                    if "error" in peer:
                        errors.append(peer)
                    else:
                        rows.extend(peer["body"]["twins"])
            rows.sort(key=lambda r: (r["last_seen_ms"], r["vin"]))
            body: dict[str, Any] = {"count": min(len(rows), limit), "twins": rows[:limit]}
            if errors:
                body["partial"] = errors
            return self.json(body)

    @app.page("/fleet/summary")
    class Summary(web.View):
        async def get(self, request: web.Request) -> web.Response:
            now = _now_ms()
            summary = FleetSummary()
            for t in await local_briefs(app):
                summary.add(t, now, stale_ms)
            errors: list[dict[str, str]] = []
            workers = 1
            if not request.query.get("local"):
                for peer in await _gather(app, request, "/fleet/summary", {}):
                    if "error" in peer:
                        errors.append(peer)
                    else:
                        summary.merge(peer["body"])
                        workers += 1
            body = summary.as_dict() | {"workers": workers, "stale_after_s": settings.stale_after_s}
            if errors:
                body["partial"] = errors
            return self.json(body)
