"""The engine: one model definition for numpy and torch, a known linear system, the cell against ARX."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.inference import cli
from models.inference.artifact import load
from models.inference.data import decode_table
from models.inference.engine import TwinInference, default_validation, evaluate
from models.inference.generators import cell_segments, to_dataset, write_csv
from models.inference.structures import make_structure, simulate, torch_ops
from tests.inference.conftest import CELL_IN, CELL_OUT


@pytest.mark.parametrize("kind,config", [
    ("arx", {"na": 2, "nb": 3}),
    ("greybox", {"integrator": True, "lags": 2, "thermal": True, "residual": 8}),
    ("nss", {"nx": 3, "hidden": 8}),
])
def test_numpy_and_torch_run_the_same_model(kind, config):
    import torch

    s = make_structure(kind, config, nu=2, ny=2)
    rng = np.random.default_rng(1)
    if kind == "arx":
        P = {"A": rng.normal(0, 0.3, (4, 2)), "B": rng.normal(0, 1, (6, 2)), "c": rng.normal(0, 1, 2)}
    else:
        P = s.init_params(rng, 1.0, 500.0)
        P = {k: v + rng.normal(0, 0.05, np.shape(v)) if not k.startswith("const_") else v for k, v in P.items()}
    u, y0 = rng.normal(0, 1, (3, 50, 2)), rng.normal(0, 1, (3, 2))
    ref = simulate(s, P, u, y0, 1.0)
    out = simulate(s, {k: torch.tensor(v) for k, v in P.items()}, torch.tensor(u), torch.tensor(y0), 1.0, torch_ops())
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10, atol=1e-12)
    if kind != "arx":  # the Gauss-Newton initial state reproduces the first output sample
        np.testing.assert_allclose(ref[:, 0], y0, atol=1e-2)


def test_known_linear_system_step_response_is_recovered():
    # y(k) = 1.5 y(k-1) - 0.7 y(k-2) + 0.5 u(k-1) + 0.3 u(k-2): gain 4, damped oscillation
    rng = np.random.default_rng(0)
    table = {"segment": [], "time_s": [], "u": [], "y": []}
    for seg in range(4):
        u = np.repeat(rng.choice([-1.0, 1.0], 40), 10)
        y = np.zeros_like(u)
        for k in range(2, len(u)):
            y[k] = 1.5 * y[k - 1] - 0.7 * y[k - 2] + 0.5 * u[k - 1] + 0.3 * u[k - 2]
        table["segment"] += [f"s{seg}"] * len(u)
        table["time_s"] += list(np.arange(len(u), dtype=float))
        table["u"] += list(u)
        table["y"] += list(y + rng.normal(0, 0.01, len(u)))
    data = decode_table(table, ["u"], ["y"], segment_column="segment")
    est = TwinInference(budget_s=5.0, candidates=()).fit(data)
    u = np.r_[0.0, np.ones(59)]  # at rest, then a unit step
    step = est.twin_.predict(u[:, None], np.zeros(1))[:, 0]
    true = np.zeros(60)
    for k in range(2, 60):
        true[k] = 1.5 * true[k - 1] - 0.7 * true[k - 2] + 0.5 * u[k - 1] + 0.3 * u[k - 2]
    assert np.max(np.abs(step - true)) < 0.05 * 4.0  # within 5 % of the static gain at every step
    assert step[-1] == pytest.approx(4.0, rel=0.03)


def test_default_validation_holds_out_the_most_extreme_segments():
    data = to_dataset(cell_segments(12, seed=1, scale=0.3), ["current_A", "ambient_C"], ["voltage_V"])
    chosen = default_validation(data)
    assert len(chosen) == 3
    by_name = {s.name: s for s in data.segments}
    assert chosen[0] == max(by_name, key=lambda n: by_name[n].u[:, 0].max())  # the fastest charge
    rest = [n for n in by_name if n != chosen[0]]
    assert chosen[1] == max(rest, key=lambda n: by_name[n].u[:, 1].max())  # the hottest of the others


def test_cell_twin_beats_arx_in_free_run_on_held_out_segments(cell_fit, coupled):
    est, _ = cell_fit
    assert est.twin_.structure.kind == "greybox"  # chosen on validation over the ARX baseline
    scores = {c["kind"]: c["val_nrmse"] for c in est.candidates_}
    assert scores["greybox"] < scores["arx"]
    test = to_dataset(coupled[1], CELL_IN, CELL_OUT)
    twin, arx = evaluate(est.twin_, test), evaluate(est.baseline_, test)
    ratio = {o: twin["free_run_rmse"][o] / arx["free_run_rmse"][o] for o in CELL_OUT}
    assert all(r < 1.0 for r in ratio.values()), ratio  # measured: voltage 0.66, temperature 0.39, heat 0.36
    assert ratio["voltage_V"] < 0.7, ratio
    # the heat balance's node is the temperature output (declared in celsius), cooling to the ambient input
    assert ratio["temperature_C"] < 0.5, ratio
    assert twin["free_run_rmse"]["voltage_V"] < 0.12  # volts (measured 0.112), cells spanning 3.4-4.2 V
    assert twin["free_run_rmse"]["temperature_C"] < 1.3  # kelvin (measured 1.09; ARX 2.83)


def test_artifact_round_trip_report_and_predict_cli(cell_fit, coupled, tmp_path, capsys):
    est, art = cell_fit
    doc = json.loads((art / "twin.json").read_text())
    assert doc["format"] == "fleet-twin/1" and doc["inputs"][0]["unit"] == "A"
    assert set(doc["validation_segments"]) == set(est.validation_)
    report = (art / "report.md").read_text()
    assert "free-run voltage_V" in report and "ARX baseline" in report
    assert list((art / "plots").glob("*.png"))
    twin = load(art)
    seg = to_dataset(coupled[1][:1], CELL_IN, CELL_OUT).segments[0]
    np.testing.assert_array_equal(twin.predict(seg.u, seg.y[0]), est.twin_.predict(seg.u, seg.y[0]))
    # predict on hotter data than any training segment: a warning, not silence
    hot = coupled[1][:1]
    hot[0]["columns"]["ambient_C"] = hot[0]["columns"]["ambient_C"] + 40.0
    write_csv(tmp_path / "hot.csv", hot)
    cli.main(["--predict", str(art), "--data", str(tmp_path / "hot.csv"), "--segment-column", "segment",
              "--out", str(tmp_path / "pred.csv")])
    assert "inputs outside the range seen in training" in capsys.readouterr().err
    lines = (tmp_path / "pred.csv").read_text().splitlines()
    assert len(lines) == 1 + len(hot[0]["columns"]["ambient_C"])
    assert lines[0].endswith("voltage_V_pred,temperature_C_pred,heat_W_pred,out_of_range")
    assert "ambient_C>" in lines[1]
