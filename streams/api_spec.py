"""The HTTP API declared once: every route, its parameters and answers; the OpenAPI document derives from it.

``GET /openapi.json`` serves :func:`openapi`; the README's API table and a test that walks every
route the worker registers read the same :data:`ROUTES`, so a route cannot exist undeclared.

>>> doc = openapi()
>>> doc["paths"]["/twins/{vin}"]["get"]["parameters"][0]["schema"]["minLength"]
17
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec

from twins.alerts.rules import COMPONENTS as ALERT_COMPONENTS
from twins.alerts.rules import SEVERITIES
from twins.alerts.state import STATUSES
from twins.maintenance import COMPONENTS

API_VERSION = "1"
MAX_LIMIT = 10_000
PAGE_MAX = 1_000


@dataclass(frozen=True)
class Param:
    """One path or query parameter with its JSON schema."""

    name: str
    where: Literal["path", "query"]
    schema: dict[str, Any]
    description: str
    required: bool = False


@dataclass(frozen=True)
class Route:
    """One operation of the API."""

    method: Literal["GET", "POST"]
    path: str
    summary: str
    params: tuple[Param, ...] = ()
    body: dict[str, Any] | None = None
    answers: dict[int, str] = field(default_factory=lambda: {200: "OK"})
    content: str = "application/json"


def _query_int(name: str, default: int, lo: int, hi: int, text: str) -> Param:
    return Param(name, "query", {"type": "integer", "minimum": lo, "maximum": hi, "default": default}, text)


def _csv(name: str, values: tuple[str, ...] | None, text: str) -> Param:
    schema: dict[str, Any] = {"type": "string"}
    if values:
        schema["pattern"] = "^(" + "|".join(values) + ")(,(" + "|".join(values) + "))*$"
    return Param(name, "query", schema, text)


VIN = Param("vin", "path", {"type": "string", "minLength": 17, "maxLength": 17}, "17-character VIN (ISO 3779)",
            required=True)
LOCAL = Param("local", "query", {"type": "string", "enum": ["1"]}, "answer from this worker's partitions only")
ALERT_ID = Param("alert_id", "path", {"type": "string"}, "alert id: <VIN>:<rule>:<episode>", required=True)
SITE_ID = Param("site_id", "path", {"type": "string"}, "charging site id", required=True)
ALERT_FILTERS = (
    _csv("status", STATUSES, "comma-separated statuses"),
    _csv("severity", SEVERITIES, "comma-separated severities"),
    _csv("component", ALERT_COMPONENTS, "comma-separated components"),
    _csv("region", None, "geohash prefixes"),
    _csv("vin", None, "VINs"),
    _csv("rule", None, "rule ids"),
)
BY_MAX = 128
NOTE_MAX = 2_000


class ActionBody(msgspec.Struct, forbid_unknown_fields=True):
    """Body of ``POST /alerts/{id}/ack`` and ``/resolve`` (both fields optional; notes are plain text)."""

    by: Annotated[str, msgspec.Meta(max_length=BY_MAX)] = ""
    note: Annotated[str, msgspec.Meta(max_length=NOTE_MAX)] = ""


_BODIES = (ActionBody,)
_REF = "#/components/schemas/{name}"
ACTION_BODY = {"$ref": _REF.format(name="ActionBody")}
NOT_FOUND = {200: "OK", 400: "malformed parameter", 404: "unknown"}

ROUTES: tuple[Route, ...] = (
    Route("GET", "/healthz", "200 while the process runs"),
    Route("GET", "/readyz", "200 when partitions are assigned and recovered", answers={200: "ready", 503: "not ready"}),
    Route("GET", "/metrics", "Prometheus text exposition", content="text/plain"),
    Route("GET", "/openapi.json", "this document"),
    Route("GET", "/twins", "twins, oldest first", (Param("stale", "query", {"type": "string", "enum": [
        "true", "false", "1", "0", "yes", "no"]}, "only stale (true) or online (false) vehicles"),
        _query_int("limit", 100, 1, MAX_LIMIT, "most twins"), LOCAL), answers={200: "OK", 400: "bad parameter"}),
    Route("GET", "/twins/{vin}", "one twin: signals, history, weather", (VIN,), answers=NOT_FOUND),
    Route("GET", "/twins/{vin}/risk", "failure probability per component", (VIN,), answers=NOT_FOUND),
    Route("GET", "/fleet/summary", "counts over the whole fleet", (LOCAL,)),
    Route("GET", "/fleet/risk", "vehicles ranked by failure probability", (
        Param("component", "query", {"type": "string", "enum": list(COMPONENTS)}, "one component"),
        _query_int("top", 20, 1, MAX_LIMIT, "how many"), LOCAL), answers={200: "OK", 400: "bad parameter"}),
    Route("GET", "/weather/{cell}", "a weather cell's newest observation and forecasts",
          (Param("cell", "path", {"type": "string"}, "geohash cell", required=True),), answers=NOT_FOUND),
    Route("GET", "/alerts", "alerts, newest change first", ALERT_FILTERS + (
        _query_int("limit", 100, 1, PAGE_MAX, "page size"), _query_int("offset", 0, 0, MAX_LIMIT * 100, "page start")),
        answers={200: "OK", 400: "bad parameter"}),
    Route("GET", "/alerts/stream", "Server-Sent Events, one per alert revision", ALERT_FILTERS + (
        Param("snapshot", "query", {"type": "string", "enum": ["1", "true"]}, "first the open alerts"),),
        answers={200: "event stream", 400: "bad parameter"}, content="text/event-stream"),
    Route("GET", "/alerts/rules", "the alert rules in force"),
    Route("GET", "/alerts/{alert_id}", "one alert's latest revision", (ALERT_ID,), answers=NOT_FOUND),
    Route("POST", "/alerts/{alert_id}/ack", "acknowledge an open alert", (ALERT_ID,), ACTION_BODY,
          answers={200: "the new revision", 400: "bad request", 404: "not active", 409: "already acknowledged",
                   413: "body too large", 503: "not published: nothing changed"}),
    Route("POST", "/alerts/{alert_id}/resolve", "resolve an alert", (ALERT_ID,), ACTION_BODY,
          answers={200: "the new revision", 400: "bad request", 404: "not active", 413: "body too large",
                   503: "not published: nothing changed"}),
    Route("GET", "/sites", "the configured charging sites"),
    Route("GET", "/sites/{site_id}/schedule", "the newest plan of a site", (SITE_ID,), answers=NOT_FOUND),
    Route("GET", "/sites/{site_id}/plan-metrics", "peak, energy, cost of the newest plan", (SITE_ID,),
          answers=NOT_FOUND),
)


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.0 document of :data:`ROUTES`."""
    paths: dict[str, Any] = {}
    for r in ROUTES:
        op: dict[str, Any] = {
            "summary": r.summary,
            "operationId": f"{r.method.lower()}{r.path.replace('/', '_').replace('{', '').replace('}', '')}",
            "parameters": [{"name": p.name, "in": p.where, "required": p.required or p.where == "path",
                            "description": p.description, "schema": p.schema} for p in r.params],
            "responses": {str(code): {"description": text, "content": {r.content if code == 200 else
                                                                       "application/json": {}}}
                          for code, text in r.answers.items()},
        }
        if r.body is not None:
            op["requestBody"] = {"required": False, "content": {"application/json": {"schema": r.body}}}
        paths.setdefault(r.path, {})[r.method.lower()] = op
    _, components = msgspec.json.schema_components(_BODIES, ref_template=_REF)
    return {"openapi": "3.0.3", "info": {"title": "Fleet Assurance worker API", "version": API_VERSION},
            "paths": paths, "components": {"schemas": components}}
