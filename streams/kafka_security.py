"""TLS and SASL to the brokers, for every client the service makes, from one set of settings.

Three client libraries talk to Kafka here and each wants the same settings spelled its own way:
Faust (``broker_credentials``), aiokafka (probe and alert-feed consumers: ``ssl_context``) and
kafka-python (simulator, topic admin, maintenance import: ``ssl_cafile`` ...). The secrets
(SASL password, key password) are read from :class:`~pydantic.SecretStr` only here, when a
client is built; :func:`describe` is the loggable summary.

>>> from streams.settings import Settings
>>> s = Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="SCRAM-SHA-512",
...              kafka_sasl_username="fleet-svc", kafka_sasl_password="s3cret")
>>> describe(s)
'SASL_PLAINTEXT, SCRAM-SHA-512 as fleet-svc'
>>> kafka_python_kwargs(s)["sasl_mechanism"]
'SCRAM-SHA-512'
"""

from __future__ import annotations

import ssl
from typing import Any

from streams.settings import Settings


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def uses_tls(settings: Settings) -> bool:
    """Whether the brokers are reached over TLS (``SSL`` or ``SASL_SSL``)."""
    return settings.kafka_security_protocol in ("SSL", "SASL_SSL")


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for aiokafka and Faust (system CAs unless ``FLEET_KAFKA_SSL_CAFILE``), or None."""
    if not uses_tls(settings):
        return None
    context = ssl.create_default_context(
        purpose=ssl.Purpose.SERVER_AUTH,
        cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None)
    context.check_hostname = settings.kafka_ssl_check_hostname
    if settings.kafka_ssl_certfile:
        context.load_cert_chain(str(settings.kafka_ssl_certfile),
                                str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
                                _secret(settings.kafka_ssl_key_password))
    return context


def faust_credentials(settings: Settings) -> Any:
    """Faust ``broker_credentials``: SASL (with TLS for ``SASL_SSL``), TLS alone, or None for PLAINTEXT."""
    import faust

    context = ssl_context(settings)
    if settings.kafka_security_protocol.startswith("SASL"):
        return faust.SASLCredentials(username=settings.kafka_sasl_username,
                                     password=_secret(settings.kafka_sasl_password) or "",
                                     mechanism=settings.kafka_sasl_mechanism, ssl_context=context)
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def aiokafka_kwargs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of an aiokafka client (``AIOKafkaConsumer(..., **aiokafka_kwargs(s))``)."""
    kw: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    context = ssl_context(settings)
    if context is not None:
        kw["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL"):
        kw |= {"sasl_mechanism": settings.kafka_sasl_mechanism, "sasl_plain_username": settings.kafka_sasl_username,
               "sasl_plain_password": _secret(settings.kafka_sasl_password)}
    return kw


def kafka_python_kwargs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of a kafka-python client (producer, admin)."""
    kw: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if uses_tls(settings):
        kw |= {"ssl_check_hostname": settings.kafka_ssl_check_hostname,
               "ssl_cafile": str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
               "ssl_certfile": str(settings.kafka_ssl_certfile) if settings.kafka_ssl_certfile else None,
               "ssl_keyfile": str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
               "ssl_password": _secret(settings.kafka_ssl_key_password)}
    if settings.kafka_security_protocol.startswith("SASL"):
        kw |= {"sasl_mechanism": settings.kafka_sasl_mechanism, "sasl_plain_username": settings.kafka_sasl_username,
               "sasl_plain_password": _secret(settings.kafka_sasl_password)}
    return kw


def describe(settings: Settings) -> str:
    """How the clients reach the brokers, without secrets (for logs)."""
    parts = [settings.kafka_security_protocol]
    if settings.kafka_security_protocol.startswith("SASL"):
        parts.append(f"{settings.kafka_sasl_mechanism} as {settings.kafka_sasl_username}")
    if uses_tls(settings):
        parts.append(f"CA {settings.kafka_ssl_cafile or 'system'}"
                     + (f", client certificate {settings.kafka_ssl_certfile}" if settings.kafka_ssl_certfile else ""))
    return ", ".join(parts)
