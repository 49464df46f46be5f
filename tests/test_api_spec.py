"""The API table (streams.api_spec) and the routes the worker registers are the same set (issue 14)."""

from __future__ import annotations

import doctest
import importlib

import pytest

from streams.api_spec import ROUTES, openapi
from streams.app import create_app
from streams.settings import Settings


def registered_routes() -> set[tuple[str, str]]:
    app = create_app(Settings(kafka_bootstrap="127.0.0.1:1", auth_hs256_secret="s" * 32))
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


def test_readme_api_table_is_the_generated_one():
    from pathlib import Path

    from streams.api_spec import markdown_table

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert markdown_table() in readme, "regenerate it: python -m streams.api_spec"


@pytest.mark.parametrize("module", ["streams.auth", "streams.api_spec"])
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_every_route_has_a_known_scope():
    from streams.auth import AUTHENTICATED, METRICS, PUBLIC, SCOPES

    assert {r.scope for r in ROUTES} <= set(SCOPES) | {PUBLIC, AUTHENTICATED, METRICS}
    assert {r.path for r in ROUTES if r.scope == PUBLIC} == {"/healthz", "/readyz"}


def test_fleet_token_mints_what_the_worker_accepts(monkeypatch, capsys):
    from streams.auth import TokenVerifier
    from streams.cli import main

    secret = "t" * 40
    monkeypatch.setenv("FLEET_AUTH_HS256_SECRET", secret)
    main(["token", "--sub", "ops.jane", "--scopes", "alerts:read,alerts:ack", "--ttl", "8h"])
    principal = TokenVerifier(secret).verify(capsys.readouterr().out.strip())
    assert principal.sub == "ops.jane" and principal.scopes == {"alerts:read", "alerts:ack"}
    for bad in (["--scopes", "alerts:rule"], ["--scopes", "admin", "--ttl", "+5h"], ["--scopes", "admin", "--ttl", "999d"],
                ["--scopes", "admin", "--sub", "a\nb"]):
        args = {"--sub": "ops.jane", "--ttl": "1h"} | dict(zip(bad[::2], bad[1::2]))
        with pytest.raises(SystemExit) as stop:
            main(["token", *[x for kv in args.items() for x in kv]])
        assert stop.value.code == 2
    assert "fleet: error:" in capsys.readouterr().err


def test_api_tls_settings_load_a_certificate_or_name_the_problem(tmp_path):
    import datetime as dt
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from streams.app import _web_tls
    from twins.errors import ConfigurationError

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "worker-1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    settings = Settings(web_tls_cert_file=tmp_path / "c.pem", web_tls_key_file=tmp_path / "k.pem")
    assert isinstance(_web_tls(settings), ssl.SSLContext) and _web_tls(Settings()) is None
    with pytest.raises(ConfigurationError, match="FLEET_WEB_TLS_CERT_FILE"):
        _web_tls(Settings(web_tls_cert_file=tmp_path / "k.pem", web_tls_key_file=tmp_path / "c.pem"))
    with pytest.raises(Exception, match="go together"):
        Settings(web_tls_cert_file=tmp_path / "c.pem")
