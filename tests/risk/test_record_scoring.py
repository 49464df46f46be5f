"""score_records: stored twins scored without decoding equal the decoded twins scored and encoded again."""

from __future__ import annotations

import numpy as np
import pytest

from models.risk.artifact import load_model_set
from models.risk.exposure import ExposureCache
from models.risk.features import RECORD_PROGRAM
from models.risk.record_scoring import RiskEncoder, record_ages, score_records
from models.risk.scoring import component_ages, score_twins
from models.risk.synthetic import stream_twins
from models.risk.twin_records import RecordBuffer, TwinRecords
from twins.alerts.state import AlertBook
from twins.signals import SLOT
from twins.twin import copy_twin, decode_twin, encode_twin, new_twin

DTC = SLOT["Vehicle.Diagnostics.DTCList"]
DAY = 86_400_000


def _lookup(cell: str, hour: int) -> tuple[float, float] | None:
    return (30.0 + (hour % 24) * 0.5, 50.0 + (hour % 45)) if hour % 6 else None


@pytest.fixture(scope="module")
def fleet(synthetic):
    data, _ = synthetic
    final, copies = stream_twins(data, copy_every=1501, copies_max=60)
    twins = list(final.values()) + copies
    twins[1].values[DTC] = ["P0AA6", "P0562"]
    twins[2].maintenance.serviced_ms[0] = twins[2].last_seen - 20 * DAY
    twins[3].alerts = AlertBook()                          # a book without active alerts
    odd = copy_twin(twins[4])
    odd.vin = "ODD00000000000001"
    odd.values[DTC] = "P0A7F"                             # not a list: the record takes the object path
    return twins + [odd, new_twin("NEW00000000000001")]


def _expected(models, twins, now, services):
    states = score_twins(models, twins, ExposureCache(_lookup), now_ms=now, in_service_ms=services,
                         component_ages_days=[component_ages(t.maintenance, now, s) for t, s in zip(twins, services)])
    out = []
    for twin, state in zip(twins, states):
        t = copy_twin(twin)
        t.risk = state
        out.append(encode_twin(t))
    return out, np.array([s.probability for s in states])


def test_records_rewritten_with_the_object_paths_risk_byte_for_byte(trained, fleet):
    models = load_model_set(trained.artifact)
    now = max(t.last_seen for t in fleet) + 3_600_000
    services = [t.first_seen - 40 * DAY if i % 3 else None for i, t in enumerate(fleet)]
    want, proba = _expected(models, fleet, now, services)
    buffer, encoder, cache = RecordBuffer(), RiskEncoder(models), ExposureCache(_lookup)
    raws = [encode_twin(t) for t in fleet]
    got = score_records(models, TwinRecords([t.vin for t in fleet], raws, RECORD_PROGRAM, buffer), cache,
                        now_ms=now, in_service_ms=services, encoder=encoder)
    assert got.decoded.tolist() == [t.vin.startswith("ODD") for t in fleet]
    assert [a == b for a, b in zip(got.records, want)] == [True] * len(fleet)
    np.testing.assert_array_equal(got.probability, proba)
    assert not got.alerts_active.any()
    # scored again a day later, from the rewritten records (which now hold a risk state)
    later = now + DAY
    want2, _ = _expected(models, [decode_twin(r) for r in got.records], later, services)
    again = score_records(models, TwinRecords([t.vin for t in fleet], got.records, RECORD_PROGRAM, buffer), cache,
                          now_ms=later, in_service_ms=services, encoder=encoder)
    assert again.records == want2
    assert {decode_twin(r).risk.scored_ms for r in again.records} == {later}


def test_alert_books_with_active_alerts_are_reported(trained, fleet):
    from twins.alerts.state import Alert

    models = load_model_set(trained.artifact)
    twin = copy_twin(fleet[0])
    twin.alerts = AlertBook(active=[Alert(schema=1, alert_id="x", revision=1, event="opened", status="open",
                                          vin=twin.vin, component="inverter", rule="inv", rule_kind="risk",
                                          rules_version="1", severity="high", title="t", action="a", evidence={},
                                          probability=0.4, horizon_days=30.0, model_version=models.version,
                                          region=None, weather=None, opened_ms=1, updated_ms=1, resolved_ms=None,
                                          by=None, note=None)])
    twins = [twin, fleet[0], fleet[3]]
    got = score_records(models, TwinRecords([t.vin for t in twins], [encode_twin(t) for t in twins],
                                            RECORD_PROGRAM), ExposureCache(_lookup),
                        now_ms=twin.last_seen + 1000, in_service_ms=[None] * 3)
    assert got.alerts_active.tolist() == [True, False, False]
    assert decode_twin(got.records[0]).alerts == twin.alerts


def test_record_ages_equal_component_ages():
    from twins.maintenance import ComponentLog

    now = 1_767_225_600_000
    logs = [ComponentLog(), ComponentLog(serviced_ms=[0, now - 3 * DAY, 0, now + DAY]),
            ComponentLog(serviced_ms=[now - DAY // 2, 0, 0, 0])]
    services = [None, now - 400 * DAY, None]
    got = record_ages(np.array([log.serviced_ms for log in logs], dtype=float),
                      np.array([np.nan if s is None else s for s in services]), now)
    from models.risk.features import COMPONENTS

    for row, log, service in zip(got, logs, services):
        ages = component_ages(log, now, service)
        want = [np.nan if ages is None or ages[c] is None else ages[c] for c in COMPONENTS]
        np.testing.assert_array_equal(row, want)
