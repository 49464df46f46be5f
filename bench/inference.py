"""`python -m bench.inference`: inferred twins of the two black-box generators, against ARX.

For each generator (equivalent-circuit cell; the fleet simulator's coolant-loop +
inverter thermal model) it writes 12 training/validation segments (~50k samples
at 1 Hz) as a CSV, runs ``fleet infer`` on it with the default budget (timed,
wall clock), then predicts the out-of-distribution test segments in free run
and one step ahead with the chosen twin and its ARX baseline. Writes
``bench/inference_report/`` (report.md, results.json, plots/).

Environment: BENCH_INFER_BUDGET_S (default: the CLI default), BENCH_INFER_SCALE (segment length scale, 1.3).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from models.inference import cli
from models.inference.artifact import load
from models.inference.engine import DEFAULT_BUDGET_S, evaluate
from models.inference.generators import cell_segments, inverter_segments, to_dataset, write_csv
from models.inference.report import metrics_table, segment_figure

OUT = Path(__file__).resolve().parent / "inference_report"
GENERATORS = {
    "cell": (cell_segments, ["current_A", "ambient_C"], ["voltage_V", "temperature_C"],
             "equivalent-circuit Li-ion cell (LG M50 OCV, 2 RC, Arrhenius R, lumped thermal) on EPA cycles, "
             "AC and DC charging; test: drives at 38 °C ambient (training 0..30 °C), AC charge, DC charge at 2C "
             "(training 0.7..1.5C)"),
    "inverter": (inverter_segments, ["motor_kW", "speed_mps", "ambient_C"], ["coolant_C", "inverter_C"],
                 "fleet simulator coolant loop + inverter power module (models.simulation.thermal) on EPA cycles; "
                 "test: drives at 38 °C ambient (training 0..30 °C)"),
}


def run_generator(name: str, work: Path, budget_s: float, scale: float) -> dict[str, Any]:
    """Infer one generator's twin through the CLI and score it on the OOD test segments."""
    gen, ins, outs, what = GENERATORS[name]
    train = gen(12, seed=1, scale=scale)
    test = gen(4, seed=2, ood=True, scale=scale)
    csv_path = work / f"{name}.csv"
    write_csv(csv_path, train)
    args = cli.parser().parse_args(["--data", str(csv_path), "--inputs", ",".join(ins), "--outputs", ",".join(outs),
                                    "--segment-column", "segment", "--budget-s", str(budget_s),
                                    "--out", str(work / name)])
    t0 = time.monotonic()
    artifact = cli.infer(args)
    wall = time.monotonic() - t0
    twin, base = load(artifact), load(artifact, "arx")
    data = to_dataset(test, ins, outs)
    m_twin, m_base = evaluate(twin, data), evaluate(base, data)
    ratio = {o: m_twin["free_run_rmse"][o] / m_base["free_run_rmse"][o] for o in outs}
    (OUT / "plots").mkdir(parents=True, exist_ok=True)
    preds = twin.predict_many([s.u for s in data.segments], [s.y[0] for s in data.segments])
    bases = base.predict_many([s.u for s in data.segments], [s.y[0] for s in data.segments])
    figs = []
    for seg, p, b in zip(data.segments, preds, bases):
        fname = f"{name}-{seg.name}.png"
        segment_figure(OUT / "plots" / fname, seg, outs, p, b, (f"twin {twin.structure.kind}", "ARX"))
        figs.append(fname)
    doc = json.loads((artifact / "twin.json").read_text())
    shutil.copy2(artifact / "report.md", OUT / f"{name}-training-report.md")
    for f in (artifact / "plots").iterdir():
        shutil.copy2(f, OUT / "plots" / f"{name}-validation-{f.name}")
    return {"generator": what, "train_samples": sum(len(next(iter(s["columns"].values()))) for s in train),
            "train_segments": len(train), "test_samples": data.n_samples, "test_segments": [s.name for s in data.segments],
            "budget_s": budget_s, "infer_wall_s": wall, "chosen": twin.structure.label,
            "baseline": base.structure.label, "candidates": doc["candidates"], "test": {"twin": m_twin, "arx": m_base},
            "free_run_ratio_twin_over_arx": ratio, "plots": figs}


NOTES = """## How the grey box extrapolates (and what it did before)

The previous version of this report (same data, seeds and budget) had free-run ratios twin / ARX of
cell voltage 0.83, cell temperature 2.46, inverter coolant 1.25, inverter temperature 0.55, with the
cell twin's temperature falling from 37 to 28 °C on a drive at 38 °C ambient. Diagnosis: the ambient
entered the lags and the output feed-through multiplied by the Arrhenius factor of the thermal state
(so the model was not linear in the ambient); nothing tied the heat balance's node to the temperature
output, and fits used it as a slow latent state for the voltage (a diagnostic fit from the random
start: node-to-output gains -0.85 on voltage, 0.21 on temperature); the free-run initial state put
the first voltage sample into the slow RC branch instead of the charge state, so the charge-counting
candidate left its OCV curve nearly flat (validation nRMSE 0.80, worse than 0.70 without charge
counting). What changed:

- inputs are split into *flows* (rest at zero or change sign: current, power, speed) and *levels*
  (ambient); in the physical blocks levels enter linearly only, never through the Arrhenius factor,
  so the model is linear in the ambient and a hotter ambient extrapolates like the physics;
- an output declared in a temperature unit follows the heat balance's node with a fixed gain, and the
  node's Newton-cooling target starts as the temperature input of the same unit; the conductance may
  rise with a flow (forced convection);
- initial state: lags at their steady state for u(0), y(0) matched by the charge and temperature
  states (Gauss-Newton with the lags weighted 1e-4); RC branches start driven by the flows;
- the inputs of learned networks (encoder, residual) are clipped to the training range, so they stay
  constant beyond it.

Development used separate out-of-distribution segments (generator seed 3); the test segments
(seed 2) below were used for this report only, never for a choice. On those development segments a
second training seed (`--seed 1`) chose the same structures with free-run ratios twin / ARX of cell
voltage 0.21, cell temperature 0.16, inverter coolant 0.41, inverter temperature 0.12. The tightest
margin is the coolant: the twin's free-run RMSE is 0.19 °C on the training segments too (noise
0.1 °C), so part of the loop is only approximated in-sample (the motor's efficiency map seen through
w² and |w| of the motor power, the radiator's speed-dependent conductance), not an extrapolation error.
"""


def write_report(results: dict[str, Any]) -> None:
    """report.md from the results."""
    lines = ["# Inferred twins vs the ARX baseline (`python -m bench.inference`)", "",
             f"Machine: {results['machine']}; shared with other jobs, training under `nice -n 10`, torch 1 thread.",
             "Each generator: 12 training/validation segments through `fleet infer` with the default budget; "
             "scores on held-out **out-of-distribution** test segments, free run from the first output sample "
             "(the contract) and one step ahead, RMSE pooled over the test segments.", ""]
    for name, r in results["generators"].items():
        outs = list(r["free_run_ratio_twin_over_arx"])
        lines += [f"## {name}", "", r["generator"], "",
                  f"- training data: {r['train_samples']} samples in {r['train_segments']} segments; "
                  f"`fleet infer` wall time **{r['infer_wall_s']:.0f} s** (budget {r['budget_s']:.0f} s)",
                  f"- chosen: `{r['chosen']}`; ARX baseline `{r['baseline']}`", "",
                  "| candidate | validation free-run nRMSE | iterations | seconds |", "|---|---|---|---|"]
        for c in r["candidates"]:
            score = "skipped" if c.get("val_nrmse") is None else f"{c['val_nrmse']:.4f}"
            lines.append(f"| {c['label']} | {score} | {c['iterations']} | {c['seconds']:.0f} |")
        lines += ["", "Test segments (OOD): " + ", ".join(r["test_segments"]), ""]
        lines += metrics_table([("twin", r["test"]["twin"]), ("ARX", r["test"]["arx"])], outs)
        lines += ["", "Free-run RMSE ratio twin / ARX (acceptance: ≤ 0.5 per output): "
                  + ", ".join(f"{o} **{v:.2f}** ({'met' if v <= 0.5 else 'NOT met'})"
                              for o, v in r["free_run_ratio_twin_over_arx"].items()), ""]
        lines += [f"![{p}](plots/{p})" for p in r["plots"]] + [""]
    lines += [NOTES]
    (OUT / "report.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    """Run both generators and write the report."""
    budget = float(os.environ.get("BENCH_INFER_BUDGET_S", DEFAULT_BUDGET_S))
    scale = float(os.environ.get("BENCH_INFER_SCALE", "1.3"))
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    results: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                                          f"{platform.python_version()}", "generators": {}}
    with tempfile.TemporaryDirectory(prefix="bench-infer-") as tmp:
        for name in GENERATORS:
            results["generators"][name] = run_generator(name, Path(tmp), budget, scale)
            print(f"{name}: ratio {results['generators'][name]['free_run_ratio_twin_over_arx']}", flush=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=1, default=lambda v: np.asarray(v).tolist()))
    write_report(results)
    print(f"wrote {OUT / 'report.md'}")


if __name__ == "__main__":
    main()
