"""Briefs of stored twins: the fields listings and the sweep read equal the full decode's; other
layouts are decoded in full (migrated or refused), never misread."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from twins.alerts.state import Alert, AlertBook
from twins.brief import BRIEF_FIELDS, active_alerts, decode_brief
from twins.layout import TwinLayoutError
from twins.twin import Twin, decode_twin, encode_twin
from twins.view import FleetSummary, twin_brief

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "twin-layout"


def _alert(n: int) -> Alert:
    return Alert(alert_id=f"VF16W24HXND303032:inv_hot:{n}", revision=1, event="opened", status="open",
                 vin="VF16W24HXND303032", component="inverter", rule="inv_hot", rule_kind="signal",
                 rules_version="1", severity="major", title="hot", action="inspect", evidence={},
                 opened_ms=1_000 * n, updated_ms=1_000 * n)


def test_a_brief_holds_the_full_decodes_fields_and_lists_and_counts_the_same():
    twin = decode_twin((GOLDEN / "layout-2.msgpack").read_bytes())
    twin.alerts = AlertBook(active=[_alert(1), _alert(2)], episodes={"inv_hot": 2})
    record = encode_twin(twin)
    brief = decode_brief(record)
    full = decode_twin(record)
    for name in BRIEF_FIELDS - {"alerts"}:
        assert getattr(brief, name) == getattr(full, name), name
    assert isinstance(brief.history, msgspec.Raw)   # not decoded
    assert active_alerts(brief) == active_alerts(full) == 2
    now = full.last_seen + 3_600_000
    assert twin_brief(brief, now, 600_000) == twin_brief(full, now, 600_000)
    a, b = FleetSummary(), FleetSummary()
    a.add(brief, now, 600_000)
    b.add(full, now, 600_000)
    assert a.as_dict() == b.as_dict() and a.as_dict()["messages_applied"] == 720


def test_other_layouts_are_decoded_in_full_or_refused():
    old = decode_brief((GOLDEN / "layout-1.msgpack").read_bytes())   # before layout versions: migrated
    assert isinstance(old, Twin) and old.n_applied == 720
    twin = decode_twin((GOLDEN / "layout-2.msgpack").read_bytes())
    newer = msgspec.msgpack.encode([3, *msgspec.structs.astuple(twin)[1:]])
    with pytest.raises(TwinLayoutError, match="layout 3"):
        decode_brief(newer)
