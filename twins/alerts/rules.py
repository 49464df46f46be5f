"""Alert rules: the versioned TOML file, its validation, and the compiled :class:`RuleSet`.

A rules file (see ``twins/alerts/default_rules.toml`` for the shipped one)::

    version = "2026-11-21.1"            # reported in every alert record

    [[risk]]                            # per component: calibrated failure probability
    id = "inverter-risk"
    component = "inverter"
    theta_high = 0.20                   # raise when p >= theta_high ...
    theta_low = 0.10                    # ... resolve when p <= theta_low (hysteresis)
    horizon_days = 30                   # p is rescaled from the model horizon (constant hazard)
    severity = { critical = 0.5, major = 0.2 }   # level -> lowest probability of that level
    cooldown_s = 86400                  # no re-raise this long after a resolve
    action = "Book an inverter inspection."

    [[signal]]                          # a signal past a threshold for a while
    id = "inverter-overtemp"
    component = "inverter"
    signal = "Vehicle.Powertrain.TractionInverter.Temperature"
    above = 110.0                       # or below = ...
    clear = 100.0                       # hysteresis; default: the threshold
    for_s = 60                          # event time the condition must hold
    when = { signal = "...Charging.IsCharging", equals = true }   # optional gate
    at = "wake"                         # optional: judge only in the first wake_window_s after a wake

    [[dtc]]                             # the DTC catalogue: code -> component and severity
    code = "P0A3C"
    component = "inverter"
    severity = "major"

    [[staleness]]                       # a vehicle that has gone silent
    id = "vehicle-silent"
    after_h = 6

Every problem raises :class:`RulesError` naming the rule, the field and the value.

>>> rs = parse_rules('version = "1"\\n[[dtc]]\\ncode = "P0A3C"\\ncomponent = "inverter"\\nseverity = "major"')
>>> [r.id for r in rs.dtc]
['dtc-p0a3c']
"""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import msgspec

from twins.errors import FleetAssuranceError
from twins.reading import DTC_PATTERN
from twins.signals import SIGNALS, SLOT

SEVERITIES: tuple[str, ...] = ("info", "minor", "major", "critical")
COMPONENTS: tuple[str, ...] = ("inverter", "traction_battery", "drive_motor", "lv_battery", "vehicle")
KINDS: tuple[str, ...] = ("risk", "signal", "dtc", "staleness")
Severity = Literal["info", "minor", "major", "critical"]
Component = Literal["inverter", "traction_battery", "drive_motor", "lv_battery", "vehicle"]
_ID = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
_BY_PATH = {s.path: s for s in SIGNALS}


class RulesError(FleetAssuranceError):
    """A rules file that cannot be used; names the rule, the field and the value."""


class _Base(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    action: str = ""
    cooldown_s: float | None = None


class RiskRule(_Base):
    """Raise on a component's calibrated failure probability, with hysteresis."""

    id: str
    component: Component
    theta_high: float
    theta_low: float
    severity: dict[Severity, float]
    horizon_days: float | None = None


class Gate(msgspec.Struct, forbid_unknown_fields=True):
    """Judge a signal rule only while ``signal`` equals ``equals``."""

    signal: str
    equals: bool | float | str


class SignalRule(_Base):
    """A signal above/below a threshold for at least ``for_s`` seconds of event time."""

    id: str
    component: Component
    signal: str
    severity: Severity
    above: float | None = None
    below: float | None = None
    clear: float | None = None
    for_s: float = 0.0
    when: Gate | None = None
    at: Literal["wake"] | None = None


class DtcRule(_Base):
    """A diagnostic trouble code that is active on the vehicle."""

    code: str
    component: Component
    severity: Severity
    id: str | None = None
    description: str = ""


class StalenessRule(_Base):
    """A vehicle that was online and has sent nothing for ``after_h`` hours."""

    id: str
    after_h: float
    #: a vehicle silent for longer than this is taken to be out of service and not alerted
    give_up_h: float = 168.0
    severity: Severity = "minor"
    component: Component = "vehicle"


@dataclass(frozen=True)
class CompiledSignal:
    """A :class:`SignalRule` resolved against the signal catalogue (slots, direction)."""

    rule: SignalRule
    attr: str
    slot: int
    threshold: float
    clear: float
    above: bool
    gate_attr: str | None
    gate_slot: int | None
    gate_value: Any


@dataclass(frozen=True)
class RuleSet:
    """A validated rules file. ``digest`` identifies its content; ``version`` is the author's label."""

    version: str
    digest: str
    risk: tuple[RiskRule, ...] = ()
    signal: tuple[CompiledSignal, ...] = ()
    dtc: tuple[DtcRule, ...] = ()
    staleness: tuple[StalenessRule, ...] = ()
    default_cooldown_s: float = 3600.0
    wake_window_s: float = 10.0
    by_id: dict[str, Any] = field(default_factory=dict)
    dtc_by_code: dict[str, DtcRule] = field(default_factory=dict)
    #: (reading attribute, signal slot) of what the signal rules read (thresholds and gates)
    watched: tuple[tuple[str, int], ...] = ()
    #: some signal rule is judged at wake (track the low-voltage system state)
    wake_rules: bool = False

    def cooldown_ms(self, rule: Any) -> int:
        """The rule's cooldown (its own or the file default) in ms."""
        c = rule.cooldown_s if rule.cooldown_s is not None else self.default_cooldown_s
        return int(c * 1000)


class _File(msgspec.Struct, forbid_unknown_fields=True):
    version: str
    default_cooldown_s: float = 3600.0
    wake_window_s: float = 10.0
    risk: list[Any] = []
    signal: list[Any] = []
    dtc: list[Any] = []
    staleness: list[Any] = []


def _where(msg: str) -> tuple[str, str]:
    """Split msgspec's ``... - at `$.x`'' into (message, field)."""
    m = re.search(r" - at `\$\.?(.*)`$", msg)
    text, where = (msg[: m.start()], m.group(1)) if m else (msg, "")
    missing = re.search(r"missing required field `(\w+)`", text)
    if missing:
        where = f"{where}.{missing.group(1)}" if where else missing.group(1)
    return text, where


def _convert(kind: str, i: int, raw: Any, typ: type) -> Any:
    name = raw.get("id") or raw.get("code") if isinstance(raw, dict) else None
    label = f"{kind} rule {name!r}" if name else f"{kind} rule #{i + 1}"
    try:
        return msgspec.convert(raw, typ)
    except msgspec.ValidationError as exc:
        msg, where = _where(str(exc))
        value = raw.get(where.split(".")[0]) if isinstance(raw, dict) and where else None
        shown = f" (value {value!r})" if where and value is not None else ""
        raise RulesError(f"{label}: field {where or '?'!r}: {msg}{shown}") from None


def _fail(kind: str, rule_id: str, fld: str, value: Any, why: str) -> RulesError:
    return RulesError(f"{kind} rule {rule_id!r}: field {fld!r} = {value!r}: {why}")


def _check_number(kind: str, rid: str, fld: str, value: float | None, lo: float, hi: float) -> None:
    if value is not None and not (math.isfinite(value) and lo <= value <= hi):
        raise _fail(kind, rid, fld, value, f"must be between {lo} and {hi}")


def _check_common(kind: str, rid: str, rule: Any) -> None:
    if not re.match(_ID, rid):
        raise _fail(kind, rid, "id", rid, f"must match {_ID} (lower-case letters, digits, '-', '_', '.')")
    _check_number(kind, rid, "cooldown_s", rule.cooldown_s, 0, 90 * 86400)


def _compile_signal(r: SignalRule) -> CompiledSignal:
    sig = _BY_PATH.get(r.signal)
    if sig is None:
        raise _fail("signal", r.id, "signal", r.signal, "is not a signal of the telemetry catalogue (twins/signals.py)")
    if sig.kind != "float":
        raise _fail("signal", r.id, "signal", r.signal, f"is a {sig.kind} signal; thresholds need a numeric one")
    if (r.above is None) == (r.below is None):
        raise _fail("signal", r.id, "above/below", (r.above, r.below), "set exactly one of `above` and `below`")
    threshold = r.above if r.above is not None else r.below
    assert threshold is not None
    _check_number("signal", r.id, "above" if r.above is not None else "below", threshold, sig.minimum, sig.maximum)
    clear = threshold if r.clear is None else r.clear
    above = r.above is not None
    if (above and clear > threshold) or (not above and clear < threshold):
        raise _fail("signal", r.id, "clear", r.clear,
                    f"must be on the safe side of the threshold {threshold} ({'<=' if above else '>='} it)")
    _check_number("signal", r.id, "for_s", r.for_s, 0, 7 * 86400)
    gate_attr = gate_value = gate_slot = None
    if r.when is not None:
        gsig = _BY_PATH.get(r.when.signal)
        if gsig is None:
            raise _fail("signal", r.id, "when.signal", r.when.signal, "is not a signal of the telemetry catalogue")
        want = {"bool": bool, "float": (int, float), "str": str}.get(gsig.kind)
        if want is None or not isinstance(r.when.equals, want) or (gsig.kind == "float" and
                                                                    isinstance(r.when.equals, bool)):
            raise _fail("signal", r.id, "when.equals", r.when.equals, f"must be a {gsig.kind} like {r.when.signal}")
        gate_attr, gate_slot, gate_value = gsig.attr, SLOT[gsig.path], r.when.equals
    return CompiledSignal(r, sig.attr, SLOT[sig.path], float(threshold), float(clear), above, gate_attr, gate_slot,
                          gate_value)


def parse_rules(text: str, source: str = "<rules>") -> RuleSet:
    """Validate a rules file's text into a :class:`RuleSet` (raises :class:`RulesError`)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{source} is not valid TOML: {exc}") from None
    try:
        top = msgspec.convert(data, _File)
    except msgspec.ValidationError as exc:
        msg, where = _where(str(exc))
        raise RulesError(f"{source}: field {where or '?'!r}: {msg}") from None
    if not top.version.strip():
        raise RulesError(f"{source}: field 'version' must not be empty; label the file, e.g. \"2026-11-21.1\"")
    by_id: dict[str, Any] = {}

    def register(kind: str, rid: str, rule: Any) -> None:
        _check_common(kind, rid, rule)
        if rid in by_id:
            raise _fail(kind, rid, "id", rid, "is used by another rule; rule ids must be unique")
        by_id[rid] = rule

    risk = []
    for i, raw in enumerate(top.risk):
        r = _convert("risk", i, raw, RiskRule)
        register("risk", r.id, r)
        if r.component == "vehicle":
            raise _fail("risk", r.id, "component", r.component, "risk rules need a component the models score")
        _check_number("risk", r.id, "theta_high", r.theta_high, 0, 1)
        _check_number("risk", r.id, "theta_low", r.theta_low, 0, 1)
        if not r.theta_low < r.theta_high:
            raise _fail("risk", r.id, "theta_low", r.theta_low, f"must be below theta_high ({r.theta_high})")
        _check_number("risk", r.id, "horizon_days", r.horizon_days, 1, 3650)
        if not r.severity:
            raise _fail("risk", r.id, "severity", r.severity, "give at least one level, e.g. { major = 0.2 }")
        for level, p in r.severity.items():
            _check_number("risk", r.id, f"severity.{level}", p, 0, 1)
        if min(r.severity.values()) > r.theta_high:
            raise _fail("risk", r.id, "severity", r.severity,
                        f"no level covers theta_high ({r.theta_high}); the lowest band must start at or below it")
        risk.append(r)
    signal = []
    for i, raw in enumerate(top.signal):
        r = _convert("signal", i, raw, SignalRule)
        register("signal", r.id, r)
        signal.append(_compile_signal(r))
    dtc: list[DtcRule] = []
    for i, raw in enumerate(top.dtc):
        r = _convert("dtc", i, raw, DtcRule)
        if not re.match(DTC_PATTERN, r.code):
            raise _fail("dtc", r.id or r.code, "code", r.code, f"is not a DTC (pattern {DTC_PATTERN})")
        if r.id is None:
            r.id = f"dtc-{r.code.lower()}"
        register("dtc", r.id, r)
        if any(d.code == r.code for d in dtc):
            raise _fail("dtc", r.id, "code", r.code, "appears twice in the catalogue")
        dtc.append(r)
    stale = []
    for i, raw in enumerate(top.staleness):
        r = _convert("staleness", i, raw, StalenessRule)
        register("staleness", r.id, r)
        _check_number("staleness", r.id, "after_h", r.after_h, 0.01, 24 * 365)
        _check_number("staleness", r.id, "give_up_h", r.give_up_h, r.after_h, 24 * 3650)
        stale.append(r)
    _check_number("file", "-", "default_cooldown_s", top.default_cooldown_s, 0, 90 * 86400)
    _check_number("file", "-", "wake_window_s", top.wake_window_s, 0, 3600)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    watched = tuple(dict.fromkeys([(s.attr, s.slot) for s in signal] +
                                  [(s.gate_attr, s.gate_slot) for s in signal if s.gate_attr and s.gate_slot is not None]))
    return RuleSet(top.version, digest, tuple(risk), tuple(signal), tuple(dtc), tuple(stale),
                   top.default_cooldown_s, top.wake_window_s, by_id, {d.code: d for d in dtc}, watched,
                   any(s.rule.at == "wake" for s in signal))


def load_rules(path: str | Path) -> RuleSet:
    """Read and validate a rules file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"alert rules file {p} cannot be read: {exc}; set FLEET_ALERT_RULES to a readable file") \
            from None
    return parse_rules(text, str(p))


DEFAULT_RULES = Path(__file__).with_name("default_rules.toml")
