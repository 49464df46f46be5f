"""The proposed topic contract: JSON in, planner events, SitePlan JSON out."""

from __future__ import annotations

import msgspec
import pytest

from models.charging import Planner, SitePlan
from models.charging.errors import UnknownSession
from models.charging.lp import LpSolver
from models.charging.messages import (DemandResponse, GridUpdate, Meter, PlugIn, PlugOut, Tick, apply, apply_batch,
                                      decode_message, encode)
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


class _CountingSolver(LpSolver):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def solve(self, problem):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().solve(problem)


def test_a_batch_of_events_is_one_replan():
    """Five messages taken together for a site (three plug-ins, a meter reading, a grid update) -> one LP solve
    and one plan; the same messages one by one re-plan five times and end with the same vehicles."""
    site = depot(cap_kw=30.0, n_ac=3)
    solver = _CountingSolver()
    pl = Planner(site, evening_tou(), solver=solver)
    apply(pl, PlugIn(request("A", 5.0, 19.0, charger="ac0", energy_kwh=30.0), hours(5.0)))
    batch = [PlugIn(request("B", 5.5, 9.0, charger="ac1", energy_kwh=25.0), hours(5.5)),
             PlugIn(request("C", 5.5, 20.0, charger="ac2", energy_kwh=10.0), hours(5.5)),
             Meter("depot", "A", 1.5, hours(5.5)),
             GridUpdate(evening_tou(flat=0.2), hours(5.5)),
             Tick("depot", hours(5.5))]
    solver.calls = 0
    plans, refused = apply_batch(pl, [decode_message(encode(m)) for m in batch])
    assert refused == [] and solver.calls == 1
    assert [p.trigger for p in plans] == ["batch:4"]
    assert sorted(v.vin for v in plans[0].vehicles) == ["A", "B", "C"]
    assert pl.delivered_kwh("A") == 1.5 and pl.signals.prices_per_kwh[0] == 0.2

    one = Planner(site, evening_tou(), solver=_CountingSolver())
    apply(one, PlugIn(request("A", 5.0, 19.0, charger="ac0", energy_kwh=30.0), hours(5.0)))
    singles = [apply(one, m) for m in batch]
    assert [p.trigger for p in singles if p] == ["plug_in:B", "plug_in:C", "delivery:A", "grid"]


def test_a_vehicle_twice_in_a_batch_keeps_its_order_and_a_refused_message_is_refused_alone():
    site = depot(cap_kw=30.0, n_ac=3)
    pl = Planner(site, evening_tou(), solver=_CountingSolver())
    apply(pl, PlugIn(request("A", 5.0, 19.0, charger="ac0"), hours(5.0)))
    # A leaves and comes back (a new session): two updates, in order, so A is plugged in at the end
    plans, refused = apply_batch(pl, [PlugOut("depot", "A", hours(5.5)),
                                      PlugIn(request("A", 5.6, 12.0, charger="ac0"), hours(5.6))])
    assert refused == [] and [p.trigger for p in plans] == ["plug_out:A", "plug_in:A"]
    assert [s.plug_in for s in pl.sessions] == [hours(5.6)]
    # a reading for a vehicle that is not there: only that message is refused, naming vehicle and site
    plans, refused = apply_batch(pl, [PlugIn(request("B", 6.0, 9.0, charger="ac1"), hours(6.0)),
                                      Meter("depot", "GHOST", 1.0, hours(6.0)),
                                      Meter("depot", "A", 0.5, hours(6.0))])
    assert [i for i, _ in refused] == [1] and isinstance(refused[0][1], UnknownSession)
    assert "'GHOST'" in str(refused[0][1]) and "'depot'" in str(refused[0][1])
    assert [p.trigger for p in plans] == ["plug_in:B", "delivery:A"]
    assert pl.delivered_kwh("A") == 0.5 and sorted(s.vin for s in pl.sessions) == ["A", "B"]


def test_a_meter_message_decodes_and_teaches_the_planner_the_vehicles_rate():
    raw = b'{"type":"meter","site_id":"depot","vin":"A","delivered_kwh":-1,"at":"2026-03-03T18:00:00-08:00"}'
    with pytest.raises(InvalidReading, match="Expected `float` >= 0.0"):
        decode_message(raw)
    site = depot(cap_kw=30.0, n_ac=1)
    pl = Planner(site, evening_tou(flat=0.2, demand_charge=0.0))
    plan = apply(pl, PlugIn(request("A", 0.0, 8.0, max_kw=11.0, charger="ac0", energy_kwh=60.0), hours(0.0)))
    offered = plan.vehicle("A").kw[0]
    took = 0.92 * 0.5 * offered * 0.25  # the car took half of what the first 15 minutes offered
    plan = apply(pl, decode_message(encode(Meter("depot", "A", took, hours(0.25)))))
    assert plan.trigger == "delivery:A" and pl.sessions[0].max_kw == pytest.approx(0.5 * offered, rel=1e-6)
    assert max(plan.vehicle("A").kw) <= 0.5 * offered + 1e-9


@pytest.mark.parametrize("raw, field", [
    (b'{"type":"meter","site_id":"depot","vin":"A","delivered_kwh":1e30,"at":"2026-03-03T18:00:00-08:00"}',
     "$.delivered_kwh"),
    (b'{"type":"plug_in","at":"2026-03-03T18:00:00-08:00","request":{"vin":"A","site_id":"depot",'
     b'"plug_in":"2026-03-03T18:00:00-08:00","departure":"2026-03-04T06:00:00-08:00","max_kw":11,'
     b'"energy_kwh":1e30}}', "energy_kwh"),
    (b'{"type":"plug_in","at":"2026-03-03T18:00:00-08:00","request":{"vin":"A","site_id":"depot",'
     b'"plug_in":"2026-03-03T18:00:00-08:00","departure":"2026-03-04T06:00:00-08:00","max_kw":5e6,'
     b'"energy_kwh":20}}', "max_kw"),
])
def test_implausible_energies_and_powers_are_refused_naming_the_field(raw, field):
    """1e30 kWh delivered would count a vehicle done; a 5 GW charger is a unit error: both refused at decode."""
    with pytest.raises(InvalidReading, match=field.replace("$", r"\$")):
        decode_message(raw)
    site = depot(cap_kw=30.0, n_ac=1)
    pl = Planner(site, evening_tou())
    apply(pl, PlugIn(request("A", 0.0, 8.0, charger="ac0", energy_kwh=20.0), hours(0.0)))
    with pytest.raises(ValueError, match=r"delivered_kwh of 'A' must be a finite number in \[0, 2000\]"):
        pl.record_delivery("A", 1e30, hours(0.25))
