"""The stream's RiskScorer on a worker's state (fake table, no broker): stored twins are decoded, scored and
queued for the flush like unflushed ones, with equal results; due-ness read from the records' briefs; unreadable
records skipped, not fatal; alert candidates picked."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import msgspec
import numpy as np
import pytest
from faust.types import TP

from models.risk.artifact import load_model_set
from models.risk.synthetic import stream_twins
from streams.ingest import TwinIngest
from streams.risk_scoring import RiskScorer
from tests.test_ingest_flush import FakeConsumer, FakeProducer, FakeTable
from twins.twin import LAYOUT_VERSION, copy_twin, decode_twin, encode_twin

INTERVAL_S = 300.0


def _lookup(cell: str, hour: int) -> tuple[float, float] | None:
    return (25.0 + hour % 17, 70.0) if hour % 4 else None


def _scorer(trained, twins, flushed: int):
    """A worker holding ``twins``: the first ``flushed`` stored as records, the rest not flushed yet."""
    log: list = []
    ingest = TwinIngest(FakeTable(FakeProducer(log), log), None, lambda: FakeConsumer(log, set()), 1.0, 10_000, 2)
    for t in twins[:flushed]:
        ingest.table.data[t.vin.encode()] = encode_twin(t)
    for t in twins[flushed:]:
        ingest.dirty[t.vin] = copy_twin(t)
        ingest.dirty_tp[t.vin] = TP(ingest.telemetry_topic, 0)
    ingest.changed.update(t.vin for t in twins)
    app = SimpleNamespace(ingest=ingest, hourly_weather=_lookup, weather_day_version=lambda cell, day: None)
    scorer = RiskScorer(app, None, INTERVAL_S, 1.0, 60.0, 10_000, {})
    scorer.models = load_model_set(trained.artifact)
    return scorer, ingest


@pytest.fixture(scope="module")
def twins(synthetic):
    return list(stream_twins(synthetic[0])[0].values())


def _record(state):
    return state if type(state) is bytes else encode_twin(state)


def _twin(state):
    return decode_twin(state) if type(state) is bytes else state


def test_stored_and_unflushed_twins_are_scored_alike_and_queued_for_the_flush(trained, twins):
    scorer, ingest = _scorer(trained, twins, flushed=40)
    now = max(t.last_seen for t in twins) + 1000
    assert asyncio.run(scorer.score_due(now)) == len(twins)
    # every twin queued for the flush, scored; the stored ones as their new records (not held decoded)
    assert [type(ingest.dirty[t.vin]) is bytes for t in twins] == [True] * 40 + [False] * (len(twins) - 40)
    states = [_twin(ingest.dirty[t.vin]).risk for t in twins]
    assert {s.scored_ms for s in states} == {now} and {s.version for s in states} == {scorer.models.version}
    # the same twins, all scored as objects, get the same probabilities (the two paths agree)
    reference, _ = _scorer(trained, twins, flushed=0)
    asyncio.run(reference.score_due(now))
    np.testing.assert_array_equal([s.probability for s in states],
                                  [_twin(reference.app.ingest.dirty[t.vin]).risk.probability for t in twins])
    assert not ingest.changed and len(scorer._next_due) == len(twins)
    # changed again a second later: not due yet (once per interval) ...
    ingest.changed.update(t.vin for t in twins)
    assert asyncio.run(scorer.score_due(now + 1000)) == 0
    # ... also for a fresh scorer, which reads the state's time from the records
    flushed = {t.vin.encode(): _record(ingest.dirty[t.vin]) for t in twins}
    for t in twins[:5]:                                    # these five were scored an interval earlier
        stale = decode_twin(flushed[t.vin.encode()])
        stale.risk.scored_ms = now - int(INTERVAL_S * 1000)
        flushed[t.vin.encode()] = encode_twin(stale)
    fresh, fresh_ingest = _scorer(trained, twins, flushed=0)
    fresh_ingest.dirty.clear()
    fresh_ingest.table.data.update(flushed)
    assert asyncio.run(fresh.score_due(now + 1000)) == 5                  # only those, read once from the records
    assert {_twin(fresh_ingest.dirty[t.vin]).risk.scored_ms for t in twins[:5]} == {now + 1000}
    assert not set(fresh_ingest.dirty) - {t.vin for t in twins[:5]}
    assert fresh._next_due[twins[6].vin] == now + int(INTERVAL_S * 1000)
    # an urgent vehicle (a repair record) is due at once; the rest once the interval has passed
    fresh_ingest.changed.add(twins[3].vin)                 # as a repair record does (streams.ingest)
    fresh_ingest.urgent.add(twins[3].vin)
    assert asyncio.run(fresh.score_due(now + 2000)) == 1
    fresh_ingest.changed.update(t.vin for t in twins)
    assert asyncio.run(fresh.score_due(now + int(INTERVAL_S * 1000))) == len(twins) - 5


def test_records_that_cannot_be_read_are_skipped_logged_once_and_the_others_scored(trained, twins, caplog):
    scorer, ingest = _scorer(trained, twins[:4], flushed=4)
    newer = msgspec.msgpack.encode([LAYOUT_VERSION + 1, *msgspec.structs.astuple(twins[1])[1:]])
    bad = {twins[1].vin: newer, twins[2].vin: b"\x93\xa1x"}            # a newer layout; a corrupt record
    for vin, record in bad.items():
        ingest.table.data[vin.encode()] = record
    ingest.urgent.add(twins[2].vin)                                     # urgent or not: skipped alike
    now = max(t.last_seen for t in twins[:4]) + 1000
    assert asyncio.run(scorer.score_due(now)) == 2
    assert set(ingest.dirty) == {twins[0].vin, twins[3].vin} and not ingest.changed and not ingest.urgent
    assert all(ingest.table.data[vin.encode()] == record for vin, record in bad.items())   # left as they were
    for vin in bad:
        assert caplog.text.count(f"twin {vin} not scored: its stored record cannot be read") == 1
    ingest.changed.update(bad)                                          # new telemetry for them: logged once
    assert asyncio.run(scorer.score_due(now + 1000)) == 0
    for vin in bad:
        assert caplog.text.count(f"twin {vin} not scored") == 1
