"""The pure alert lifecycle: hysteresis, durations, gates, wakes, DTCs, staleness, hand actions, adopt, replay."""

from __future__ import annotations

import pytest

from twins.alerts.engine import (
    AlertConflict,
    AlertNotFound,
    acknowledge,
    adopt,
    observe_readings,
    observe_risk,
    resolve,
    retire_unknown,
    staleness_due,
    sweep_staleness,
)
from twins.alerts.rules import parse_rules
from twins.alerts.state import AlertBook, decode_alert, encode_alert
from twins.reading import reading_from_dict
from twins.risk import RiskState
from twins.twin import copy_twin, decode_twin, encode_twin, new_twin

VIN = "5YJ3E1EA7KF000001"
T0 = 1_767_225_600_000
INV = "Vehicle.Powertrain.TractionInverter.Temperature"
LV = "Vehicle.LowVoltageBattery.CurrentVoltage"
LVSTATE = "Vehicle.LowVoltageSystemState"
CELL = "Vehicle.Powertrain.TractionBattery.Temperature.Max"
CHARGING = "Vehicle.Powertrain.TractionBattery.Charging.IsCharging"
DTC = "Vehicle.Diagnostics.DTCList"

RULES = parse_rules("""
version = "test-1"
default_cooldown_s = 600
wake_window_s = 10

[[risk]]
id = "inv-risk"
component = "inverter"
theta_high = 0.3
theta_low = 0.1
severity = { major = 0.3, critical = 0.6 }
cooldown_s = 3600
action = "inspect"

[[signal]]
id = "inv-hot"
component = "inverter"
signal = "Vehicle.Powertrain.TractionInverter.Temperature"
above = 110.0
clear = 95.0
for_s = 60
severity = "major"

[[signal]]
id = "lv-wake"
component = "lv_battery"
signal = "Vehicle.LowVoltageBattery.CurrentVoltage"
below = 11.8
clear = 12.2
at = "wake"
severity = "major"

[[signal]]
id = "cell-hot-charging"
component = "traction_battery"
signal = "Vehicle.Powertrain.TractionBattery.Temperature.Max"
above = 55.0
clear = 50.0
when = { signal = "Vehicle.Powertrain.TractionBattery.Charging.IsCharging", equals = true }
severity = "critical"

[[dtc]]
code = "P0A3C"
component = "inverter"
severity = "major"

[[staleness]]
id = "silent"
after_h = 6
give_up_h = 48
""")


class Stream:
    """Readings of one vehicle with increasing seq."""

    def __init__(self) -> None:
        self.seq = 0

    def __call__(self, t_s: float, **signals: object):
        paths = {"inv": INV, "lv": LV, "state": LVSTATE, "cell": CELL, "charging": CHARGING, "dtc": DTC}
        self.seq += 1
        return reading_from_dict({"schema": 1, "vin": VIN, "ts": T0 + int(t_s * 1000), "seq": self.seq,
                                  "signals": {paths[k]: v for k, v in signals.items()}})


def risk(p: float, t_s: float = 0, horizon: float = 30.0) -> RiskState:
    return RiskState("m1", T0 + int(t_s * 1000), horizon, ["inverter", "traction_battery"], [p, 0.01],
                     ["inv_cycles_total", "batt_efc"], [1.25, 0.1])


def test_risk_crossing_raises_once_oscillation_holds_and_theta_low_resolves():
    book = AlertBook()
    (opened,) = observe_risk(book, RULES, VIN, risk(0.35, 0))
    assert (opened.alert_id, opened.event, opened.status, opened.severity) == (f"{VIN}:inv-risk:1", "opened",
                                                                                "open", "major")
    assert opened.probability == pytest.approx(0.35) and opened.horizon_days == 30.0
    assert opened.model_version == "m1" and opened.rules_version == "test-1" and opened.action == "inspect"
    assert opened.evidence["top_features"] == [{"feature": "inv_cycles_total", "contribution": 1.25}]
    # oscillating between theta_low and theta_high and back above: no new alert, no record
    for t, p in enumerate([0.2, 0.31, 0.12, 0.5, 0.11], start=1):
        assert observe_risk(book, RULES, VIN, risk(p, t)) == []
    assert [a.alert_id for a in book.active] == [opened.alert_id]
    (resolved,) = observe_risk(book, RULES, VIN, risk(0.1, 10))
    assert (resolved.alert_id, resolved.status, resolved.revision, resolved.by) == (opened.alert_id, "resolved", 2,
                                                                                    "system")
    assert resolved.resolved_ms == T0 + 10_000 and book.active == []
    # cooldown (3600 s): a new crossing is quiet, after it a second episode opens
    assert observe_risk(book, RULES, VIN, risk(0.9, 100)) == []
    (again,) = observe_risk(book, RULES, VIN, risk(0.9, 3611))
    assert again.alert_id == f"{VIN}:inv-risk:2" and again.severity == "critical"


def test_risk_escalates_severity_but_never_downgrades():
    book = AlertBook()
    observe_risk(book, RULES, VIN, risk(0.35, 0))
    (esc,) = observe_risk(book, RULES, VIN, risk(0.7, 1))
    assert (esc.event, esc.severity, esc.revision, esc.status) == ("escalated", "critical", 2, "open")
    assert observe_risk(book, RULES, VIN, risk(0.35, 2)) == []
    assert book.active[0].severity == "critical"


def test_risk_rescaled_to_the_rule_horizon():
    rules = parse_rules('version = "h"\n[[risk]]\nid = "r"\ncomponent = "inverter"\ntheta_high = 0.5\n'
                        'theta_low = 0.2\nhorizon_days = 60\nseverity = { major = 0.5 }\n')
    book = AlertBook()
    # 0.3 over 30 days = 1 - 0.7^2 = 0.51 over 60 days: raised
    (a,) = observe_risk(book, rules, VIN, risk(0.3))
    assert a.probability == pytest.approx(0.51) and a.horizon_days == 60


def test_signal_must_hold_for_its_duration_and_clears_past_the_hysteresis():
    s, book = Stream(), AlertBook()
    # 50 s above 110 then a dip to 100 (between clear and threshold): the timer restarts
    assert observe_readings(book, RULES, VIN, [s(0, inv=115.0), s(30, inv=118.0), s(50, inv=100.0)]) == []
    assert observe_readings(book, RULES, VIN, [s(60, inv=112.0), s(100, inv=113.0)]) == []
    (a,) = observe_readings(book, RULES, VIN, [s(110, lv=12.5), s(120, inv=111.0)])  # 60 s since t=60
    assert a.rule == "inv-hot" and a.opened_ms == T0 + 120_000
    assert a.evidence == {"signal": INV, "value": 111.0, "threshold": 110.0, "since_ms": T0 + 60_000,
                          "duration_s": 60.0}
    # above clear (95) keeps it open, at/below clear resolves
    assert observe_readings(book, RULES, VIN, [s(130, inv=100.0), s(140, inv=120.0)]) == []
    (r,) = observe_readings(book, RULES, VIN, [s(150, inv=95.0)])
    assert (r.status, r.revision, r.resolved_ms) == ("resolved", 2, T0 + 150_000)


def test_gate_only_while_charging():
    s, book = Stream(), AlertBook()
    assert observe_readings(book, RULES, VIN, [s(0, cell=58.0, charging=False), s(5, cell=59.0)]) == []
    (a,) = observe_readings(book, RULES, VIN, [s(10, charging=True)])  # last known cell temp 59 while charging
    assert a.rule == "cell-hot-charging" and a.severity == "critical" and a.evidence["value"] == 59.0
    assert a.evidence["while"] == {CHARGING: True}


def test_wake_rule_judges_only_the_wake_window():
    s, book = Stream(), AlertBook()
    # low voltage while awake (no wake seen) and while asleep: not judged
    assert observe_readings(book, RULES, VIN, [s(0, state="ON", lv=11.5), s(10, state="OFF", lv=11.6)]) == []
    (a,) = observe_readings(book, RULES, VIN, [s(100, state="ON", lv=11.7)])
    assert a.rule == "lv-wake" and a.evidence["at"] == "wake" and a.evidence["value"] == 11.7
    # a good voltage outside the wake window does not clear; the next wake with >= 12.2 V does
    assert observe_readings(book, RULES, VIN, [s(200, lv=12.6), s(300, state="LOCK")]) == []
    assert observe_readings(book, RULES, VIN, [s(400, state="START", lv=12.0)]) == []  # between 11.8 and 12.2
    observe_readings(book, RULES, VIN, [s(500, state="OFF")])
    (r,) = observe_readings(book, RULES, VIN, [s(600, state="ACC", lv=12.4)])
    assert r.status == "resolved" and r.alert_id == a.alert_id


def test_dtc_catalogue_raises_per_code_and_resolves_when_cleared():
    s, book = Stream(), AlertBook()
    (a,) = observe_readings(book, RULES, VIN, [s(0, dtc=["U0100", "P0A3C"])])
    assert (a.rule, a.component, a.evidence) == ("dtc-p0a3c", "inverter",
                                                 {"dtc": "P0A3C", "active_dtcs": ["P0A3C", "U0100"]})
    assert observe_readings(book, RULES, VIN, [s(1, dtc=["P0A3C"]), s(2, inv=60.0)]) == []
    (r,) = observe_readings(book, RULES, VIN, [s(3, dtc=[])])
    assert r.status == "resolved"


def test_staleness_opens_when_due_and_resolves_on_the_next_reading():
    s, book = Stream(), AlertBook()
    last_seen = T0
    assert sweep_staleness(book, RULES, VIN, last_seen, T0 + 5 * 3_600_000) == []
    (a,) = sweep_staleness(book, RULES, VIN, last_seen, T0 + 7 * 3_600_000)
    assert a.opened_ms == T0 + 6 * 3_600_000 and a.component == "vehicle" and a.evidence["silent_h"] == 7.0
    assert sweep_staleness(book, RULES, VIN, last_seen, T0 + 8 * 3_600_000) == []  # one open alert
    (r,) = observe_readings(book, RULES, VIN, [s(9 * 3600, inv=40.0)])
    assert r.rule == "silent" and r.status == "resolved"
    # silent for longer than give_up_h: out of service, not raised
    assert sweep_staleness(AlertBook(), RULES, VIN, T0, T0 + 49 * 3_600_000) == []
    # the sweep decodes a twin in full only when this says a staleness alert could open (or it has active ones)
    assert [staleness_due(RULES, T0, T0 + h * 3_600_000) for h in (5, 6, 7, 48, 49)] == [False, True, True, True,
                                                                                            False]
    assert not staleness_due(RULES, 0, T0)   # never seen: nothing to miss


def test_ack_and_resolve_by_hand():
    book = AlertBook()
    (a,) = observe_risk(book, RULES, VIN, risk(0.4, 0))
    ack = acknowledge(book, a.alert_id, "j.doe", T0 + 5_000, "on it")
    assert (ack.status, ack.event, ack.revision, ack.by, ack.note) == ("acknowledged", "acknowledged", 2, "j.doe",
                                                                       "on it")
    assert a.status == "open"  # the published record is never mutated
    with pytest.raises(AlertConflict, match="already acknowledged"):
        acknowledge(book, a.alert_id, "k.roe", T0 + 6_000)
    # still tracked by the risk rule while acknowledged: theta_low resolves it automatically
    done = resolve(book, RULES, a.alert_id, "k.roe", T0 + 7_000)
    assert (done.status, done.revision, done.by, done.resolved_ms) == ("resolved", 3, "k.roe", T0 + 7_000)
    with pytest.raises(AlertNotFound):
        resolve(book, RULES, a.alert_id, "k.roe", T0 + 8_000)
    # cooldown runs from the manual resolve
    assert observe_risk(book, RULES, VIN, risk(0.9, 100)) == []


def test_replay_is_deterministic_and_duplicates_change_nothing():
    s = Stream()
    readings = [s(t, inv=v) for t, v in [(0, 112.0), (30, 115.0), (61, 116.0), (90, 90.0), (800, 120.0),
                                         (900, 121.0)]]
    first, second = AlertBook(), AlertBook()
    out1 = observe_readings(first, RULES, VIN, readings)
    out2 = observe_readings(second, RULES, VIN, readings[:2]) + observe_readings(second, RULES, VIN, readings[2:])
    assert [(a.alert_id, a.revision, a.status) for a in out1] == [(a.alert_id, a.revision, a.status) for a in out2]
    assert [a.alert_id for a in out1] == [f"{VIN}:inv-hot:1", f"{VIN}:inv-hot:1", f"{VIN}:inv-hot:2"]
    # the same readings again (a replay after a restart) and an older one: nothing new
    assert observe_readings(first, RULES, VIN, readings) == []


def test_adopt_brings_a_book_up_to_the_topic_so_a_replay_raises_nothing_twice():
    s = Stream()
    readings = [s(0, inv=112.0), s(70, inv=113.0)]
    live = AlertBook()
    (published,) = observe_readings(live, RULES, VIN, readings)
    # crash: the record reached the topic, the book in the changelog did not
    restored = AlertBook()
    assert adopt(restored, decode_alert(encode_alert(published)), RULES)
    assert observe_readings(restored, RULES, VIN, readings) == []
    assert [a.alert_id for a in restored.active] == [published.alert_id]
    assert not adopt(restored, published, RULES)  # same revision: nothing to do
    # a resolved record removes the alert and starts the cooldown
    closed = resolve(live, RULES, published.alert_id, "ops", T0 + 100_000)
    assert adopt(restored, closed, RULES) and restored.active == []
    assert restored.cooldown_until["inv-hot"] == T0 + 100_000 + 600_000
    assert restored.episodes["inv-hot"] == 1


def test_retire_alerts_of_removed_rules():
    book = AlertBook()
    observe_risk(book, RULES, VIN, risk(0.4))
    rules2 = parse_rules('version = "test-2"\n[[staleness]]\nid = "silent"\nafter_h = 6\n')
    (r,) = retire_unknown(book, rules2, T0 + 1)
    assert r.status == "resolved" and "test-2" in r.note and book.active == []


def test_book_round_trips_with_the_twin():
    s = Stream()
    twin = new_twin(VIN)
    twin.alerts = AlertBook()
    observe_readings(twin.alerts, RULES, VIN, [s(0, inv=112.0), s(70, inv=113.0), s(71, dtc=["P0A3C"])])
    back = decode_twin(encode_twin(twin))
    assert back.alerts == twin.alerts and len(back.alerts.active) == 2
    copy = copy_twin(twin)
    acknowledge(copy.alerts, copy.alerts.active[0].alert_id, "x", T0 + 80_000)
    assert twin.alerts.active[0].status == "open"


def test_a_seeded_book_decides_like_a_stored_one_and_idle_books_are_not_kept():
    from twins.alerts.engine import idle, seed_book
    from twins.twin import merge_into

    s = Stream()
    first = [s(0, inv=112.0, state="OFF", lv=12.0), s(10, inv=113.0)]
    later = [s(75, inv=114.0), s(100, state="ON", lv=11.6)]
    stored = AlertBook()
    kept = observe_readings(stored, RULES, VIN, first) + observe_readings(stored, RULES, VIN, later)
    # the same stream where the twin kept no book: seeded from the twin's values before each merge
    twin = new_twin(VIN)
    seeded: list = []
    for batch in (first, later):
        book = twin.alerts or seed_book(RULES, twin.values, twin.last_seen)
        merge_into(twin, batch)
        seeded += observe_readings(book, RULES, VIN, batch)
        twin.alerts = None if idle(book) else book
    assert [(a.alert_id, a.status) for a in seeded] == [(a.alert_id, a.status) for a in kept]
    assert [a.rule for a in kept] == ["inv-hot", "lv-wake"]
    assert twin.alerts is not None and twin.alerts.episodes == {"inv-hot": 1, "lv-wake": 1}
    # a quiet vehicle keeps no book
    quiet, q = new_twin(VIN), Stream()
    book = seed_book(RULES, quiet.values, quiet.last_seen)
    readings = [q(0, inv=60.0, state="ON", lv=12.6), q(1, inv=61.0)]
    merge_into(quiet, readings)
    assert observe_readings(book, RULES, VIN, readings) == [] and idle(book)
