"""Twin artifacts: a versioned directory with the declaration, the weights and the report.

Layout of ``twin-<UTC time>-<hash>/``:

* ``twin.json`` — format version, structure (kind, configuration), sampling
  step, inputs (name, unit, range seen in training), outputs (name, unit),
  scaling, how the initial state is estimated, the candidates tried, the
  validation and training segments and the metrics of the twin and its ARX
  baseline;
* ``weights.npz`` — the twin's parameters (``twin/…``) and the baseline's (``arx/…``),
  run in numpy: serving never imports torch;
* ``report.md`` and ``plots/`` — see :mod:`models.inference.report`.

The directory is written under a temporary name and renamed when complete,
so a failure leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from models.inference.data import Port
from models.inference.engine import InferredTwin, TwinInference
from models.inference.errors import InferenceError
from models.inference.fitting import Scaler
from models.inference.structures import make_structure

FORMAT = "fleet-twin/1"
INITIAL_STATE_DOC = ("x(0) = encoder(y(0), u(0)) (linear map plus a small tanh network trained with the model), "
                     "refined by Gauss-Newton steps so that the model's output at t=0 equals y(0); in a grey box "
                     "the lags start at their steady state for u(0) and the correction goes to charge and "
                     "temperature (lags weighted 1e-4); ARX starts from y(0) and u(0) repeated into the past")


def _twin_doc(t: InferredTwin) -> dict[str, Any]:
    return {"kind": t.structure.kind, "config": t.structure.config, "label": t.structure.label,
            "metrics": t.metrics}


def save(est: TwinInference, out_dir: Path, write_report: bool = True) -> Path:
    """Write the artifact of a fitted estimator into ``out_dir`` (created); returns the artifact path."""
    twin, base = est.twin_, est.baseline_
    weights = {f"twin/{k}": v for k, v in twin.params.items()} | {f"arx/{k}": v for k, v in base.params.items()}
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(weights[k]).tobytes() for k in sorted(weights)))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"twin-{stamp}-{digest.hexdigest()[:8]}"
    sc = twin.scaler
    doc = {
        "format": FORMAT, "name": name, "created": stamp, "dt_s": twin.dt,
        "inputs": [{"name": p.name, "unit": p.unit, "range": [float(lo), float(hi)]}
                   for p, (lo, hi) in zip(twin.inputs, twin.input_ranges)],
        "outputs": [{"name": p.name, "unit": p.unit} for p in twin.outputs],
        "scaler": {k: getattr(sc, k).tolist() for k in ("u_mean", "u_std", "y_mean", "y_std")},
        "initial_state": INITIAL_STATE_DOC, "twin": _twin_doc(twin), "baseline": _twin_doc(base),
        "selection": (f"simplest candidate within {est.tolerance:.0%} of the lowest validation free-run nRMSE "
                      "(mean over outputs of RMSE / output std)"),
        "candidates": [{k: v for k, v in c.items() if k != "history"} for c in est.candidates_],
        "arx_orders": est.arx_orders_, "validation_segments": est.validation_,
        "training_segments": est.train_segments_, "budget_s": est.budget_s, "fit_seconds": est.fit_seconds_,
        "seed": est.seed,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=out_dir))
    try:
        (tmp / "twin.json").write_text(json.dumps(doc, indent=1, default=_jsonable))
        np.savez(tmp / "weights.npz", **weights)
        if write_report:
            from models.inference.report import write_report as report

            report(tmp, doc, est)
        final = out_dir / name
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(type(v))


def load(path: Path, which: str = "twin") -> InferredTwin:
    """Load the twin (or with ``which="arx"`` its baseline) from an artifact directory."""
    path = Path(path)
    try:
        doc = json.loads((path / "twin.json").read_text())
        npz = np.load(path / "weights.npz")
    except FileNotFoundError as exc:
        raise InferenceError(f"artifact {path}: {Path(exc.filename).name} is missing; not a twin artifact") from None
    except (json.JSONDecodeError, ValueError, OSError) as exc:
        raise InferenceError(f"artifact {path}: unreadable ({exc})") from None
    if doc.get("format") != FORMAT:
        raise InferenceError(f"artifact {path}: format {doc.get('format')!r}, expected {FORMAT!r}")
    part = doc["twin" if which == "twin" else "baseline"]
    ins = tuple(Port(p["name"], p["unit"]) for p in doc["inputs"])
    outs = tuple(Port(p["name"], p["unit"]) for p in doc["outputs"])
    s = make_structure(part["kind"], part["config"], len(ins), len(outs))
    prefix = "twin/" if which == "twin" else "arx/"
    params = {k[len(prefix):]: npz[k] for k in npz.files if k.startswith(prefix)}
    sc = Scaler(**{k: np.array(v) for k, v in doc["scaler"].items()})
    ranges = np.array([p["range"] for p in doc["inputs"]])
    return InferredTwin(s, params, sc, float(doc["dt_s"]), ins, outs, ranges, part.get("metrics", {}))
