"""The alert lifecycle, pure: readings, risk scores and the clock in; alert records out.

``open → acknowledged → resolved``. A rule raises at most one alert per vehicle at a
time (the book holds the open one); it resolves itself when its condition clears past
the hysteresis; a person may acknowledge or resolve it (``by`` names them); after any
resolve the rule stays quiet on that vehicle for its cooldown. Every change returns a
new :class:`~twins.alerts.state.Alert` revision — the record to publish — and never
mutates a record already returned.

Times: signal, DTC and staleness rules run on event time (the readings' ``ts``), so a
replay reaches the same decisions and ids; risk rules on the scoring time.

>>> from twins.alerts.rules import parse_rules
>>> from twins.risk import RiskState
>>> rules = parse_rules('version = "1"\\n[[risk]]\\nid = "inv"\\ncomponent = "inverter"\\n'
...                     'theta_high = 0.3\\ntheta_low = 0.1\\nseverity = { major = 0.3 }')
>>> book = AlertBook()
>>> def risk(p): return RiskState("m1", 1_000, 30.0, ["inverter"], [p], [], [])
>>> [a.event for a in observe_risk(book, rules, "1FA6P8CF0L5100001", risk(0.35))]
['opened']
>>> observe_risk(book, rules, "1FA6P8CF0L5100001", risk(0.2))   # inside the hysteresis band
[]
>>> [a.status for a in observe_risk(book, rules, "1FA6P8CF0L5100001", risk(0.05))]
['resolved']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import msgspec

from twins.alerts.rules import SEVERITIES, CompiledSignal, RiskRule, RuleSet, StalenessRule
from twins.alerts.state import Alert, AlertBook, alert_id, find_active, parse_alert_id
from twins.errors import FleetAssuranceError
from twins.reading import Reading
from twins.risk import RiskState
from twins.signals import SLOT

#: ``() -> (region, weather)`` evaluated only when an alert opens.
Context = Callable[[], tuple[str | None, dict[str, Any] | None]]
_UNSET = msgspec.UNSET
_AWAKE = frozenset(("ACC", "ON", "START"))
_ASLEEP = frozenset(("OFF", "LOCK"))
_replace = msgspec.structs.replace
LV_STATE_SLOT = SLOT["Vehicle.LowVoltageSystemState"]


class AlertNotFound(FleetAssuranceError):
    """No active alert with that id on the vehicle."""


class AlertConflict(FleetAssuranceError):
    """The requested transition is not allowed from the alert's status."""


def _no_context() -> tuple[str | None, dict[str, Any] | None]:
    return None, None


def _open(book: AlertBook, rules: RuleSet, rule: Any, kind: str, vin: str, ts: int, severity: str, title: str,
          evidence: dict[str, Any], context: Context, **extra: Any) -> Alert | None:
    """Raise ``rule`` on the vehicle unless an alert of it is active or it is cooling down."""
    if find_active(book, rule.id) is not None or ts < book.cooldown_until.get(rule.id, 0):
        return None
    n = book.episodes.get(rule.id, 0) + 1
    book.episodes[rule.id] = n
    region, weather = context()
    alert = Alert(alert_id=alert_id(vin, rule.id, n), revision=1, event="opened", status="open", vin=vin,
                  component=rule.component, rule=rule.id, rule_kind=kind, rules_version=rules.version,
                  severity=severity, title=title, action=rule.action, evidence=evidence, region=region,
                  weather=weather, opened_ms=ts, updated_ms=ts, by="system", **extra)
    book.active.append(alert)
    return alert


def _swap(book: AlertBook, old: Alert, new: Alert) -> Alert:
    book.active[book.active.index(old)] = new
    return new


def _close(book: AlertBook, rules: RuleSet, alert: Alert, ts: int, by: str, note: str) -> Alert:
    """Resolve ``alert`` at ``ts`` and start its rule's cooldown."""
    rule = rules.by_id.get(alert.rule)
    cooldown = rules.cooldown_ms(rule) if rule is not None else int(rules.default_cooldown_s * 1000)
    book.active.remove(alert)
    book.cooldown_until[alert.rule] = max(book.cooldown_until.get(alert.rule, 0), ts + cooldown)
    return _replace(alert, revision=alert.revision + 1, event="resolved", status="resolved", updated_ms=ts,
                    resolved_ms=ts, by=by, note=note)


def retire_unknown(book: AlertBook, rules: RuleSet, ts: int) -> list[Alert]:
    """Resolve active alerts whose rule is no longer in ``rules`` (after a rules reload)."""
    return [_close(book, rules, a, max(ts, a.updated_ms), "system",
                   f"rule {a.rule!r} is not in rules version {rules.version!r} any more")
            for a in list(book.active) if a.rule not in rules.by_id]


def _judge_signal(book: AlertBook, rules: RuleSet, cs: CompiledSignal, vin: str, ts: int, last: dict[int, Any],
                  context: Context, out: list[Alert]) -> None:
    v = last.get(cs.slot)
    rule = cs.rule
    if v is None or (rule.at == "wake" and ts > book.wake_until_ms):
        return
    active = find_active(book, rule.id)
    if active is not None:
        if (v <= cs.clear) if cs.above else (v >= cs.clear):
            out.append(_close(book, rules, active, ts, "system",
                              f"{rule.signal} = {v:g}, back {'below' if cs.above else 'above'} {cs.clear:g}"))
        return
    gate_ok = cs.gate_slot is None or last.get(cs.gate_slot) == cs.gate_value
    if gate_ok and ((v > cs.threshold) if cs.above else (v < cs.threshold)):
        since = book.since.setdefault(rule.id, ts)
        if ts - since >= rule.for_s * 1000:
            word = "above" if cs.above else "below"
            evidence = {"signal": rule.signal, "value": v, "threshold": cs.threshold, "since_ms": since,
                        "duration_s": (ts - since) / 1000.0}
            if rule.at == "wake":
                evidence["at"] = "wake"
            if cs.gate_attr is not None:
                evidence["while"] = {rule.when.signal: cs.gate_value} if rule.when else None  # type: ignore[union-attr]
            title = f"{rule.signal} {word} {cs.threshold:g}" + (f" for {rule.for_s:g} s" if rule.for_s else "") + \
                (" at wake" if rule.at == "wake" else "")
            alert = _open(book, rules, rule, "signal", vin, ts, rule.severity, title, evidence, context)
            if alert is not None:
                out.append(alert)
                del book.since[rule.id]
    else:
        book.since.pop(rule.id, None)


def _judge_dtcs(book: AlertBook, rules: RuleSet, vin: str, ts: int, codes: list[str], context: Context,
                out: list[Alert]) -> None:
    present = set(codes)
    for a in [a for a in book.active if a.rule_kind == "dtc"]:
        if a.evidence.get("dtc") not in present:
            out.append(_close(book, rules, a, ts, "system", f"{a.evidence.get('dtc')} no longer active"))
    for code in codes:
        rule = rules.dtc_by_code.get(code)
        if rule is not None:
            title = f"DTC {code}" + (f": {rule.description}" if rule.description else "")
            alert = _open(book, rules, rule, "dtc", vin, ts, rule.severity, title,
                          {"dtc": code, "active_dtcs": sorted(present)}, context)
            if alert is not None:
                out.append(alert)


def observe_readings(book: AlertBook, rules: RuleSet, vin: str, readings: Iterable[Reading],
                     context: Context = _no_context) -> list[Alert]:
    """Run signal, DTC and staleness-clear rules over one vehicle's readings (in arrival order).

    Readings older than the newest one seen are skipped, so a replayed or duplicated
    reading changes nothing. ``book`` keeps the last known values of the watched signals.
    """
    out: list[Alert] = []
    watched = rules.watched
    signal_rules = rules.signal
    wake_rules = rules.wake_rules
    dtc = bool(rules.dtc)
    last = book.last
    since = book.since
    active = {a.rule for a in book.active}
    for r in readings:
        ts = r.ts
        if ts < book.last_ts:
            continue
        book.last_ts = ts
        sig = r.signals
        if wake_rules:
            state = sig.lv_system_state
            if state is not _UNSET:
                if state in _AWAKE:
                    if book.power == 1:
                        book.wake_until_ms = ts + int(rules.wake_window_s * 1000)
                    book.power = 2
                elif state in _ASLEEP:
                    book.power = 1
        for attr, slot in watched:
            v = getattr(sig, attr)
            if v is not _UNSET:
                last[slot] = v
        n = len(out)
        for cs in signal_rules:
            v = last.get(cs.slot)
            if v is None:
                continue
            rid = cs.rule.id
            # the common case, decided here: nothing open or pending and the value on the safe side
            if rid not in active and rid not in since and ((v <= cs.threshold) if cs.above else (v >= cs.threshold)):
                continue
            _judge_signal(book, rules, cs, vin, ts, last, context, out)
        if dtc:
            codes = sig.dtc_list
            if codes is not _UNSET:
                _judge_dtcs(book, rules, vin, ts, codes, context, out)
        if active:
            for a in [a for a in book.active if a.rule_kind == "staleness"]:
                out.append(_close(book, rules, a, ts, "system", "the vehicle reports again"))
        if len(out) != n:
            active = {a.rule for a in book.active}
    return out


def seed_book(rules: RuleSet, values: Sequence[Any], last_seen_ms: int) -> AlertBook:
    """A book for a twin that has none, from the twin's values *before* the new readings merge.

    Vehicles without alert history carry no book (it costs ~0.5 KB of memory per twin):
    what the rules need to know — last known watched values, sleep/awake state, newest
    time — is in the twin already.
    """
    last = {slot: values[slot] for _, slot in rules.watched if values[slot] is not None}
    state = values[LV_STATE_SLOT]
    power = 2 if state in _AWAKE else 1 if state in _ASLEEP else 0
    return AlertBook(last=last, last_ts=last_seen_ms, power=power)


def idle(book: AlertBook) -> bool:
    """True when the book holds nothing :func:`seed_book` could not rebuild (it need not be stored)."""
    return not (book.active or book.since or book.episodes or book.cooldown_until) and \
        book.wake_until_ms <= book.last_ts


def rescale(p: float, from_days: float, to_days: float) -> float:
    """Failure probability over ``to_days`` from one over ``from_days`` (constant hazard).

    >>> round(rescale(0.5, 30, 60), 3)
    0.75
    """
    if from_days == to_days or p <= 0.0:
        return p
    if p >= 1.0:
        return 1.0
    return 1.0 - (1.0 - p) ** (to_days / from_days)


def severity_of(rule: RiskRule, p: float) -> str | None:
    """The highest severity level whose band starts at or below ``p``."""
    best = None
    for level, lo in rule.severity.items():
        if p >= lo and (best is None or SEVERITIES.index(level) > SEVERITIES.index(best)):
            best = level
    return best


def _risk_evidence(risk: RiskState, k: int, rule: RiskRule) -> dict[str, Any]:
    """Why a risk alert opened or escalated: the model's top features and numbers (built only then)."""
    return {"top_features": [{"feature": f, "contribution": round(c, 4)} for f, c in risk.top(k)],
            "model_probability": risk.probability[k], "model_horizon_days": risk.horizon_days,
            "theta_high": rule.theta_high, "theta_low": rule.theta_low}


def observe_risk(book: AlertBook, rules: RuleSet, vin: str, risk: RiskState,
                 context: Context = _no_context) -> list[Alert]:
    """Apply the risk rules to a fresh score: raise at ``theta_high``, resolve at ``theta_low``, escalate."""
    out: list[Alert] = []
    ts = risk.scored_ms
    for rule in rules.risk:
        try:
            k = risk.components.index(rule.component)
        except ValueError:
            continue
        horizon = rule.horizon_days or risk.horizon_days
        p = rescale(risk.probability[k], risk.horizon_days, horizon)
        active = find_active(book, rule.id)
        if active is not None:
            if p <= rule.theta_low:
                out.append(_close(book, rules, active, ts, "system",
                                  f"probability {p:.3f} at or below theta_low {rule.theta_low}"))
                continue
            level = severity_of(rule, p)
            if level is not None and SEVERITIES.index(level) > SEVERITIES.index(active.severity):
                out.append(_swap(book, active, _replace(
                    active, revision=active.revision + 1, event="escalated", severity=level, probability=p,
                    model_version=risk.version, evidence=_risk_evidence(risk, k, rule), updated_ms=ts, by="system",
                    note=f"probability rose to {p:.3f}")))
            continue
        if p >= rule.theta_high:
            level = severity_of(rule, p)
            assert level is not None  # validation: some band starts at or below theta_high
            alert = _open(book, rules, rule, "risk", vin, ts, level,
                          f"{rule.component.replace('_', ' ')} failure risk {p:.0%} within {horizon:g} days",
                          _risk_evidence(risk, k, rule), context, probability=p, horizon_days=horizon,
                          model_version=risk.version)
            if alert is not None:
                out.append(alert)
    return out


def sweep_staleness(book: AlertBook, rules: RuleSet, vin: str, last_seen_ms: int, now_ms: int,
                    context: Context = _no_context) -> list[Alert]:
    """Raise the staleness rules of a vehicle silent since ``last_seen_ms`` (opened at the moment it became due).

    A vehicle silent for longer than the rule's ``give_up_h`` is taken to be out of service: not raised.
    """
    out: list[Alert] = []
    if not last_seen_ms:
        return out
    for rule in rules.staleness:
        due = last_seen_ms + int(rule.after_h * 3_600_000)
        if _silent_within(rule, last_seen_ms, now_ms):
            alert = _open(book, rules, rule, "staleness", vin, due, rule.severity,
                          f"no telemetry for {rule.after_h:g} h",
                          {"last_seen_ms": last_seen_ms, "silent_h": round((now_ms - last_seen_ms) / 3.6e6, 2)},
                          context)
            if alert is not None:
                out.append(alert)
    return out


def _silent_within(rule: StalenessRule, last_seen_ms: int, now_ms: int) -> bool:
    """True while a vehicle silent since ``last_seen_ms`` is due for ``rule`` and not yet given up."""
    return last_seen_ms + int(rule.after_h * 3_600_000) <= now_ms <= last_seen_ms + rule.give_up_h * 3_600_000


def staleness_due(rules: RuleSet, last_seen_ms: int, now_ms: int) -> bool:
    """True when :func:`sweep_staleness` could raise an alert for a vehicle silent since ``last_seen_ms``
    (the sweep decodes only such twins, and those with active alerts, in full)."""
    return bool(last_seen_ms) and any(_silent_within(r, last_seen_ms, now_ms) for r in rules.staleness)


def _active(book: AlertBook, aid: str) -> Alert:
    for a in book.active:
        if a.alert_id == aid:
            return a
    raise AlertNotFound(f"alert {aid!r} is not open on this vehicle (it may be resolved already; "
                        f"GET /alerts/{aid} shows its last state)")


def acknowledge(book: AlertBook, aid: str, by: str, now_ms: int, note: str | None = None) -> Alert:
    """A person takes the open alert ``aid``; raises :class:`AlertConflict` if it was acknowledged already."""
    alert = _active(book, aid)
    if alert.status != "open":
        raise AlertConflict(f"alert {aid!r} is already {alert.status} (by {alert.by!r})")
    return _swap(book, alert, _replace(alert, revision=alert.revision + 1, event="acknowledged",
                                       status="acknowledged", updated_ms=max(now_ms, alert.updated_ms), by=by,
                                       note=note))


def resolve(book: AlertBook, rules: RuleSet, aid: str, by: str, now_ms: int, note: str | None = None) -> Alert:
    """A person resolves ``aid`` (open or acknowledged); the rule's cooldown starts."""
    alert = _active(book, aid)
    return _close(book, rules, alert, max(now_ms, alert.updated_ms), by, note or "resolved by hand")


def adopt(book: AlertBook, record: Alert, rules: RuleSet) -> bool:
    """Bring ``book`` up to a record read back from the alerts topic; True if the book changed.

    The topic is the record of what dashboards saw. After a crash the twin's changelog
    may lag it (alerts are published as they happen, twins are written each flush):
    adopting the newer revisions means a replay finds the alert already raised and
    publishes nothing twice.
    """
    _, rule, episode = parse_alert_id(record.alert_id)
    changed = False
    if book.episodes.get(rule, 0) < episode:
        book.episodes[rule] = episode
        changed = True
    current = next((a for a in book.active if a.alert_id == record.alert_id), None)
    if current is not None and current.revision >= record.revision:
        return changed
    if record.status == "resolved":
        if current is not None:
            book.active.remove(current)
        r = rules.by_id.get(rule)
        cooldown = rules.cooldown_ms(r) if r is not None else int(rules.default_cooldown_s * 1000)
        until = (record.resolved_ms or record.updated_ms) + cooldown
        if until > book.cooldown_until.get(rule, 0):
            book.cooldown_until[rule] = until
            changed = True
        return changed or current is not None
    if current is not None:
        _swap(book, current, record)
    else:
        book.active = [a for a in book.active if a.rule != rule] + [record]
        book.since.pop(rule, None)
    return True
