"""State changes happen only when their record is on the broker (issue 14): alert acks and dead letters.

The producer side is a stand-in that refuses or accepts sends; everything else (alert engine,
twin, ingest cache, dead-letter records) is the real code.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from streams import metrics
from streams.alerting import AlertNotPublished, AlertService
from streams.dead_letter import DeadLetters, Rejection
from streams.ingest import TwinIngest
from tests.twins.alerts.test_engine import RULES, VIN, risk
from twins.alerts.engine import observe_risk
from twins.alerts.state import AlertBook, decode_alert
from twins.errors import InvalidReading
from twins.twin import new_twin


class Topic:
    """Accepts sends up to ``max_bytes`` per value (as a broker's message limit does), or refuses all."""

    def __init__(self, max_bytes: int | None = None, refuse: bool = False) -> None:
        self.max_bytes, self.refuse, self.sent = max_bytes, refuse, []

    async def send(self, key: Any = None, value: Any = None, partition: Any = None, headers: Any = None,
                   force: bool = False) -> Any:
        if self.refuse or (self.max_bytes is not None and value is not None and len(value) > self.max_bytes):
            raise RuntimeError("MessageSizeTooLargeError: the broker refused the record")
        self.sent.append((key, value, partition, headers))
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def service(topic: Topic) -> tuple[AlertService, TwinIngest, str]:
    table = SimpleNamespace(data={})
    ingest = TwinIngest(table, None, lambda: None, 1.0, 10_000, 4)
    twin = new_twin(VIN)
    twin.alerts = AlertBook()
    (alert,) = observe_risk(twin.alerts, RULES, VIN, risk(0.4, 0))
    ingest.dirty[VIN] = twin
    app = SimpleNamespace(ingest=ingest, fleet_settings=SimpleNamespace(topic_telemetry="t"))
    svc = AlertService(app, None, topic, feed=None, reload_s=5, sweep_s=30)
    svc.rules = RULES
    svc.reconciled = {0, 1, 2, 3}
    return svc, ingest, alert.alert_id


def test_an_ack_whose_record_is_refused_changes_nothing():
    svc, ingest, aid = service(Topic(refuse=True))
    with pytest.raises(AlertNotPublished, match="was not changed"):
        asyncio.run(svc.act(VIN, aid, "ack", "ops.jane", "n" * 2000))
    assert ingest.get_twin(VIN).alerts.active[0].status == "open"


def test_an_ack_happens_once_its_record_is_published():
    topic = Topic()
    svc, ingest, aid = service(topic)
    rec = asyncio.run(svc.act(VIN, aid, "ack", "ops.jane", "booked"))
    assert rec.status == "acknowledged" and ingest.get_twin(VIN).alerts.active[0].status == "acknowledged"
    (key, value, _, _), = topic.sent
    assert key == VIN.encode() and decode_alert(value) == rec


def rejection(size: int) -> Rejection:
    return Rejection(b"k", b"v" * size, InvalidReading("bad", "$.x", 1), 2, 7, None)


def test_a_refused_dead_letter_is_sent_again_headers_only():
    topic = Topic(max_bytes=1000)
    counted = metrics.DLQ_OUT.labels("fleet.telemetry", "invalid")._value.get()
    asyncio.run(DeadLetters(topic, "fleet.telemetry", 4, max_value_bytes=5000).send([rejection(10), rejection(3000)]))
    (k1, v1, _, _), (k2, v2, p2, h2) = topic.sent
    assert v1 == b"v" * 10 and (k2, v2, p2) == (None, None, 2)
    headers = dict(h2)
    assert headers["dlq.error"] == b"invalid" and b"MessageSizeTooLarge" in headers["dlq.send_error"]
    assert headers["dlq.source.offset"] == b"7" and headers["dlq.source.topic"] == b"fleet.telemetry"
    assert metrics.DLQ_OUT.labels("fleet.telemetry", "invalid")._value.get() == counted + 2


def test_a_dead_letter_that_cannot_be_written_at_all_stops_the_batch():
    with pytest.raises(RuntimeError, match="refused"):
        asyncio.run(DeadLetters(Topic(refuse=True), "fleet.telemetry", 4, 5000).send([rejection(10)]))


def test_resolved_alerts_of_a_twin_never_flushed_are_not_raised_again_by_its_replay():
    """A worker raised and resolved an alert, then died before its twin reached the changelog. The new
    owner finds no twin, only the resolved record on the alerts topic; the replay of the same readings
    must not publish that alert (same id, same revisions) a second time."""
    book = AlertBook()
    first = observe_risk(book, RULES, VIN, risk(0.4, 0))
    resolved = observe_risk(book, RULES, VIN, risk(0.05, 60))
    assert [a.status for a in first + resolved] == ["open", "resolved"]
    topic = Topic()
    table = SimpleNamespace(data={})
    ingest = TwinIngest(table, None, lambda: None, 1.0, 10_000, 4)
    feed = SimpleNamespace(latest={resolved[0].alert_id: resolved[0]}, topic="fleet.alerts",
                           wait_caught_up=lambda parts: asyncio.sleep(0))
    app = SimpleNamespace(ingest=ingest, fleet_settings=SimpleNamespace(topic_telemetry="t"))
    svc = AlertService(app, None, topic, feed=feed, reload_s=5, sweep_s=30)
    svc.rules = RULES
    asyncio.run(svc.reconcile({svc.partition_of(VIN)}))
    assert ingest.get_twin(VIN) is None and VIN in svc.orphan_books     # no phantom twin, the book is kept
    twin = new_twin(VIN)                                                # the replay's new twin
    svc.before(twin)
    twin.risk = risk(0.4, 0)
    assert svc.on_risk(twin) == [] and VIN not in svc.orphan_books
    twin.risk = risk(0.05, 60)
    assert svc.on_risk(twin) == []
    assert topic.sent == []
