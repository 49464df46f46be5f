"""Risk end to end: train on a small history, score through the real broker, rank stressed vehicles first,
and pick up a new model version without restarting the worker."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from threadpoolctl import threadpool_limits

from models.risk.artifact import write_manifest
from models.risk.synthetic import write_synthetic_history
from models.risk.train import load_inputs, train
from tests.conftest import Stack, http_get, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("history")
    truth = write_synthetic_history(data, vehicles=72, days=75, seed=3)
    models = tmp_path_factory.mktemp("models")
    inputs = load_inputs(data / "telemetry", data / "maintenance.csv", data / "fleet.csv", data / "weather.jsonl.gz")
    fast = {"learning_rate": 0.1, "max_iter": 80, "n_iter_no_change": 10, "min_samples_leaf": 40}
    with threadpool_limits(1):
        artifact = train(inputs, models / "v1", horizon_days=20, workers=1, params=fast, budget=60,
                         log=lambda *a: None)
    return data, truth, models, artifact


def publish_history(stack: Stack, data) -> int:
    producer = KafkaProducer(bootstrap_servers=stack.broker.bootstrap, linger_ms=20, batch_size=512 * 1024)
    n = 0
    with gzip.open(data / "weather.jsonl.gz", "rb") as fh:
        for line in fh:
            rec = json.loads(line)
            producer.send(stack.settings.topic_weather, key=rec["cell"].encode(), value=line.rstrip(b"\n"))
    for part in sorted((data / "telemetry").glob("part-*.jsonl.gz")):
        with gzip.open(part, "rb") as fh:
            for line in fh:
                vin = json.loads(line)["vin"]
                producer.send(stack.settings.topic_telemetry, key=vin.encode(), value=line.rstrip(b"\n"))
                n += 1
    producer.flush()
    producer.close()
    return n


def test_stream_scores_and_ranks_stressed_vehicles_first(stack: Stack, trained):
    data, truth, models, artifact = trained
    stack.settings = stack.settings.model_copy(update={
        "risk_model_dir": models, "vehicle_registry": data / "fleet.csv", "risk_score_tick_s": 0.5,
        "risk_reload_s": 1.0, "risk_score_interval_s": 1.0})
    port = stack.start_worker()
    sent = publish_history(stack, data)
    wait_until(lambda: http_get(stack.url(port, "/fleet/summary"))[1]["messages_applied"] == sent, 240,
               interval=1.0, what="the whole history applied")
    # a vehicle changed since its last score is re-scored within the 1 s interval: once the whole history
    # is applied, the ranking settles on scores of complete histories (mid-history scores do not count)
    previous: list[dict] = []

    def settled() -> dict | None:
        nonlocal previous
        body = http_get(stack.url(port, "/fleet/risk?component=inverter&top=1000"))[1]
        rows = body.get("vehicles", [])
        same = len(rows) == len(truth.vins) and rows == previous
        previous = rows
        return body if same else None

    ranking = wait_until(settled, 120, interval=3.0, what="every vehicle scored after the whole history")
    version = json.loads((artifact / "metadata.json").read_text())["version"]
    assert ranking["model_version"] == version
    probs = {row["vin"]: row["probability"] for row in ranking["vehicles"]}
    stressed = [probs[v] for v in truth.vins if v in truth.stressed]
    mild = [probs[v] for v in truth.vins if v not in truth.stressed]
    assert stressed and mild
    # the ranking separates the injected heavy stress: AUC of stressed vs unstressed
    auc = sum((s > m) + 0.5 * (s == m) for s in stressed for m in mild) / (len(stressed) * len(mild))
    assert auc >= 0.85, auc
    top = ranking["vehicles"][: len(stressed)]
    assert sum(row["vin"] in truth.stressed for row in top) >= 0.7 * len(stressed)
    # per-vehicle detail: probability, horizon, version, top features
    vin = ranking["vehicles"][0]["vin"]
    detail = http_get(stack.url(port, f"/twins/{vin}/risk"))[1]
    inverter = next(c for c in detail["components"] if c["component"] == "inverter")
    assert inverter["probability"] == pytest.approx(probs[vin], abs=1e-6)
    assert inverter["horizon_days"] == 20 and len(inverter["top_features"]) == 3
    assert detail["model_version"] == version
    # every scoring lands in the risk histogram once per component; the build info names the model in force
    exposed = {(m.name, m.labels.get("component"), m.labels.get("le")): m for f in
               text_string_to_metric_families(http_get(stack.url(port, "/metrics"))[1]) for m in f.samples}
    scored = exposed[("fleet_risk_scored_total", None, None)].value
    assert scored >= len(truth.vins)
    for c in (row["component"] for row in detail["components"]):
        assert exposed[("fleet_risk_probability_count", c, None)].value == scored, c
        assert exposed[("fleet_risk_probability_bucket", c, "+Inf")].value == scored, c
        assert 0 <= exposed[("fleet_risk_probability_sum", c, None)].value <= scored, c
    assert exposed[("fleet_risk_probability_sum", "inverter", None)].value > 0
    build = next(m for (name, _, _), m in exposed.items() if name == "fleet_build_info")
    assert build.labels["risk_model"] == version

    # a new version in the model directory is picked up without a restart
    meta = json.loads((artifact / "metadata.json").read_text())
    v2 = models / "v2"
    shutil.copytree(artifact, v2)
    meta["version"] = version + "-retrained"
    (v2 / "metadata.json").write_text(json.dumps(meta))
    write_manifest(v2)                                   # a retrained artifact comes with its manifest
    wait_until(lambda: http_get(stack.url(port, "/fleet/risk?top=1"))[1].get("model_version") == meta["version"],
               30, what="new model version in force")
    # a broken newer version is rejected and the running one stays in force
    broken = models / "v3"
    shutil.copytree(v2, broken)
    meta["feature_names"] = meta["feature_names"][:-1]
    (broken / "metadata.json").write_text(json.dumps(meta))
    write_manifest(broken)
    wait_until(lambda: "fleet_risk_model_load_errors_total 1.0" in http_get(stack.url(port, "/metrics"))[1], 30,
               what="broken model reported")
    assert http_get(stack.url(port, "/fleet/risk?top=1"))[1]["model_version"] == version + "-retrained"
