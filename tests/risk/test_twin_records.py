"""TwinRecords: fields read from stored twins (msgpack) equal the twins' own values; odd records are flagged."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from models.risk.exposure import ExposureCache
from models.risk.features import RECORD_PROGRAM, FeatureRows, feature_matrix
from models.risk.synthetic import stream_twins
from models.risk.twin_records import RecordBuffer, TwinRecords, build_program
from twins.alerts.state import Alert, AlertBook
from twins.history.daily import N_COLS, N_DAYS
from twins.risk import RiskState
from twins.signals import N_SIGNALS, SLOT
from twins.twin import Twin, copy_twin, encode_twin, new_twin

DTC = SLOT["Vehicle.Diagnostics.DTCList"]
ODO = SLOT["Vehicle.TraveledDistance"]


@pytest.fixture(scope="module")
def twins(synthetic):
    """The synthetic fleet's twins, copies taken along their histories, and hand-made odd ones."""
    data, _ = synthetic
    final, copies = stream_twins(data, copy_every=997, copies_max=150)
    out = list(final.values()) + copies
    odd = copy_twin(out[0])
    odd.vin = "ODD00000000000001"
    odd.values[DTC] = ["P0A7F00", "U0100", "P0A3C"]
    odd.values[ODO] = None
    odd.maintenance.serviced_ms[2] = odd.last_seen - 86_400_000
    odd.history.inverter.rf.stack = [1, 2.5, -3]                  # ints among floats
    odd.risk = RiskState("m0", 5, 30.0, ["inverter"], [0.5], ["x"], [0.1])
    odd.alerts = AlertBook(active=[Alert(schema=1, alert_id="a", revision=1, event="opened", status="open",
                                         vin=odd.vin, component="inverter", rule="r", rule_kind="risk",
                                         rules_version="1", severity="high", title="t", action="a", evidence={},
                                         probability=0.5, horizon_days=30.0, model_version="m0", region=None,
                                         weather=None, opened_ms=1, updated_ms=1, resolved_ms=None, by=None,
                                         note=None)])
    return out + [odd, new_twin("NEW00000000000001")]


def _read(twins, program=RECORD_PROGRAM, buffer=None):
    return TwinRecords([t.vin for t in twins], [encode_twin(t) for t in twins], program, buffer)


def test_numbers_lists_and_positions_equal_the_twins(twins):
    recs = _read(twins)
    assert recs.ok.all()
    col = recs.column
    assert col("history.inverter.peak_c").tolist() == [t.history.inverter.peak_c for t in twins]
    assert col("history.lv.events").tolist() == [float(t.history.lv.events) for t in twins]
    assert col("last_seen").tolist() == [float(t.last_seen) for t in twins]
    odo = col(f"values.{ODO}")
    assert np.isnan(odo[-2]) and odo[:3].tolist() == [t.values[ODO] for t in twins[:3]]
    np.testing.assert_array_equal(col("history.daily.base", 6), [t.history.daily.base for t in twins])
    # the ring row before the day's row, as FeatureRows reads it from objects
    want = [t.history.daily.ring[(t.history.daily.day - 1) % N_DAYS * N_COLS:][:N_COLS] for t in twins]
    np.testing.assert_array_equal(col("history.daily.ring", N_COLS), want)
    # lists: one record after the other
    stack, lens = recs.items("history.inverter.rf.stack", np.arange(len(twins)))
    assert lens.tolist() == [len(t.history.inverter.rf.stack) for t in twins]
    assert stack.tolist() == [float(x) for t in twins for x in t.history.inverter.rf.stack]
    cells, lens = recs.items("residency.cells", np.arange(len(twins)))
    assert [c.to_bytes(8, "little").rstrip(b"\0").decode() for c in cells.tolist()] == [
        c for t in twins for c in t.residency.cells]
    # optional structs: present or not, and the byte positions of the risk and alert fields
    assert col("risk?").tolist() == [float(t.risk is not None) for t in twins]
    assert recs.string_equals("risk.version", "m0").tolist() == [t.risk is not None for t in twins]
    for r in (0, len(twins) - 2):
        raw = recs.record(r)
        risk_at = int(col("risk")[r] - recs.starts[r])
        alerts_at = int(col("alerts")[r] - recs.starts[r])
        assert msgspec.msgpack.decode(raw[risk_at:alerts_at], type=RiskState | None) == twins[r].risk
        tail = msgspec.msgpack.decode(b"\x92" + raw[alerts_at:], type=tuple[AlertBook | None, int])
        assert tail == (twins[r].alerts, twins[r].seq_floor)  # the alert book, then the fields after it
    flags, good = recs.prefix_flags(f"values.{DTC}", np.array([len(twins) - 2]), ["P0A7F", "P0AA6", "P0A3C"])
    assert good.all() and flags.tolist() == [[3.0, 1.0, 0.0, 1.0]]


def test_feature_rows_from_records_equal_rows_from_twins(twins):
    """The record path builds bit for bit the rows the object path builds (training's code)."""
    now = max(t.last_seen for t in twins) + 3_600_000
    services = [t.first_seen - 86_400_000 * (i % 400) if i % 7 else None for i, t in enumerate(twins)]
    lookup = lambda cell, hour: (20.0 + (hour % 24), 60.0 + (hour % 40)) if hour % 5 else None  # noqa: E731
    from models.risk.record_scoring import record_ages
    from models.risk.scoring import component_ages

    ages = [component_ages(t.maintenance, now, s) for t, s in zip(twins, services)]
    want = feature_matrix(twins, ExposureCache(lookup), now_ms=now, in_service_ms=services, component_ages_days=ages)
    recs = _read(twins)
    service = np.array([np.nan if s is None else s for s in services])
    rows = FeatureRows(ExposureCache(lookup), reuse_ring_summaries=False)
    taken = rows.add_records(recs, now, service, record_ages(recs.column("maintenance.serviced_ms", 4), service, now))
    assert taken.tolist() == list(range(len(twins)))
    np.testing.assert_array_equal(rows.matrix(), want)


def test_records_that_do_not_fit_are_flagged_not_misread(twins):
    good = encode_twin(twins[0])
    older = msgspec.msgpack.encode(msgspec.structs.astuple(twins[0])[:-1])      # written before `alerts` existed
    text_odo = copy_twin(twins[0])
    text_odo.values[ODO] = "12 km"
    recs = TwinRecords(["A", "B", "C", "D"], [good, older, encode_twin(text_odo), good[:-5]], RECORD_PROGRAM)
    assert recs.ok.tolist() == [True, False, False, False]


def test_corrupt_records_never_read_past_their_end(twins):
    """Truncated and bit-flipped records are flagged (or read as other numbers), never crash or overrun."""
    rng = np.random.default_rng(5)
    raws = [encode_twin(t) for t in twins[:40]]
    bad = []
    for raw in raws:
        cut = raw[:int(rng.integers(0, len(raw)))]
        flipped = bytearray(raw)
        for _ in range(8):
            flipped[int(rng.integers(0, len(raw)))] = int(rng.integers(0, 256))
        bad += [cut, bytes(flipped), raw[:10] + b"\xdd\xff\xff\xff\xff" + raw[10:]]  # an absurd array length
    recs = TwinRecords([str(i) for i in range(len(bad))], bad, RECORD_PROGRAM)
    assert not recs.ok[0::3].any()                                               # every truncated one
    assert not recs.ok[2::3].any()


def test_side_rows_grow_and_resume_with_the_same_result(twins):
    """A batch whose lists outgrow the kept side rows is read on from where they ran full."""
    small = RecordBuffer()
    small.side = np.empty((len(RECORD_PROGRAM.lists), 3))
    a = _read(twins, buffer=small)
    b = _read(twins)
    np.testing.assert_array_equal(a.fields, b.fields)
    for path in RECORD_PROGRAM.lists:
        np.testing.assert_array_equal(a.items(path, np.arange(len(twins)))[0], b.items(path, np.arange(len(twins)))[0])


def test_build_program_names_unknown_fields():
    with pytest.raises(ValueError, match=r"no such field\(s\) in Twin: \['history.inverter.peak'\]"):
        build_program(Twin, {"history.inverter.peak": "num"})
    program = build_program(Twin, {f"values.{ODO}": "num"}, fixed_lists={"values": N_SIGNALS})
    twin = new_twin("X")
    twin.values[ODO] = 42.5
    assert TwinRecords(["X"], [encode_twin(twin)], program).column(f"values.{ODO}").tolist() == [42.5]
