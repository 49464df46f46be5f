"""Markdown report of an inferred twin with plots (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from models.inference.data import Segment


def segment_figure(path: Path, seg: Segment, names: list[str], pred: np.ndarray, base: np.ndarray,
                   labels: tuple[str, str]) -> None:
    """Measured vs predicted (twin and ARX) per output, and the free-run error over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(names)
    fig, ax = plt.subplots(2, n, figsize=(6 * n, 6), squeeze=False, sharex=True)
    t = seg.t - seg.t[0]
    for j, name in enumerate(names):
        a = ax[0, j]
        a.plot(t, seg.y[:, j], color="black", lw=0.7, label="measured")
        a.plot(t, pred[:, j], color="tab:red", lw=1.0, label=labels[0])
        a.plot(t, base[:, j], color="tab:blue", lw=0.8, ls="--", label=labels[1])
        a.set_title(f"{seg.name}: {name}")
        a.legend(fontsize=7)
        b = ax[1, j]
        b.plot(t, pred[:, j] - seg.y[:, j], color="tab:red", lw=0.8, label=labels[0])
        b.plot(t, base[:, j] - seg.y[:, j], color="tab:blue", lw=0.8, ls="--", label=labels[1])
        b.axhline(0.0, color="grey", lw=0.5)
        b.set_xlabel("time since segment start (s)")
        b.set_ylabel("free-run error")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def metrics_table(rows: list[tuple[str, dict[str, dict[str, float]]]], outputs: list[str]) -> list[str]:
    """Markdown table: free-run and one-step RMSE per output for each (label, metrics) row."""
    head = ["model"] + [f"free-run {o}" for o in outputs] + [f"one-step {o}" for o in outputs]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, m in rows:
        cells = [f"{m['free_run_rmse'][o]:.4g}" for o in outputs] + [f"{m['one_step_rmse'][o]:.4g}" for o in outputs]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def write_report(out: Path, doc: dict[str, Any], est: Any) -> None:
    """``report.md`` and ``plots/*.png`` for a fitted :class:`~models.inference.engine.TwinInference`."""
    from models.inference.data import Dataset

    twin, base = est.twin_, est.baseline_
    outputs = [p.name for p in twin.outputs]
    (out / "plots").mkdir(exist_ok=True)
    lines = [f"# Inferred twin `{doc['name']}`", "",
             f"Chosen structure: **{twin.structure.label}** (of {len(doc['candidates'])} candidates, "
             f"by {doc['selection']}), fitted in {doc['fit_seconds']:.0f} s of a {doc['budget_s']:.0f} s budget.",
             "", "Inputs: " + ", ".join(f"`{p['name']}` [{p['unit'] or '-'}] seen in "
                                        f"{p['range'][0]:.4g}..{p['range'][1]:.4g}" for p in doc["inputs"]),
             "", "Outputs: " + ", ".join(f"`{p['name']}` [{p['unit'] or '-'}]" for p in doc["outputs"]),
             "", f"Sampling step: {doc['dt_s']:g} s. Initial state: {doc['initial_state']}.", "",
             "## Candidates", "", "| candidate | validation free-run nRMSE | iterations | seconds |", "|---|---|---|---|"]
    for c in doc["candidates"]:
        score = "skipped" if c.get("val_nrmse") is None else f"{c['val_nrmse']:.4f}"
        lines.append(f"| {c['label']} | {score} | {c['iterations']} | {c['seconds']:.0f} |")
    for part in ("validation", "training"):
        lines += ["", f"## RMSE on the {part} segments (pooled)", ""]
        lines += metrics_table([(f"twin {twin.structure.label}", twin.metrics[part]),
                                (f"ARX baseline {base.structure.label}", base.metrics[part])], outputs)
    lines += ["", "## Validation segments (free run from the first sample)", ""]
    val = est.validation_data_
    segs: Dataset = val
    preds = twin.predict_many([s.u for s in segs.segments], [s.y[0] for s in segs.segments])
    bases = base.predict_many([s.u for s in segs.segments], [s.y[0] for s in segs.segments])
    for seg, p, b in zip(segs.segments, preds, bases):
        fname = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in seg.name) + ".png"
        segment_figure(out / "plots" / fname, seg, outputs, p, b, ("twin", "ARX"))
        lines += [f"![{seg.name}](plots/{fname})", ""]
    (out / "report.md").write_text("\n".join(lines) + "\n")
