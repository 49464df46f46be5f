"""Evaluate an artifact on its held-out vehicles: Markdown report, PNG per component, results.json.

    fleet evaluate --artifact A --data DIR --out bench/risk_report [--budget 5]   (= python -m models.risk.evaluate)

Only the artifact's evaluation vehicles (group B in ``split.json``) are replayed and
scored, on every usable (not down, not censored) day. For each component, model and
age+mileage baseline side by side: cost under the alert budget (``models.risk.alerts``,
constants configurable), precision/recall at the budget and over a range of budgets,
lead times of true alerts, Brier score, ROC AUC / average precision, reliability curve
and ECE (10 equal-width bins; also equal-mass bins and the out-of-time subset).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from models.risk.alerts import CostModel, bayes_threshold, choose_alerts, score_alerts, threshold_alerts
from models.risk.artifact import RiskModelSet, load_model_set, load_split
from models.risk.calibration import reliability_curve
from models.risk.dataset import dataset_paths
from models.risk.metrics import probability_metrics
from models.risk.plots import component_figure
from models.risk.replay import Snapshots
from models.risk.split import Split
from models.risk.train import Inputs, build_snapshots, component_labels, load_inputs

BUDGETS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
TARGET_COST_RATIO = 0.6
TARGET_ECE = 0.05


def _alerts(snap: Snapshots, rows: np.ndarray, risk: np.ndarray, fails: list[tuple[str, int]], horizon: float,
            budget: float, cost: CostModel, tiebreak: np.ndarray | None = None) -> dict[str, Any]:
    alert = choose_alerts(snap.vins[rows], snap.day[rows], risk, budget, cooldown_days=horizon, tiebreak=tiebreak)
    out = score_alerts(snap.vins[rows], snap.now_ms[rows], alert, fails, horizon, cost)
    d = out.to_json()
    d["lead_days_all"] = out.lead_days
    return d


def _reliability(y: np.ndarray, p: np.ndarray) -> dict[str, list[float]]:
    mp, fr, n = reliability_curve(y, p, 10)
    return {"mean_pred": mp.tolist(), "observed": fr.tolist(), "count": n.tolist()}


def evaluate_component(rs: RiskModelSet, snap: Snapshots, inputs: Inputs, split: Split, component: str,
                       budget: float, cost: CostModel) -> dict[str, Any]:
    """All numbers and curves of one component on the held-out rows."""
    h = rs.horizon_days
    lab = component_labels(snap, inputs.index, component, h)
    rows = lab.usable & np.isin(snap.vins, np.array(sorted(split.eval_vins), dtype=snap.vins.dtype))
    k = rs.components.index(component)
    X = snap.X[rows]
    p_model = rs.predict_proba(X)[:, k]
    p_base = rs.baseline_proba(X)[:, k]
    raw = {"model": rs.decision_function(X)[:, k], "baseline": rs.decision_function(X, baseline=True)[:, k]}
    y = lab.y[rows]
    late = snap.now_ms[rows] > split.train_end_ms
    fails = [f for f in inputs.index.failures(component) if f[0] in split.eval_vins]
    res: dict[str, Any] = {"horizon_days": h, "budget": budget, "cost": cost.__dict__,
                           "vehicles": int(len(np.unique(snap.vins[rows]))), "rows": int(rows.sum())}
    for key, p in (("model", p_model), ("baseline", p_base)):
        res[key] = {"metrics": probability_metrics(y, p),
                    "metrics_out_of_time": probability_metrics(y[late], p[late]),
                    "reliability": _reliability(y, p),
                    "alerts": _alerts(snap, rows, p, fails, h, budget, cost, raw[key])}
    res["budget_curve"] = []
    for b in BUDGETS:
        point = {"budget": b}
        for key, p in (("model", p_model), ("baseline", p_base)):
            a = _alerts(snap, rows, p, fails, h, b, cost, raw[key])
            point[key] = {k2: a[k2] for k2 in ("cost", "precision", "recall", "alerts", "caught", "late", "missed",
                                               "cost_no_alerts")}
        res["budget_curve"].append(point)
    mc, bc = res["model"]["alerts"]["cost"], res["baseline"]["alerts"]["cost"]
    res["cost_ratio"] = mc / bc if bc else float("nan")
    # cost-driven policy: each model's threshold chosen on the calibration window (artifact), same procedure
    policy = rs.metadata.get("alert_policy", {})
    chosen = policy.get("thresholds", {}).get(component) if policy.get("cost") == cost.__dict__ else None
    res["threshold_policy"] = {}
    for key, p in (("model", p_model), ("baseline", p_base)):
        t = chosen[key] if chosen else bayes_threshold(cost)
        alert = threshold_alerts(snap.vins[rows], snap.day[rows], p, t, cooldown_days=h)
        out = score_alerts(snap.vins[rows], snap.now_ms[rows], alert, fails, h, cost).to_json()
        out["threshold"] = t
        out["threshold_source"] = "calibration window" if chosen else "Bayes rule"
        res["threshold_policy"][key] = out
    tm, tb = res["threshold_policy"]["model"]["cost"], res["threshold_policy"]["baseline"]["cost"]
    res["threshold_cost_ratio"] = tm / tb if tb else float("nan")
    # explanations of the riskiest held-out rows
    top = np.argsort(-p_model)[:3]
    expl = rs.top_features(X[top], k=3)
    res["top_rows"] = [{"vin": str(snap.vins[rows][i]), "day": int(snap.day[rows][i]), "risk": float(p_model[i]),
                        "label": int(y[i]), "top_features": expl[j][k]} for j, i in enumerate(top)]
    return res


def _fmt(x: Any, nd: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    return f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def write_report(out: Path, rs: RiskModelSet, results: dict[str, Any], budget: float, cost: CostModel,
                 data_note: str) -> Path:
    """``report.md`` with the tables and the figure links."""
    meta = rs.metadata
    lines = [f"# Component failure risk — evaluation of `{rs.version}`", "",
             f"Data: {data_note}", "",
             f"Held-out vehicles (group B, never seen in training or calibration): "
             f"{results['eval_vehicles']}; horizon {rs.horizon_days:g} days; training window "
             f"{meta['training_window']['data_start']} – {meta['training_window']['train_end']} (vehicles A), "
             f"calibration after it (vehicles A), data end {meta['training_window']['data_end']}.", "",
             f"Alert policy: daily top-k, budget **{budget:g} alerts per 1,000 vehicles per week** per component, "
             f"no repeat alert for a vehicle within {rs.horizon_days:g} days. Costs: missed failure "
             f"{cost.missed:g}, late alert (< {cost.lead_days:g} days before the failure) {cost.late:g}, needless "
             f"check {cost.needless:g}, timely true alert {cost.true_alert:g}.", "",
             "| component | failures | cost model | cost baseline | ratio | cost no alerts | precision m / b | "
             "recall m / b | median lead d | Brier m / b | ECE m / b | ECE (equal-mass) m | AUC m / b | "
             "calibration |", "|" + "---|" * 14]
    for comp, r in results["components"].items():
        m, b = r["model"], r["baseline"]
        lines.append(
            f"| {comp} | {m['alerts']['failures']} | {m['alerts']['cost']:.0f} | {b['alerts']['cost']:.0f} | "
            f"{_fmt(r['cost_ratio'], 2)} | {m['alerts']['cost_no_alerts']:.0f} | "
            f"{_fmt(m['alerts']['precision'], 2)} / {_fmt(b['alerts']['precision'], 2)} | "
            f"{_fmt(m['alerts']['recall'], 2)} / {_fmt(b['alerts']['recall'], 2)} | "
            f"{_fmt(m['alerts']['lead_days_median'], 1)} | {_fmt(m['metrics']['brier'], 4)} / "
            f"{_fmt(b['metrics']['brier'], 4)} | {_fmt(m['metrics']['ece'], 4)} / {_fmt(b['metrics']['ece'], 4)} | "
            f"{_fmt(m['metrics']['ece_quantile'], 4)} | {_fmt(m['metrics']['roc_auc'])} / "
            f"{_fmt(b['metrics']['roc_auc'])} | {meta['calibration'].get(comp, '?')} |")
    lines += ["", "### Cost-driven alerts (no budget)", "",
              "Each vehicle is alerted when its calibrated risk exceeds a threshold (then not again within "
              f"{rs.horizon_days:g} days). The threshold is chosen per component on the calibration window "
              "(vehicles A after the time cut) as the one with the lowest cost — the same procedure for the model "
              f"and the baseline; the Bayes rule p · {cost.missed:g} > {cost.needless:g} gives "
              f"{bayes_threshold(cost):g}. A baseline that cannot single out risky vehicles ends up alerting "
              "(almost) never, i.e. at the cost of no alerts.", "",
              "| component | failures | threshold m / b | cost model | cost baseline | ratio | cost no alerts | "
              "alerts m / b | caught m / b | late m / b | precision m / b | recall m / b |", "|" + "---|" * 12]
    for comp, r in results["components"].items():
        m, b = r["threshold_policy"]["model"], r["threshold_policy"]["baseline"]
        lines.append(
            f"| {comp} | {m['failures']} | {m['threshold']:g} / {b['threshold']:g} | {m['cost']:.0f} | "
            f"{b['cost']:.0f} | {_fmt(r['threshold_cost_ratio'], 2)} | {m['cost_no_alerts']:.0f} | "
            f"{m['alerts']} / {b['alerts']} | {m['caught']} / {b['caught']} | {m['late']} / {b['late']} | "
            f"{_fmt(m['precision'], 2)} / {_fmt(b['precision'], 2)} | {_fmt(m['recall'], 2)} / "
            f"{_fmt(b['recall'], 2)} |")
    lines += ["", "## Acceptance", "",
              "Cost ratio = model cost / baseline cost on the held-out vehicles, under the cost-driven policy "
              "(the decision rule a workshop would run) and, for reference, under the fixed budget.", ""]
    for comp in ("inverter", "traction_battery"):
        r = results["components"].get(comp)
        if r is None:
            continue
        ok_cost = r["threshold_cost_ratio"] <= TARGET_COST_RATIO
        ok_ece = r["model"]["metrics"]["ece"] <= TARGET_ECE
        lines.append(f"- {comp}: cost ratio {_fmt(r['threshold_cost_ratio'], 2)} at the cost-driven threshold "
                     f"(target ≤ {TARGET_COST_RATIO}) {'met' if ok_cost else '**not met**'} "
                     f"({_fmt(r['cost_ratio'], 2)} at the budget of {budget:g}); ECE "
                     f"{_fmt(r['model']['metrics']['ece'], 4)} (target ≤ {TARGET_ECE}) "
                     f"{'met' if ok_ece else '**not met**'}.")
    big = results["eval_vehicles"] >= 2000
    lines.append(f"- held-out fleet ≥ 2,000 vehicles: {'yes' if big else '**no**'} ({results['eval_vehicles']}).")
    lines += ["", "## Training and calibration (vehicles A)", "",
              "Calibration method chosen per component by the lower ECE in a 2-fold cross-validation grouped by "
              "vehicle on the calibration rows (later window); both are shown.", "",
              "| component | train rows (positives) | calibration rows (positives) | trees | ECE isotonic | "
              "ECE Platt | chosen |", "|---|---|---|---|---|---|---|"]
    for comp in results["components"]:
        tm = meta["metrics"].get(comp, {})
        cv = tm.get("model", {}).get("calibration_cv", {})
        rows, pos = tm.get("rows", {}), tm.get("positives", {})
        lines.append(f"| {comp} | {rows.get('train', '–')} ({pos.get('train', '–')}) | "
                     f"{rows.get('calibration', '–')} ({pos.get('calibration', '–')}) | "
                     f"{tm.get('model', {}).get('n_iter', '–')} | "
                     f"{_fmt(cv.get('isotonic', {}).get('ece'), 4)} | {_fmt(cv.get('sigmoid', {}).get('ece'), 4)} | "
                     f"{meta['calibration'].get(comp, '?')} |")
    lines += ["", "## Per component", ""]
    for comp, r in results["components"].items():
        lines += [f"### {comp}", "", f"![{comp}]({comp}.png)", "",
                  f"Rows {r['rows']} ({r['vehicles']} vehicles); positives {r['model']['metrics']['positives']} "
                  f"(base rate {_fmt(r['model']['metrics']['base_rate'], 4)}). Out-of-time subset (after the "
                  f"training cut): ECE {_fmt(r['model']['metrics_out_of_time']['ece'], 4)}, AUC "
                  f"{_fmt(r['model']['metrics_out_of_time']['roc_auc'])} (baseline "
                  f"{_fmt(r['baseline']['metrics_out_of_time']['roc_auc'])}).", "",
                  "| budget | cost m | cost b | precision m / b | recall m / b |", "|---|---|---|---|---|"]
        for c in r["budget_curve"]:
            lines.append(f"| {c['budget']:g} | {c['model']['cost']:.0f} | {c['baseline']['cost']:.0f} | "
                         f"{_fmt(c['model']['precision'], 2)} / {_fmt(c['baseline']['precision'], 2)} | "
                         f"{_fmt(c['model']['recall'], 2)} / {_fmt(c['baseline']['recall'], 2)} |")
        lines += ["", "Riskiest held-out rows and their top features (path contributions to the log-odds):", ""]
        for t in r["top_rows"]:
            feats = ", ".join(f"`{n}` {v:+.2f}" for n, v in t["top_features"])
            lines.append(f"- {t['vin']} day {t['day']}: risk {t['risk']:.3f} (label {t['label']}): {feats}")
        lines.append("")
    scoring = out / "scoring.json"
    if scoring.exists():
        s = json.loads(scoring.read_text())
        lines += ["## Scoring throughput", "", f"Twins scored per second end to end (features + proba + top "
                  f"features), one core: {s.get('end_to_end_twins_per_s', 0):,.0f} (batches of "
                  f"{s.get('batch_twins', '?')} twins); `RiskModelSet.predict_proba` alone "
                  f"{s.get('rows_per_s', 0):,.0f} rows/s (`python -m bench.risk`, `scoring.json`).", ""]
    lines += ["## Method", "", "See `models/risk/README.md` (features, labels, split, calibration, attribution).", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def evaluate(artifact: str | Path, data_dir: str | Path, out_dir: str | Path, *, budget: float = 5.0,
             cost: CostModel | None = None, workers: int | None = None, cache_dir: str | Path | None = None,
             data_note: str = "", log: Any = print) -> dict[str, Any]:
    """Replay the held-out vehicles, compute everything, write report.md, PNGs and results.json."""
    cost = cost or CostModel()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rs = load_model_set(artifact)
    split = Split.from_json(load_split(artifact))
    p = dataset_paths(data_dir)
    inputs = load_inputs(p["telemetry"], p["maintenance"], p["fleet"], p["weather"])
    snap = build_snapshots(inputs, vins=split.eval_vins, workers=workers, cache_dir=cache_dir)
    log(f"replayed {len(snap)} held-out rows of {len(snap.first_ts)} vehicles: {snap.stats}")
    results: dict[str, Any] = {"version": rs.version, "eval_vehicles": len(snap.first_ts), "budget": budget,
                               "cost": cost.__dict__, "replay": snap.stats, "components": {}}
    for comp in rs.components:
        r = evaluate_component(rs, snap, inputs, split, comp, budget, cost)
        results["components"][comp] = r
        component_figure(out / f"{comp}.png", comp, r)
        log(f"{comp}: cost {r['model']['alerts']['cost']:.0f} vs {r['baseline']['alerts']['cost']:.0f} "
            f"(ratio {r['cost_ratio']:.2f}; cost-driven {r['threshold_cost_ratio']:.2f}), ECE {r['model']['metrics']['ece']:.4f}, "
            f"AUC {r['model']['metrics']['roc_auc']:.3f} vs {r['baseline']['metrics']['roc_auc']:.3f}")
    write_report(out, rs, results, budget, cost, data_note or str(data_dir))
    (out / "results.json").write_text(json.dumps(results, indent=1, default=float) + "\n")
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """CLI entry point."""
    ap = argparse.ArgumentParser(prog="python -m models.risk.evaluate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--artifact", required=True)
    ap.add_argument("--data", required=True, help="dataset directory (telemetry/, maintenance.csv, ...)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget", type=float, default=5.0, help="alerts per 1,000 vehicles per week")
    ap.add_argument("--cost-missed", type=float, default=CostModel.missed)
    ap.add_argument("--cost-late", type=float, default=CostModel.late)
    ap.add_argument("--cost-needless", type=float, default=CostModel.needless)
    ap.add_argument("--cost-true-alert", type=float, default=CostModel.true_alert)
    ap.add_argument("--lead-days", type=float, default=CostModel.lead_days)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None, help="OpenMP threads for the trees (default: all)")
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--data-note", default="", help="one line describing the data, for the report")
    a = ap.parse_args(argv)
    cost = CostModel(a.cost_missed, a.cost_late, a.cost_needless, a.cost_true_alert, a.lead_days)
    with threadpool_limits(a.threads):
        return evaluate(a.artifact, a.data, a.out, budget=a.budget, cost=cost, workers=a.workers,
                        cache_dir=a.cache_dir, data_note=a.data_note, log=lambda s: print(s, file=sys.stderr))


if __name__ == "__main__":
    main()
