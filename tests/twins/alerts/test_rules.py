"""Rules files: the shipped one loads; every kind of mistake is rejected naming rule, field and value."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest

import twins.alerts.engine
import twins.alerts.rules
import twins.alerts.state
from twins.alerts.rules import DEFAULT_RULES, RulesError, load_rules, parse_rules
from twins.alerts.state import alert_schema

HEAD = 'version = "t1"\n'
RISK = """
[[risk]]
id = "inv"
component = "inverter"
theta_high = 0.3
theta_low = 0.1
severity = { major = 0.3, critical = 0.6 }
"""
SIGNAL = """
[[signal]]
id = "hot"
component = "inverter"
signal = "Vehicle.Powertrain.TractionInverter.Temperature"
above = 110.0
clear = 95.0
for_s = 60
severity = "major"
"""


def test_shipped_rules_load_and_cover_every_kind():
    rules = load_rules(DEFAULT_RULES)
    assert rules.version and len(rules.digest) == 12
    assert {r.component for r in rules.risk} == {"inverter", "traction_battery", "drive_motor", "lv_battery"}
    assert {s.rule.id for s in rules.signal} == {"inverter-overtemp", "lv-low-at-wake", "battery-hot-while-charging"}
    assert rules.dtc_by_code["P0A3C"].component == "inverter"
    assert rules.staleness[0].after_h == 6
    assert rules.wake_rules is True
    assert {attr for attr, _ in rules.watched} == {"inverter_temp", "lv_voltage", "pack_temp_max", "is_charging"}


def test_a_valid_file_compiles_thresholds_and_hysteresis():
    rules = parse_rules(HEAD + RISK + SIGNAL)
    (hot,) = rules.signal
    assert (hot.threshold, hot.clear, hot.above, hot.attr) == (110.0, 95.0, True, "inverter_temp")
    assert rules.by_id["inv"].theta_low == 0.1
    assert rules.cooldown_ms(rules.by_id["inv"]) == 3_600_000


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        (RISK.replace("theta_low = 0.1", "theta_low = 0.5"), ["risk rule 'inv'", "'theta_low'", "0.5", "below theta_high"]),
        (RISK.replace("theta_high = 0.3", "theta_high = 1.5"), ["risk rule 'inv'", "'theta_high'", "1.5"]),
        (RISK.replace('"inverter"', '"flux_capacitor"'), ["risk rule 'inv'", "'component'", "flux_capacitor"]),
        (RISK.replace("theta_high = 0.3", 'theta_high = "high"'), ["risk rule 'inv'", "'theta_high'", "'high'"]),
        (RISK.replace("severity = { major = 0.3, critical = 0.6 }", "severity = { critical = 0.6 }"),
         ["risk rule 'inv'", "'severity'", "theta_high"]),
        (RISK + "typo_field = 1\n", ["risk rule 'inv'", "typo_field"]),
        (SIGNAL.replace("Temperature\"", "Temp\""), ["signal rule 'hot'", "'signal'", "TractionInverter.Temp"]),
        (SIGNAL.replace("clear = 95.0", "clear = 120.0"), ["signal rule 'hot'", "'clear'", "120.0"]),
        (SIGNAL.replace("above = 110.0", "above = 900.0"), ["signal rule 'hot'", "'above'", "900.0"]),
        (SIGNAL.replace("above = 110.0", "above = 110.0\nbelow = 5.0"), ["signal rule 'hot'", "above/below"]),
        (SIGNAL.replace('severity = "major"', 'severity = "apocalyptic"'), ["signal rule 'hot'", "'severity'"]),
        (SIGNAL.replace('signal = "Vehicle.Powertrain.TractionInverter.Temperature"',
                        'signal = "Vehicle.Diagnostics.DTCList"'), ["signal rule 'hot'", "'signal'", "str_list"]),
        (SIGNAL + 'when = { signal = "Vehicle.Powertrain.TractionBattery.Charging.IsCharging", equals = "yes" }\n',
         ["signal rule 'hot'", "'when.equals'", "'yes'"]),
        (SIGNAL + SIGNAL, ["signal rule 'hot'", "'id'", "unique"]),
        ('[[dtc]]\ncode = "X123"\ncomponent = "inverter"\nseverity = "major"\n', ["dtc rule", "'code'", "X123"]),
        ('[[staleness]]\nid = "silent"\nafter_h = -1\n', ["staleness rule 'silent'", "'after_h'", "-1"]),
        ('[[risk]]\nid = "Bad Id"\ncomponent = "inverter"\ntheta_high = 0.3\ntheta_low = 0.1\n'
         'severity = { major = 0.1 }\n', ["risk rule 'Bad Id'", "'id'"]),
    ],
)
def test_invalid_rules_name_the_rule_field_and_value(text: str, expect: list[str]):
    with pytest.raises(RulesError) as err:
        parse_rules(HEAD + text)
    for part in expect:
        assert part in str(err.value), (part, str(err.value))


def test_file_level_errors_are_named():
    with pytest.raises(RulesError, match="not valid TOML"):
        parse_rules("version = ", "rules.toml")
    with pytest.raises(RulesError, match="'version'"):
        parse_rules(RISK)
    with pytest.raises(RulesError, match="cannot be read"):
        load_rules("/nonexistent/rules.toml")


def test_dtc_ids_default_from_the_code():
    rules = parse_rules(HEAD + '[[dtc]]\ncode = "P0A3C"\ncomponent = "inverter"\nseverity = "major"\n')
    assert rules.dtc_by_code["P0A3C"].id == "dtc-p0a3c" and "dtc-p0a3c" in rules.by_id


def test_alert_schema_file_is_current():
    committed = json.loads((Path(twins.alerts.state.__file__).parent / "alert.schema.json").read_text())
    assert committed == alert_schema(), "regenerate with: python -m twins.alerts.schema"


def test_alert_doctests_pass():
    for mod in (twins.alerts.rules, twins.alerts.state, twins.alerts.engine):
        result = doctest.testmod(mod)
        assert result.attempted > 0 and result.failed == 0, mod.__name__
