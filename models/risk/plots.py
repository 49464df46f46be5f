"""Report figures (matplotlib, Agg): one PNG per component, model next to the age+mileage baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def component_figure(path: str | Path, component: str, res: dict[str, Any]) -> None:
    """Reliability diagram, cost and precision/recall vs alert budget, lead-time histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 2, figsize=(11, 8.5))
    title = component.replace("_", " ")
    # reliability
    a = ax[0, 0]
    top = 0.0
    for key, label, style in (("model", "model", "o-"), ("baseline", "age+mileage baseline", "s--")):
        rel = res[key]["reliability"]
        a.plot(rel["mean_pred"], rel["observed"], style, label=f"{label} (ECE {res[key]['metrics']['ece']:.3f})")
        top = max(top, max(rel["mean_pred"] + rel["observed"] + [0.0]))
    top = min(1.0, top * 1.1 + 1e-3)
    a.plot([0, top], [0, top], color="grey", lw=0.8)
    a.set_xlim(0, top)
    a.set_ylim(0, top)
    a.set_xlabel("predicted P(failure within horizon)")
    a.set_ylabel("observed frequency")
    a.set_title(f"{title}: reliability (10 equal-width bins, zoomed)")
    a.legend(fontsize=8)
    # cost vs budget
    a = ax[0, 1]
    curve = res["budget_curve"]
    b = [c["budget"] for c in curve]
    a.plot(b, [c["model"]["cost"] for c in curve], "o-", label="model")
    a.plot(b, [c["baseline"]["cost"] for c in curve], "s--", label="baseline")
    a.axhline(curve[0]["model"]["cost_no_alerts"], color="grey", lw=0.8, label="no alerts")
    a.axvline(res["budget"], color="k", lw=0.6, ls=":")
    a.set_xscale("log")
    a.set_xlabel("alert budget (per 1,000 vehicles per week)")
    a.set_ylabel("total cost")
    a.set_title("cost on held-out vehicles")
    a.legend(fontsize=8)
    # precision / recall vs budget
    a = ax[1, 0]
    for key, style in (("model", "-"), ("baseline", "--")):
        a.plot(b, [c[key]["precision"] for c in curve], "o" + style, label=f"precision ({key})")
        a.plot(b, [c[key]["recall"] for c in curve], "^" + style, label=f"recall ({key})")
    a.axvline(res["budget"], color="k", lw=0.6, ls=":")
    a.set_xscale("log")
    a.set_ylim(0, 1)
    a.set_xlabel("alert budget (per 1,000 vehicles per week)")
    a.set_title("precision and recall (timely) vs budget")
    a.legend(fontsize=7)
    # lead times
    a = ax[1, 1]
    bins = np.linspace(0, res["horizon_days"], 16)
    for key, label in (("model", "model"), ("baseline", "baseline")):
        lead = res[key]["alerts"].get("lead_days_all", [])
        a.hist(lead, bins=bins, alpha=0.55, label=f"{label} (n={len(lead)})")
    a.axvline(res["cost"]["lead_days"], color="k", lw=0.6, ls=":")
    a.set_xlabel("lead time of true alerts (days before failure)")
    a.set_ylabel("failures")
    a.set_title(f"lead-time distribution at budget {res['budget']:g}")
    a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
