"""The API table (streams.api_spec) and the routes the worker registers are the same set (issue 14)."""

from __future__ import annotations

from streams.api_spec import ROUTES, openapi
from streams.app import create_app
from streams.settings import Settings


def registered_routes() -> set[tuple[str, str]]:
    app = create_app(Settings(kafka_bootstrap="127.0.0.1:1"))
    return {(r.method, r.resource.canonical) for r in app.web.web_app.router.routes()
            if r.method not in ("HEAD", "OPTIONS")}


def test_every_registered_route_is_declared_and_every_declared_one_registered():
    declared = {(r.method, r.path) for r in ROUTES}
    assert registered_routes() == declared


def test_openapi_document_has_every_route_with_its_answers():
    doc = openapi()
    ops = {(m.upper(), p): op for p, item in doc["paths"].items() for m, op in item.items()}
    assert set(ops) == {(r.method, r.path) for r in ROUTES}
    for (method, path), op in ops.items():
        assert "200" in op["responses"] and op["summary"]
        for name in [seg[1:-1] for seg in path.split("/") if seg.startswith("{")]:
            assert any(p["name"] == name and p["in"] == "path" and p["required"] for p in op["parameters"]), path
    assert doc["paths"]["/alerts/{alert_id}/ack"]["post"]["requestBody"]["content"]["application/json"]["schema"] \
        == {"$ref": "#/components/schemas/ActionBody"}
    assert doc["components"]["schemas"]["ActionBody"]["properties"]["note"]["maxLength"] == 2000
