"""Alerts API: list, detail, acknowledge, resolve, and a Server-Sent Events stream.

Reads (``GET /alerts``, ``GET /alerts/{id}``, ``GET /alerts/stream``) are answered by any
worker from its view of the alerts topic (:class:`streams.alert_feed.AlertFeed`).
Changes (``POST /alerts/{id}/ack`` and ``/resolve``) run on the worker that owns the
alert's VIN (the id starts with it); another worker forwards the request there.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import msgspec
from aiohttp import web as aioweb
from faust import web

from streams.alerting import AlertNotPublished
from streams.http_input import decode_body, query_int, read_body
from streams.api_spec import BY_MAX, MAX_LIMIT, PAGE_MAX, ActionBody
from twins.alerts.engine import AlertConflict, AlertNotFound
from twins.alerts.rules import COMPONENTS, SEVERITIES
from twins.alerts.state import STATUSES, Alert, encode_alert, parse_alert_id

USER_HEADER = "X-Fleet-User"
FILTERS = ("status", "severity", "component", "region", "vin", "rule")
_ALLOWED = {"status": STATUSES, "severity": SEVERITIES, "component": COMPONENTS}


def parse_filters(query: Any) -> dict[str, set[str]]:
    """``?status=open,acknowledged&severity=major`` -> {name: allowed values}; ValueError naming a bad one."""
    out: dict[str, set[str]] = {}
    for name in FILTERS:
        raw = query.get(name)
        if not raw:
            continue
        values = {v.strip() for v in raw.split(",") if v.strip()}
        allowed = _ALLOWED.get(name)
        bad = sorted(values - set(allowed)) if allowed else []
        if bad:
            raise ValueError(f"query parameter {name}={raw!r}: {bad} not in {list(allowed or ())}")
        out[name] = values
    unknown = sorted(set(query) - set(FILTERS) - {"limit", "offset", "snapshot"})
    if unknown:
        raise ValueError(f"unknown query parameters {unknown}; filters are {list(FILTERS)}, paging limit/offset")
    return out


def matches(alert: Alert, filters: dict[str, set[str]]) -> bool:
    """True when ``alert`` passes every filter (region matches a cell prefix, e.g. ``9t``)."""
    for name, values in filters.items():
        if name == "region":
            if not alert.region or not any(alert.region.startswith(v) for v in values):
                return False
        elif getattr(alert, name) not in values:
            return False
    return True


def _json(view: web.View, body: Any) -> web.Response:
    """A JSON response encoded once by msgspec (alert records are Structs; no dict round trip)."""
    return view.bytes(msgspec.json.encode(body), content_type="application/json")


async def _forward(app: Any, vin: str, request: aioweb.Request, body: bytes) -> aioweb.Response | None:
    """Send the request to the VIN's owner with its body (Faust's router drops bodies); None if that is us."""
    owner = str(app.router.key_store(app.twins.name, vin)).rstrip("/")
    if owner == str(app.conf.canonical_url).rstrip("/"):
        return None
    headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", USER_HEADER.lower())}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        async with session.post(f"{owner}{request.path}", data=body, headers=headers) as resp:
            return aioweb.Response(body=await resp.read(), status=resp.status, content_type="application/json")


def register_alert_views(app: Any) -> None:
    """Attach the alerts API to ``app``."""
    feed = app.alert_feed
    heartbeat_s = app.fleet_settings.sse_heartbeat_s

    @app.page("/alerts")
    class AlertList(web.View):
        async def get(self, request: web.Request) -> web.Response:
            try:
                filters = parse_filters(request.query)
            except ValueError as exc:
                return self.json({"error": str(exc)}, status=400)
            limit = query_int(request.query, "limit", 100, 1, PAGE_MAX)
            offset = query_int(request.query, "offset", 0, 0, MAX_LIMIT * 100)
            rows = sorted((a for a in feed.latest.values() if matches(a, filters)),
                          key=lambda a: (-a.updated_ms, a.alert_id))
            page = rows[offset:offset + limit]
            nxt = offset + limit if offset + limit < len(rows) else None
            return _json(self, {"total": len(rows), "offset": offset, "count": len(page), "next_offset": nxt,
                                "alerts": page})

    @app.page("/alerts/stream")
    class AlertStream(web.View):
        async def get(self, request: web.Request) -> Any:
            try:
                filters = parse_filters(request.query)
            except ValueError as exc:
                return self.json({"error": str(exc)}, status=400)
            resp = aioweb.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                                  "X-Accel-Buffering": "no"})
            await resp.prepare(request)
            queue = feed.subscribe()
            try:
                await resp.write(b": fleet-assurance alerts\n\n")
                if request.query.get("snapshot") in ("1", "true"):
                    for a in sorted(feed.latest.values(), key=lambda a: a.updated_ms):
                        if a.status != "resolved" and matches(a, filters):
                            await resp.write(_event(a))
                while True:
                    try:
                        alert = await asyncio.wait_for(queue.get(), heartbeat_s)
                    except asyncio.TimeoutError:
                        if queue not in feed.subscribers:  # dropped for being too slow
                            break
                        await resp.write(b": keep-alive\n\n")
                        continue
                    if matches(alert, filters):
                        await resp.write(_event(alert))
            except (ConnectionResetError, asyncio.CancelledError):
                pass
            finally:
                feed.unsubscribe(queue)
            return resp

    @app.page("/alerts/rules")
    class AlertRules(web.View):
        async def get(self, request: web.Request) -> web.Response:
            svc = app.alerts
            r = svc.rules
            return self.json({
                "version": r.version, "digest": r.digest, "path": str(svc.rules_path), "last_error": svc.last_error,
                "rules": {"risk": [x.id for x in r.risk], "signal": [x.rule.id for x in r.signal],
                          "dtc": [x.id for x in r.dtc], "staleness": [x.id for x in r.staleness]}})

    @app.page("/alerts/{alert_id}")
    class AlertDetail(web.View):
        async def get(self, request: web.Request, alert_id: str) -> web.Response:
            try:
                parse_alert_id(alert_id)
            except ValueError as exc:
                return self.json({"error": str(exc)}, status=400)
            alert = feed.latest.get(alert_id)
            if alert is None:
                return self.json({"error": f"no alert {alert_id!r} (unknown, or resolved longer ago than "
                                           f"FLEET_ALERT_KEEP_RESOLVED_H)"}, status=404)
            return _json(self, alert)

    async def act(view: web.View, request: aioweb.Request, alert_id: str, action: str) -> web.Response:
        try:
            vin, _, _ = parse_alert_id(alert_id)
        except ValueError as exc:
            return view.json({"error": str(exc)}, status=400)
        body = await read_body(request)
        forwarded = await _forward(app, vin, request, body)
        if forwarded is not None:
            return forwarded
        action_body = decode_body(body, ActionBody)
        by = action_body.by or request.headers.get(USER_HEADER)
        if not isinstance(by, str) or not by.strip():
            return view.json({"error": f"who is acting? give {{\"by\": \"<user>\"}} in the body or the "
                                       f"{USER_HEADER} header"}, status=400)
        by = by.strip()
        if len(by) > BY_MAX or not by.isprintable():
            return view.json({"error": f"the user name must be at most {BY_MAX} printable characters"}, status=400)
        try:
            rec = await app.alerts.act(vin, alert_id, action, by, action_body.note or None)
        except AlertNotFound as exc:
            return view.json({"error": str(exc)}, status=404)
        except AlertConflict as exc:
            return view.json({"error": str(exc)}, status=409)
        except AlertNotPublished as exc:
            return view.json({"error": str(exc)}, status=503, headers={"Retry-After": "5"})
        return _json(view, rec)

    @app.page("/alerts/{alert_id}/ack")
    class AlertAck(web.View):
        async def post(self, request: web.Request, alert_id: str) -> web.Response:
            return await act(self, request, alert_id, "ack")

    @app.page("/alerts/{alert_id}/resolve")
    class AlertResolve(web.View):
        async def post(self, request: web.Request, alert_id: str) -> web.Response:
            return await act(self, request, alert_id, "resolve")


def _event(alert: Alert) -> bytes:
    """One SSE event: ``event: alert``, ``id: <alert id>@<revision>``, the record as ``data``."""
    return b"event: alert\nid: " + f"{alert.alert_id}@{alert.revision}".encode() + b"\ndata: " + \
        encode_alert(alert) + b"\n\n"
