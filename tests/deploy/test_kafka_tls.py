"""The production overlay's SASL_SSL really means TLS for every Kafka client of the worker."""

from __future__ import annotations

import pytest

from streams.app import _credentials
from streams.settings import Settings
from streams.topology import client_security

SASL = {"kafka_sasl_mechanism": "SCRAM-SHA-512", "kafka_sasl_username": "fleet", "kafka_sasl_password": "secret"}


@pytest.mark.parametrize(("protocol", "sasl", "faust_protocol"), [
    ("SASL_SSL", True, "SASL_SSL"), ("SASL_PLAINTEXT", True, "SASL_PLAINTEXT"), ("SSL", False, "SSL"),
])
def test_faust_and_kafka_python_clients_use_tls_exactly_when_the_protocol_says_so(protocol, sasl, faust_protocol):
    settings = Settings(kafka_bootstrap="kafka-0:9093", kafka_security_protocol=protocol, **(SASL if sasl else {}))
    creds = _credentials(settings)
    assert creds.protocol.value == faust_protocol
    kw = client_security(settings)
    assert kw["security_protocol"] == protocol
    assert ("ssl_check_hostname" in kw) == protocol.endswith("SSL")  # kafka-python builds its TLS context from these
    if sasl:
        assert (kw["sasl_mechanism"], kw["sasl_plain_username"], kw["sasl_plain_password"]) == ("SCRAM-SHA-512",
                                                                                              "fleet", "secret")


def test_plaintext_needs_no_credentials():
    assert _credentials(Settings(kafka_bootstrap="kafka:9092")) is None
    assert "ssl_check_hostname" not in client_security(Settings(kafka_bootstrap="kafka:9092"))
