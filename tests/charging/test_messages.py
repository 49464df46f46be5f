"""The proposed topic contract: JSON in, planner events, SitePlan JSON out."""

from __future__ import annotations

import msgspec
import pytest

from models.charging import Planner, SitePlan
from models.charging.messages import DemandResponse, PlugIn, PlugOut, Tick, apply, decode_message, encode
from tests.charging._helpers import depot, evening_tou, hours, request
from twins.errors import InvalidReading


def test_json_messages_drive_a_planner_end_to_end():
    site = depot(cap_kw=30.0, n_ac=3)
    pl = Planner(site, evening_tou())
    stream = [PlugIn(request("A", 5.0, 19.0, charger="ac0", energy_kwh=30.0), hours(5.0)),
              PlugIn(request("B", 5.5, 9.0, charger="ac1", energy_kwh=25.0), hours(5.5)),
              Tick("depot", hours(5.6)),
              PlugOut("depot", "B", hours(6.0))]
    plans = [apply(pl, decode_message(encode(m))) for m in stream]
    assert plans[2] is None  # tick not due yet
    assert [p.trigger for p in plans if p] == ["plug_in:A", "plug_in:B", "plug_out:B"]
    dr_raw = (b'{"type":"dr_event","site_id":"depot","event":{"id":"dr7","start":"2026-03-03T21:00:00-08:00",'
              b'"end":"2026-03-03T23:00:00-08:00","cap_kw":4.0},"at":"2026-03-03T18:30:00-08:00"}')
    msg = decode_message(dr_raw)
    assert isinstance(msg, DemandResponse)
    plan = apply(pl, msg)
    out = msgspec.json.decode(encode(plan), type=SitePlan)
    assert out.trigger == "dr_event:dr7" and out.vehicle("A").unmet_kwh == 0.0
    in_dr = [i for i, s in enumerate(out.slot_starts()) if msg.event.start <= s < msg.event.end]
    assert max(out.site_load_kw[i] for i in in_dr) <= 4.0 + 1e-9


def test_bad_messages_fail_loudly():
    with pytest.raises(InvalidReading, match="cap_kw must be >= 0") as bad:
        decode_message(b'{"type":"dr_event","site_id":"s","event":{"id":"x","start":"2026-03-03T21:00:00Z",'
                       b'"end":"2026-03-03T22:00:00Z","cap_kw":-1},"at":"2026-03-03T20:00:00Z"}')
    assert bad.value.field == "$.event"
    with pytest.raises(InvalidReading, match="Invalid value 'charge'"):
        decode_message(b'{"type":"charge","site_id":"s","at":"2026-03-03T20:00:00Z"}')
    pl = Planner(depot(10.0), evening_tou())
    with pytest.raises(ValueError, match="message for site 'other'"):
        apply(pl, Tick("other", hours(1)))
