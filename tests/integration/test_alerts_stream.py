"""Alerts end to end through the real broker: risk hysteresis, ack, SSE, SIGKILL replay, rules reload."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from models.risk.artifact import save_model_set
from models.risk.feature_names import FEATURE_NAMES
from models.risk.model import ComponentRiskModel
from streams.auth import mint
from tests.conftest import ADMIN_TOKEN, TEST_SECRET, Stack, http_get, wait_until
from twins.alerts.engine import observe_readings
from twins.alerts.rules import parse_rules
from twins.alerts.state import AlertBook
from twins.reading import reading_from_dict

pytestmark = pytest.mark.integration

SOH = "Vehicle.Powertrain.TractionBattery.StateOfHealth"
INV = "Vehicle.Powertrain.TractionInverter.Temperature"
DTC = "Vehicle.Diagnostics.DTCList"
RULES = """
version = "it-1"
default_cooldown_s = 600

[[risk]]
id = "battery-risk"
component = "traction_battery"
theta_high = 0.6
theta_low = 0.1
severity = { major = 0.6 }
action = "Check the pack."

[[signal]]
id = "inv-hot"
component = "inverter"
signal = "Vehicle.Powertrain.TractionInverter.Temperature"
above = 110.0
clear = 95.0
for_s = 20
severity = "major"

[[dtc]]
code = "P0A3C"
component = "inverter"
severity = "major"
"""
#: the stand-in model: failure probability is a step function of the last state of health
STEPS = [(70.0, 0.9), (80.0, 0.3), (101.0, 0.02)]


def step_probability(soh: float) -> float:
    return next(p for upper, p in STEPS if soh < upper)


def soh_model_artifact(root: Path) -> Path:
    """A real calibrated artifact whose battery probability depends only on the state of health."""
    rng = np.random.default_rng(0)
    col = FEATURE_NAMES.index("batt_soh_pct")

    def rows(n: int) -> tuple[np.ndarray, np.ndarray]:
        X = np.full((n, len(FEATURE_NAMES)), np.nan)
        soh = rng.uniform(55, 100, n)
        X[:, col] = soh
        y = (rng.random(n) < np.array([step_probability(s) for s in soh])).astype(np.int8)
        return X, y

    X, y = rows(30_000)
    model = ComponentRiskModel(feature_names=FEATURE_NAMES, use_features=["batt_soh_pct"], max_iter=40,
                               min_samples_leaf=50, positive_weight=None, calibration="isotonic")
    model.fit(X, y)
    model.calibrate(*rows(30_000))
    meta = {"feature_names": list(FEATURE_NAMES), "components": ["traction_battery"], "horizon_days": 30.0}
    return save_model_set(root, {"traction_battery": model}, meta, versioned=True)


class Telemetry:
    """Keyed producer of readings with per-VIN sequence numbers."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.producer = KafkaProducer(bootstrap_servers=stack.broker.bootstrap, linger_ms=5)
        self.seq: dict[str, int] = {}
        self.sent: list[Any] = []

    def send(self, vin: str, ts: int, signals: dict[str, Any]) -> None:
        self.seq[vin] = self.seq.get(vin, -1) + 1
        msg = {"schema": 1, "vin": vin, "ts": ts, "seq": self.seq[vin], "signals": signals}
        self.sent.append(reading_from_dict(msg))
        self.producer.send(self.stack.settings.topic_telemetry, key=vin.encode(), value=json.dumps(msg).encode())

    def flush(self) -> None:
        self.producer.flush()


def topic_records(stack: Stack) -> list[dict[str, Any]]:
    """Every record on the test's alerts topic, in partition order."""
    consumer = KafkaConsumer(bootstrap_servers=stack.broker.bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=1500)
    tps = [TopicPartition(stack.settings.topic_alerts, p) for p in range(stack.settings.partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    out = [json.loads(r.value) | {"_ts": r.timestamp} for r in consumer]
    consumer.close()
    return out


def post(url: str, body: dict[str, Any], token: str = ADMIN_TOKEN) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


class SseClient(threading.Thread):
    """Reads ``GET /alerts/stream`` and timestamps every event on arrival."""

    def __init__(self, port: int, query: str = "") -> None:
        super().__init__(daemon=True)
        self.port, self.query = port, query
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.connected = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        conn.request("GET", f"/alerts/stream{self.query}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        resp = conn.getresponse()
        assert resp.status == 200 and resp.getheader("Content-Type", "").startswith("text/event-stream")
        self.connected.set()
        data = None
        while True:
            line = resp.fp.readline()
            if not line:
                return
            if line.startswith(b"data: "):
                data = json.loads(line[6:])
            elif line == b"\n" and data is not None:
                self.events.append((time.time(), data))
                data = None


@pytest.fixture
def alert_stack(stack: Stack, tmp_path: Path) -> Stack:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    stack.settings = stack.settings.model_copy(update={
        "alert_rules": rules, "alert_rules_reload_s": 0.5, "alert_sweep_s": 1.0})
    return stack


def test_risk_hysteresis_ack_and_sse(alert_stack: Stack, tmp_path: Path):
    stack = alert_stack
    soh_model_artifact(tmp_path / "models")
    stack.settings = stack.settings.model_copy(update={
        "risk_model_dir": tmp_path / "models", "risk_score_tick_s": 0.2, "risk_score_interval_s": 0.2,
        "risk_reload_s": 1.0})
    port = stack.start_worker()
    sse = SseClient(port, "?component=traction_battery")
    sse.start()
    assert sse.connected.wait(10)
    tel = Telemetry(stack)
    vin = "1FA6P8CF0L5100042"
    t = int(time.time() * 1000)

    def scored(soh: float) -> dict[str, Any]:
        tel.send(vin, t + len(tel.sent) * 1000, {SOH: soh, INV: 40.0})
        tel.flush()
        want = step_probability(soh)

        def ok() -> dict[str, Any] | None:
            body = http_get(stack.url(port, f"/twins/{vin}/risk"))[1]
            comps = body.get("components") if isinstance(body, dict) else None
            if comps and abs(comps[0]["probability"] - want) < 0.05:
                return comps[0]
            return None

        got = wait_until(ok, 60, interval=0.2, what=f"risk scored for SoH {soh}")
        time.sleep(0.5)  # a scoring tick or two more: any alert record it causes is on the topic
        return got

    def battery_records() -> list[dict[str, Any]]:
        return [r for r in topic_records(stack) if r["vin"] == vin and r["rule"] == "battery-risk"]

    scored(90.0)
    assert battery_records() == []
    # crossing theta_high raises exactly one alert
    scored(65.0)
    recs = wait_until(battery_records, 10, what="an opened alert")
    assert [(r["event"], r["status"], r["revision"]) for r in recs] == [("opened", "open", 1)]
    opened = recs[0]
    assert opened["alert_id"] == f"{vin}:battery-risk:1" and opened["severity"] == "major"
    assert opened["probability"] == pytest.approx(0.9, abs=0.05) and opened["horizon_days"] == 30.0
    assert opened["model_version"].startswith("risk-") and opened["rules_version"] == "it-1"
    assert opened["evidence"]["top_features"][0]["feature"] == "batt_soh_pct"
    # the SSE subscriber got it within 1 s of its publication
    arrival = wait_until(lambda: next((ts for ts, e in sse.events if e["alert_id"] == opened["alert_id"]), None),
                         10, what="the alert on the SSE stream")
    assert arrival - opened["_ts"] / 1000.0 < 1.0, arrival - opened["_ts"] / 1000.0
    # oscillation between theta_low (0.1) and theta_high (0.6): p 0.3, 0.9, 0.3 -> no new record
    for soh in (75.0, 65.0, 75.0):
        scored(soh)
    assert len(battery_records()) == 1
    # acknowledge through the API: the user is the token's subject, never a name in the body
    jane = mint(TEST_SECRET, "ops.jane", ["alerts:read", "alerts:ack"], 600)
    ack_url = stack.url(port, f"/alerts/{opened['alert_id']}/ack")
    assert post(ack_url, {"by": "ops.boss", "note": "booked"}, jane)[0] == 400  # a claimed user is refused
    assert post(ack_url, {"note": "booked"}, mint(TEST_SECRET, "ops.joe", ["alerts:read"], 600))[0] == 403
    status, body = post(ack_url, {"note": "booked"}, jane)
    assert status == 200 and (body["status"], body["by"], body["revision"]) == ("acknowledged", "ops.jane", 2)
    assert post(ack_url, {}, mint(TEST_SECRET, "ops.joe", ["alerts:ack"], 600))[0] == 409
    trail = http_get(stack.url(port, "/audit?sub=ops.jane"))[1]["records"]
    assert [(r["action"], r["outcome"], r["target"]) for r in trail] == [("ack", "ok", opened["alert_id"])]
    detail = wait_until(lambda: (b := http_get(stack.url(port, f"/alerts/{opened['alert_id']}"))[1])
                        .get("status") == "acknowledged" and b, 10, what="ack in GET /alerts/{id}")
    assert detail["note"] == "booked"
    # falling below theta_low resolves it
    scored(90.0)
    recs = wait_until(lambda: len(r := battery_records()) == 3 and r, 10, what="the resolve record")
    assert [(r["event"], r["status"], r["revision"], r["by"]) for r in recs] == [
        ("opened", "open", 1, "system"), ("acknowledged", "acknowledged", 2, "ops.jane"),
        ("resolved", "resolved", 3, "system")]
    assert {r["alert_id"] for r in recs} == {opened["alert_id"]}
    listing = http_get(stack.url(port, f"/alerts?vin={vin}&status=resolved"))[1]
    assert [a["alert_id"] for a in listing["alerts"]] == [opened["alert_id"]]
    assert http_get(stack.url(port, "/alerts?severity=apocalyptic"))[0] == 400
    sse_events = [(e["event"], e["revision"]) for _, e in sse.events if e["alert_id"] == opened["alert_id"]]
    assert sse_events == [("opened", 1), ("acknowledged", 2), ("resolved", 3)]


def expected_alerts(readings: list[Any]) -> dict[str, str]:
    """The pure engine's verdict on the same readings: alert id -> last status."""
    rules = parse_rules(RULES)
    books: dict[str, AlertBook] = {}
    out: dict[str, str] = {}
    for r in readings:
        for a in observe_readings(books.setdefault(r.vin, AlertBook()), rules, r.vin, [r]):
            out[a.alert_id] = a.status
    return out


def test_sigkill_and_replay_publish_no_alert_twice(alert_stack: Stack):
    stack = alert_stack
    # twins reach the changelog only every 30 s: the kill lands after the alerts went out, before that flush
    stack.settings = stack.settings.model_copy(update={"twin_flush_interval_s": 30.0})
    port = stack.start_worker(data_name="w")
    tel = Telemetry(stack)
    vins = [f"1FA6P8CF0L51{i:05d}" for i in range(40)]
    t0 = int(time.time() * 1000) - 600_000

    def burst(start_s: int, hot: set[int], dtc: set[int]) -> None:
        for k in range(0, 40, 10):
            for i, vin in enumerate(vins):
                sig: dict[str, Any] = {INV: 115.0 if i in hot else 60.0}
                if k == 0:
                    sig[DTC] = ["P0A3C"] if i in dtc else []
                tel.send(vin, t0 + (start_s + k) * 1000, sig)
        tel.flush()

    burst(0, hot=set(range(0, 40, 3)), dtc=set(range(0, 40, 5)))
    first = expected_alerts(tel.sent)
    assert len(first) == 14 + 8
    wait_until(lambda: len(http_get(stack.url(port, "/alerts?limit=1000"))[1]["alerts"]) == len(first), 15,
               interval=0.1, what="the first alerts published")
    stack.kill_worker(port, signal.SIGKILL)
    # more telemetry while it is down: some conditions clear, others begin
    burst(100, hot=set(range(1, 40, 4)), dtc=set(range(0, 40, 10)))
    expected = expected_alerts(tel.sent)
    port = stack.start_worker(data_name="w")

    def settled() -> list[dict[str, Any]] | None:
        recs = topic_records(stack)
        latest: dict[str, str] = {}
        for r in recs:
            latest[r["alert_id"]] = r["status"]
        return recs if latest == expected else None

    recs = wait_until(settled, 60, interval=1.0, what="the alerts topic to match the engine's verdict")
    keys = [(r["alert_id"], r["revision"]) for r in recs]
    assert len(keys) == len(set(keys)), "an alert revision was published twice"
    opened = [r["alert_id"] for r in recs if r["event"] == "opened"]
    assert len(opened) == len(set(opened)) == len(expected)
    open_now = {a["alert_id"] for a in http_get(stack.url(port, "/alerts?status=open&limit=1000"))[1]["alerts"]}
    assert open_now == {k for k, v in expected.items() if v == "open"}
    # the replay did meet alerts published before the kill whose twins never reached the changelog
    adopted = [int(n) for n in re.findall(r"reconciled with \S+ \((\d+) books updated\)", stack.log(port))]
    assert sum(adopted) >= 1, stack.log(port)[-2000:]


def test_invalid_rules_are_rejected_and_the_running_rules_stay(alert_stack: Stack):
    stack = alert_stack
    port = stack.start_worker()
    rules_path = stack.settings.alert_rules
    assert rules_path is not None
    rules_path.write_text(RULES.replace("clear = 95.0", "clear = 130.0"))
    metrics = wait_until(lambda: "fleet_alert_rules_errors_total 1.0" in (m := http_get(stack.url(port, "/metrics"))[1])
                         and m, 20, what="the reload error counted")
    assert 'fleet_alert_rules_info{digest=' in metrics
    state = http_get(stack.url(port, "/alerts/rules"))[1]
    assert state["version"] == "it-1"
    assert "signal rule 'inv-hot'" in state["last_error"] and "'clear'" in state["last_error"]
    assert "130.0" in state["last_error"]
    assert "signal rule 'inv-hot': field 'clear'" in stack.log(port)
    # the rules in force still raise
    tel = Telemetry(stack)
    vin = "1FA6P8CF0L5100077"
    now = int(time.time() * 1000)
    for k in range(4):
        tel.send(vin, now + k * 10_000, {INV: 120.0})
    tel.flush()
    alert = wait_until(lambda: http_get(stack.url(port, f"/alerts?vin={vin}"))[1]["alerts"], 20,
                       what="an alert from the rules in force")
    assert alert[0]["rule"] == "inv-hot" and alert[0]["rules_version"] == "it-1"
    # a valid new version takes over without a restart
    rules_path.write_text(RULES.replace('version = "it-1"', 'version = "it-2"'))
    wait_until(lambda: http_get(stack.url(port, "/alerts/rules"))[1]["version"] == "it-2", 20,
               what="the new rules version in force")
    assert http_get(stack.url(port, "/alerts/rules"))[1]["last_error"] is None
    # both reloads are in the audit trail: the rejected file and the version that took over
    reloads = wait_until(lambda: len(r := [x for x in http_get(stack.url(port, "/audit?limit=1000"))[1]["records"]
                                           if x["action"] == "rules_reload"]) == 2 and r, 20, what="audited reloads")
    assert [(r["who"], r["outcome"]) for r in reloads] == [("system", "rejected"), ("system", "ok")]
    assert "'clear'" in reloads[0]["detail"] and reloads[1]["target"] == "it-2"


def test_worker_refuses_to_start_with_an_invalid_rules_file(tmp_path: Path):
    bad = tmp_path / "rules.toml"
    bad.write_text(RULES.replace('severity = "major"\n\n[[dtc]]', 'severity = "apocalyptic"\n\n[[dtc]]'))
    env = dict(os.environ, FLEET_KAFKA_BOOTSTRAP="127.0.0.1:1", FLEET_ALERT_RULES=str(bad),
               FLEET_AUTH_HS256_SECRET=TEST_SECRET)
    proc = subprocess.run([sys.executable, "-m", "streams.cli", "worker"], env=env, capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode != 0
    assert "signal rule 'inv-hot': field 'severity'" in proc.stderr and "apocalyptic" in proc.stderr, proc.stderr
