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
    #: what the caller needs: a scope of :data:`streams.auth.SCOPES`, ``public``, ``authenticated`` (any
    #: valid token) or ``metrics`` (per FLEET_METRICS_ACCESS)
    scope: str = "authenticated"


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
NOTE_MAX = 2_000


class ActionBody(msgspec.Struct, forbid_unknown_fields=True):
    """Body of ``POST /alerts/{id}/ack`` and ``/resolve``: an optional plain-text note.

    The acting user is the token's ``sub``; a ``by`` field is refused, not trusted.
    """

    note: Annotated[str, msgspec.Meta(max_length=NOTE_MAX)] = ""


_BODIES = (ActionBody,)
_REF = "#/components/schemas/{name}"
ACTION_BODY = {"$ref": _REF.format(name="ActionBody")}
NOT_FOUND = {200: "OK", 400: "malformed parameter", 404: "unknown"}
NOT_FOUND_MOVING = NOT_FOUND | {503: "the partition is moving: retry after Retry-After"}

TWINS_QUERY = (Param("stale", "query", {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"]},
                     "only stale (true) or online (false) vehicles"),
               _query_int("limit", 100, 1, MAX_LIMIT, "most twins"), LOCAL)
RISK_QUERY = (Param("component", "query", {"type": "string", "enum": list(COMPONENTS)}, "one component"),
              _query_int("top", 20, 1, MAX_LIMIT, "how many"), LOCAL)
PAGE = (_query_int("limit", 100, 1, PAGE_MAX, "page size"), _query_int("offset", 0, 0, MAX_LIMIT * 100, "page start"))
AUDIT_QUERY = (Param("since", "query", {"type": "integer", "minimum": 0}, "epoch ms: records from then on"),
               Param("sub", "query", {"type": "string", "maxLength": 128}, "only this user"),
               _query_int("limit", 100, 1, PAGE_MAX, "most records"))
BAD = {200: "OK", 400: "bad parameter"}
ACTED = {200: "the new revision", 400: "bad request", 404: "not active", 409: "already acknowledged",
         413: "body too large", 503: "not published, or the partition is moving: nothing changed"}

ROUTES: tuple[Route, ...] = (
    Route("GET", "/healthz", "200 while the process runs", scope="public"),
    Route("GET", "/readyz", "200 when the broker answers, no partition is moving and this worker owns some; else "
          "503 with `reasons` (see *Operations*)", answers={200: "ready", 503: "not ready"}, scope="public"),
    Route("GET", "/metrics", "Prometheus text exposition; `name` keeps only those samples (comma-separated, e.g. "
          "`fleet_records_in_total`)", (_csv("name", None, "sample names"),), content="text/plain", scope="metrics"),
    Route("GET", "/openapi.json", "this API as an OpenAPI 3 document"),
    Route("GET", "/twins", "`{count, twins: [{vin, status, model, last_seen_ms, messages}]}`, oldest first, from "
          "every worker; `stale` true/false filters, `limit` 1…10000", TWINS_QUERY, answers=BAD, scope="twins:read"),
    Route("GET", "/twins/{vin}", "the twin: `status` (online/stale), model, variant, software version, first/last "
          "seen, `messages` {applied, duplicate, too_late, seq_resets, max_seq}, `signals` {path: {value, ts, unit}}, "
          "operating `history`, `maintenance`, `weather` {cell, context, exposure_30d}; 404 for an unknown VIN, 400 "
          "for a malformed one, 503 with `Retry-After` while its partition moves", (VIN,), answers=NOT_FOUND_MOVING,
          scope="twins:read"),
    Route("GET", "/twins/{vin}/risk", "per component: probability of failure within the horizon, horizon, model "
          "version, top 3 features with their contribution (Δ log-odds)", (VIN,), answers=NOT_FOUND_MOVING,
          scope="twins:read"),
    Route("GET", "/fleet/summary", "vehicles, online, stale, message counts, vehicles by model, workers that "
          "answered", (LOCAL,), scope="fleet:read"),
    Route("GET", "/fleet/risk", "vehicles ranked by failure probability (of one component, or their riskiest one), "
          "from every worker", RISK_QUERY, answers=BAD, scope="fleet:read"),
    Route("GET", "/weather/{cell}", "the cell's newest observation and forecasts; 404 for a cell without weather",
          (Param("cell", "path", {"type": "string"}, "geohash cell", required=True),), answers=NOT_FOUND,
          scope="fleet:read"),
    Route("GET", "/alerts", "alerts (latest revision each), newest change first: `{total, offset, count, "
          "next_offset, alerts}`; filters take comma-separated values, `region` matches a geohash prefix; 400 naming "
          "a bad value", ALERT_FILTERS + PAGE, answers=BAD, scope="alerts:read"),
    Route("GET", "/alerts/stream", "Server-Sent Events, one per alert revision (`snapshot=1`: the open alerts first)",
          ALERT_FILTERS + (Param("snapshot", "query", {"type": "string", "enum": ["1", "true"]},
                                 "first the open alerts"),
                           Param("access_token", "query", {"type": "string"},
                                 "the bearer token, only if FLEET_AUTH_SSE_QUERY_TOKEN=true")),
          answers={200: "event stream", 400: "bad parameter"}, content="text/event-stream", scope="alerts:read"),
    Route("GET", "/alerts/rules", "the rules version in force, its digest, rule ids by kind, the last rejected "
          "reload's error", scope="alerts:read"),
    Route("GET", "/alerts/{alert_id}", "one alert's latest revision; 404 if unknown or resolved longer ago than "
          "`FLEET_ALERT_KEEP_RESOLVED_H`", (ALERT_ID,), answers=NOT_FOUND, scope="alerts:read"),
    Route("POST", "/alerts/{alert_id}/ack", "acknowledge: body `{\"note\": \"...\"}` (optional, at most 2,000 "
          "characters, plain text); the user is the token's `sub`; the new revision; 404 if not active, 409 if "
          "already acknowledged, 503 (nothing changed) if its record could not be published", (ALERT_ID,),
          ACTION_BODY, answers=ACTED, scope="alerts:ack"),
    Route("POST", "/alerts/{alert_id}/resolve", "resolve (open or acknowledged), as ack", (ALERT_ID,), ACTION_BODY,
          answers=ACTED, scope="alerts:ack"),
    Route("GET", "/sites", "the configured charging sites", scope="charging:read"),
    Route("GET", "/sites/{site_id}/schedule", "the newest plan of the site (routed to the worker that owns it)",
          (SITE_ID,), answers=NOT_FOUND, scope="charging:read"),
    Route("GET", "/sites/{site_id}/plan-metrics", "peak kW, energy, cost, share met, solve time, vehicles and "
          "unmet vehicles", (SITE_ID,), answers=NOT_FOUND, scope="charging:read"),
    Route("GET", "/audit", "records of `fleet.audit` (oldest first): who did what to which target, when, from "
          "where, with what outcome", AUDIT_QUERY, answers=BAD, scope="admin"),
)


#: (method, path) -> scope, for the guard.
SCOPE_OF: dict[tuple[str, str], str] = {(r.method, r.path): r.scope for r in ROUTES}


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
        op["x-scope"] = r.scope
        if r.scope == "public":
            op["security"] = []
        else:
            op["security"] = [{"bearer": []}]
            op["responses"]["401"] = {"description": "no valid bearer token", "content": {"application/json": {}}}
            op["responses"]["403"] = {"description": f"the token lacks scope {r.scope}",
                                      "content": {"application/json": {}}}
        paths.setdefault(r.path, {})[r.method.lower()] = op
    _, components = msgspec.json.schema_components(_BODIES, ref_template=_REF)
    return {"openapi": "3.0.3", "info": {"title": "Fleet Assurance worker API", "version": API_VERSION},
            "paths": paths, "components": {"schemas": components, "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}}}


def markdown_table() -> str:
    """The README's API table (``python -m streams.api_spec`` prints it; a test keeps the README equal)."""
    rows = ["| request | scope | answer |", "|---|---|---|"]
    for r in ROUTES:
        query = "&".join(f"{p.name}=" for p in r.params if p.where == "query")
        rows.append(f"| `{r.method} {r.path}{'?' + query if query else ''}` | `{r.scope}` | {r.summary} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
