"""Kafka TLS and SASL/SCRAM settings reach every client the service makes; secrets stay out of logs and reprs.

Configuration level: the clients are built (not connected) from settings and their own
configuration is read back, the way each library will use it when it connects.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from streams.kafka_security import aiokafka_kwargs, describe, faust_credentials, kafka_python_kwargs
from streams.settings import Settings, load_settings
from twins.errors import ConfigurationError

TLS = Path(__file__).resolve().parent / "data" / "kafka-tls"
PASSWORD = "scram-pw-7f3a9c"          # must never show up in a log line or repr
KEY_PASSWORD = "test-key-pass"


API_SECRET = "api-token-secret-that-must-never-be-logged-0123"


def sasl_ssl(**extra: object) -> Settings:
    return Settings(**{"kafka_bootstrap": "kafka-1:9093,kafka-2:9093", "kafka_security_protocol": "SASL_SSL",
                       "kafka_sasl_mechanism": "SCRAM-SHA-512", "kafka_sasl_username": "fleet-svc",
                       "kafka_sasl_password": PASSWORD, "kafka_ssl_cafile": TLS / "ca.pem",
                       "kafka_ssl_certfile": TLS / "client.pem", "kafka_ssl_keyfile": TLS / "client.key",
                       "kafka_ssl_key_password": KEY_PASSWORD, **extra})


def test_faust_app_gets_scram_over_tls():
    from streams.app import create_app

    app = create_app(sasl_ssl(app_id="sec-test", auth_hs256_secret=API_SECRET))
    auth = credentials_to_aiokafka_auth(app.conf.broker_credentials)  # what Faust's aiokafka driver passes on
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512" and auth["sasl_plain_username"] == "fleet-svc"
    assert auth["sasl_plain_password"] == PASSWORD
    ctx = auth["ssl_context"]
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert any("fleet-test-client" in str(c.get("subject")) for c in ctx.get_ca_certs())   # our CA, loaded
    assert PASSWORD not in repr(app.conf.broker_credentials)


def test_tls_alone_and_plaintext():
    tls = Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=TLS / "ca.pem", kafka_ssl_check_hostname=False)
    assert credentials_to_aiokafka_auth(faust_credentials(tls))["security_protocol"] == "SSL"
    assert not aiokafka_kwargs(tls)["ssl_context"].check_hostname
    # SASL_SSL without a CA file still means TLS (system CAs), never a silent fall-back to plaintext
    system = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-256",
                      kafka_sasl_username="u", kafka_sasl_password="p")
    assert credentials_to_aiokafka_auth(faust_credentials(system))["security_protocol"] == "SASL_SSL"
    assert kafka_python_kwargs(system)["ssl_cafile"] is None
    assert faust_credentials(Settings()) is None
    assert aiokafka_kwargs(Settings()) == kafka_python_kwargs(Settings()) == {"security_protocol": "PLAINTEXT"}


def test_aiokafka_consumers_get_the_same_settings():
    async def build() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(bootstrap_servers="kafka-1:9093", **aiokafka_kwargs(sasl_ssl()))

    client = asyncio.run(build())._client
    assert client._security_protocol == "SASL_SSL" and client._sasl_mechanism == "SCRAM-SHA-512"
    assert client._sasl_plain_username == "fleet-svc" and client._sasl_plain_password == PASSWORD
    assert isinstance(client._ssl_context, ssl.SSLContext)


def test_kafka_python_producer_and_admin_get_the_same_settings():
    from streams.simulate import make_producer
    from streams.topology import client_security

    kw = client_security(sasl_ssl())
    assert kw == kafka_python_kwargs(sasl_ssl())
    assert kw["ssl_cafile"].endswith("ca.pem") and kw["ssl_keyfile"].endswith("client.key")
    assert kw["ssl_password"] == KEY_PASSWORD and kw["sasl_plain_password"] == PASSWORD
    producer = make_producer(sasl_ssl(), api_version=(2, 5))   # a known version: nothing is probed
    try:
        conf = producer.config
        assert conf["security_protocol"] == "SASL_SSL" and conf["sasl_mechanism"] == "SCRAM-SHA-512"
        assert conf["sasl_plain_username"] == "fleet-svc" and conf["ssl_certfile"].endswith("client.pem")
    finally:
        producer.close(timeout=0)


def test_the_key_password_is_used():
    from streams.kafka_security import ssl_context

    assert ssl_context(sasl_ssl()) is not None
    with pytest.raises(ssl.SSLError):
        ssl_context(sasl_ssl(kafka_ssl_key_password="wrong"))


def test_inconsistent_settings_are_refused_by_name():
    with pytest.raises(ConfigurationError, match="FLEET_KAFKA_SSL_CAFILE is set but FLEET_KAFKA_SECURITY_PROTOCOL"):
        load_settings(kafka_ssl_cafile=TLS / "ca.pem")
    with pytest.raises(ConfigurationError, match="FLEET_KAFKA_SSL_KEYFILE needs FLEET_KAFKA_SSL_CERTFILE"):
        load_settings(kafka_security_protocol="SSL", kafka_ssl_keyfile=TLS / "client.key")
    with pytest.raises(ConfigurationError, match="FLEET_SIGNING_MODE=require needs FLEET_SIGNING_KEYS"):
        load_settings(signing_mode="require")


def test_secrets_never_appear_in_reprs_or_logs(caplog, tmp_path):
    settings = sasl_ssl()
    for text in (repr(settings), str(settings), describe(settings), settings.model_dump_json()):
        assert PASSWORD not in text and KEY_PASSWORD not in text
    assert describe(settings) == (f"SASL_SSL, SCRAM-SHA-512 as fleet-svc, CA {TLS / 'ca.pem'}, "
                                  f"client certificate {TLS / 'client.pem'}")
    secret_b64 = "c2lnbmluZy1zZWNyZXQtb2YtMzItYnl0ZXMtbG9uZyE="
    keys = tmp_path / "keys.json"
    keys.write_text('{"keys": [{"kid": "gw-1", "secret": "%s"}]}' % secret_b64)
    broken = tmp_path / "broken.json"
    broken.write_text('{"keys": [{"kid": "gw-1", "secret": "%s", "vins": "V1"}]}' % secret_b64)
    with caplog.at_level(logging.DEBUG):
        from streams.app import create_app
        from streams.signing_keys import SigningKeys

        create_app(sasl_ssl(app_id="sec-log-test", auth_hs256_secret=API_SECRET))
        SigningKeys("require", keys)
        with pytest.raises(ConfigurationError) as err:
            SigningKeys("require", broken)
    logged = caplog.text + str(err.value)
    assert "gw-1" in logged and "SCRAM-SHA-512 as fleet-svc" in logged
    for secret in (PASSWORD, KEY_PASSWORD, secret_b64, "signing-secret", API_SECRET):
        assert secret not in logged


def test_the_acl_example_covers_every_topic_the_service_uses():
    import re

    from streams.topology import topic_specs

    script = (Path(__file__).resolve().parents[1] / "deploy" / "kafka-acls.sh").read_text()
    named = set(re.findall(r"\bfleet\.[a-z.]+", script))
    defaults = Settings()
    assert "--resource-pattern-type prefixed --topic \"$APP_ID-\"" in script and "APP_ID=${APP_ID:-fleet-assurance}" in script
    for spec in topic_specs(defaults):
        assert spec.name in named or spec.name.startswith(defaults.app_id + "-"), spec.name
    assert "--group \"$APP_ID\"" in script and "transactional-id" not in script


def test_doctests():
    import doctest

    import streams.kafka_security

    assert doctest.testmod(streams.kafka_security).failed == 0


def test_every_aiokafka_client_of_the_worker_takes_the_tls_and_sasl_settings():
    """The readiness probe and the audit reader are aiokafka clients: they get aiokafka's keyword arguments
    (kafka-python's would raise TypeError under SSL and leave the worker never ready)."""
    from aiokafka.client import AIOKafkaClient

    settings = sasl_ssl()

    async def make() -> AIOKafkaClient:  # aiokafka objects belong to a running loop
        return AIOKafkaClient(bootstrap_servers=settings.bootstrap_servers, **aiokafka_kwargs(settings))

    client = asyncio.run(make())
    assert client._security_protocol == "SASL_SSL" and client._ssl_context is not None
    for module in ("streams/readiness.py", "streams/views.py"):
        text = (Path(__file__).resolve().parents[1] / module).read_text()
        assert "aiokafka_kwargs(settings)" in text and "client_security(settings)" not in text, module
