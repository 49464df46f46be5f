"""The inference engine: try candidate structures within a time budget, keep the best in free run.

>>> from models.inference.generators import cell_segments, to_dataset
>>> data = to_dataset(cell_segments(3, seed=1), ["current_A", "ambient_C"], ["voltage_V"])
>>> est = TwinInference(budget_s=2.0, candidates=()).fit(data)
>>> est.twin_.structure.kind, round(est.twin_.dt, 1)
('arx', 1.0)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.inference.data import Dataset, Port
from models.inference.errors import InferenceError
from models.inference.fitting import (Scaler, free_run, input_constants, one_step, physical_init, select_arx,
                                      train_torch)
from models.inference.structures import Params, Runner, Structure, make_structure

#: Grey-box structures of the library tried after ARX, then the neural fallback (in this order).
DEFAULT_CANDIDATES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("greybox", {"integrator": False, "lags": 2, "thermal": True, "residual": 0}),
    ("greybox", {"integrator": True, "lags": 2, "thermal": True, "residual": 0}),
    ("greybox", {"integrator": True, "lags": 2, "thermal": True, "residual": 16}),
    ("nss", {"nx": 6, "hidden": 32}),
)
DEFAULT_BUDGET_S = 480.0


@dataclass
class InferredTwin:
    """A fitted twin: structure, parameters, scaling, sampling and declaration.

    ``predict`` is the free-run contract: inputs of a whole segment and its
    first output sample in, the output trajectory out (numpy only).
    """

    structure: Structure
    params: Params
    scaler: Scaler
    dt: float
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    input_ranges: np.ndarray
    metrics: dict[str, Any] = field(default_factory=dict)

    def predict(self, u: np.ndarray, y0: np.ndarray) -> np.ndarray:
        """Free-run outputs ``(T, ny)`` for inputs ``(T, nu)`` and the first output sample ``(ny,)``."""
        return self.predict_many([u], [y0])[0]

    def predict_many(self, us: list[np.ndarray], y0s: list[np.ndarray]) -> list[np.ndarray]:
        """:meth:`predict` for several segments at once (batched)."""
        sc = self.scaler
        pred = free_run(self.structure, self.params, [sc.u(u) for u in us], [sc.y(y0) for y0 in y0s], self.dt)
        return [sc.y_inv(p) for p in pred]

    def one_step(self, u: np.ndarray, y: np.ndarray) -> np.ndarray:
        """One-step-ahead predictions ``(T-1, ny)`` of samples 1.. from measured outputs."""
        sc = self.scaler
        return sc.y_inv(one_step(self.structure, self.params, sc.u(u)[None], sc.y(y)[None], self.dt)[0])

    def out_of_range(self, u: np.ndarray) -> list[str]:
        """Per sample, the inputs outside the range seen in training (``""`` when all inside)."""
        lo, hi = self.input_ranges[:, 0], self.input_ranges[:, 1]
        flags = []
        for row in u:
            bad = [f"{p.name}{'<' if v < a else '>'}{a if v < a else b:g}"
                   for p, v, a, b in zip(self.inputs, row, lo, hi) if v < a or v > b]
            flags.append(";".join(bad))
        return flags


def runner(twin: InferredTwin) -> Runner:
    """Step-by-step execution of ``twin`` in physical units (assemblies, FMUs)."""
    sc = twin.scaler
    return Runner(twin.structure, twin.params, twin.dt, sc.u_mean, sc.u_std, sc.y_mean, sc.y_std)


def evaluate(twin: InferredTwin, data: Dataset) -> dict[str, dict[str, float]]:
    """Free-run and one-step RMSE per output (physical units), pooled over the segments of ``data``."""
    segs = data.segments
    pred = twin.predict_many([s.u for s in segs], [s.y[0] for s in segs])
    fr = np.concatenate([p - s.y for p, s in zip(pred, segs)])
    os_ = np.concatenate([twin.one_step(s.u, s.y) - s.y[1:] for s in segs])
    names = [p.name for p in twin.outputs]
    return {"free_run_rmse": dict(zip(names, np.sqrt(np.nanmean(fr**2, 0)).tolist())),
            "one_step_rmse": dict(zip(names, np.sqrt(np.nanmean(os_**2, 0)).tolist()))}


def default_validation(data: Dataset) -> list[str]:
    """About a quarter of the segments (at least one, never all), chosen to test extrapolation.

    For each input in turn, the segment reaching furthest above that input's
    median over all data (the hottest, the highest charge rate, ...) is held
    out, so selection rewards structures that extrapolate beyond the training
    range, which is what the twin will be asked to do; remaining places are
    spread evenly through the file.
    """
    names = [s.name for s in data.segments]
    if len(names) < 2:
        raise InferenceError(f"--data has {len(names)} segment(s); at least 2 are needed (training and validation)")
    n_val = max(1, len(names) // 4)
    median = np.median(np.concatenate([s.u for s in data.segments]), axis=0)
    chosen: list[str] = []
    for j in range(len(data.inputs)):
        reach = {s.name: float(np.max(s.u[:, j]) - median[j]) for s in data.segments if s.name not in chosen}
        if len(chosen) < n_val and reach:
            chosen.append(max(reach, key=reach.__getitem__))
    for i in np.round(np.linspace(0, len(names) - 1, n_val + 2)[1:-1]).astype(int):
        if len(chosen) < n_val and names[i] not in chosen:
            chosen.append(names[i])
    return chosen


def _parsimonious(fitted: list[tuple[float, Structure, Params]], tolerance: float) -> tuple[float, Structure, Params]:
    """The first (simplest) fit within ``tolerance`` of the best validation score."""
    best = min(f[0] for f in fitted)
    return next(f for f in fitted if f[0] <= best * (1.0 + tolerance))


class TwinInference:
    """Infer a twin from input/output segments (scikit-learn style: configure, ``fit``, read ``*_``).

    ``fit`` always fits the ARX baseline (orders 1..4 chosen on validation free
    run), then trains each structure of ``candidates`` (grey-box library, then
    the neural state space) with an equal share of the remaining
    ``budget_s``, and keeps the simplest structure (ARX, then the candidates
    in order) whose validation free-run error (mean over outputs of RMSE /
    output std) is within ``tolerance`` (relative) of the lowest: flexible
    networks must earn their place, as they extrapolate worst. Seeds are fixed; torch uses
    ``n_threads`` threads; ``max_iterations`` caps each candidate's training
    (reproducible fits whatever the machine's load).
    """

    def __init__(self, budget_s: float = DEFAULT_BUDGET_S, seed: int = 0,
                 candidates: tuple[tuple[str, dict[str, Any]], ...] = DEFAULT_CANDIDATES, n_threads: int = 1,
                 max_iterations: int | None = None, tolerance: float = 0.1,
                 log: Callable[[str], None] | None = None) -> None:
        self.budget_s, self.seed, self.candidates, self.n_threads = budget_s, seed, candidates, n_threads
        self.max_iterations, self.tolerance, self.log = max_iterations, tolerance, log

    def _say(self, msg: str) -> None:
        if self.log:
            self.log(msg)

    def fit(self, data: Dataset, validation: list[str] | None = None) -> TwinInference:
        """Fit on ``data``; ``validation`` names the segments used for selection and early stopping."""
        if not (self.budget_s > 0):
            raise InferenceError(f"--budget-s {self.budget_s}: must be a positive number of seconds")
        t0 = time.monotonic()
        names = [s.name for s in data.segments]
        val_names = set(validation) if validation else set(default_validation(data))
        unknown = sorted(v for v in val_names if v not in names and not any(n.split("/")[0] == v for n in names))
        if unknown:
            raise InferenceError(f"--validation {unknown[0]!r}: no such segment; segments: {', '.join(names)}")
        val = data.subset(val_names)
        val_set = {s.name for s in val.segments}
        train = Dataset(data.inputs, data.outputs, data.dt, tuple(s for s in data.segments if s.name not in val_set))
        if not train.segments:
            raise InferenceError("--validation names every segment; leave at least one for training")
        sc = Scaler.fit([s.u for s in train.segments], [s.y for s in train.segments])
        tr = ([sc.u(s.u) for s in train.segments], [sc.y(s.y) for s in train.segments])
        va = ([sc.u(s.u) for s in val.segments], [sc.y(s.y) for s in val.segments])
        u_all = np.concatenate(tr[0]) * sc.u_std + sc.u_mean
        ranges = np.stack([u_all.min(0), u_all.max(0)], 1)

        def twin(s: Structure, P: Params) -> InferredTwin:
            return InferredTwin(s, P, sc, data.dt, data.inputs, data.outputs, ranges)

        consts = input_constants(sc, [s.u for s in train.segments], [s.y for s in train.segments],
                                 [p.unit for p in data.inputs])
        s_arx, p_arx, score, tried = select_arx(tr, va, data.dt)
        self._say(f"arx: best {s_arx.label}, validation free-run nRMSE {score:.4f}")
        rows = [{"label": s_arx.label, "kind": "arx", "val_nrmse": score, "iterations": 0,
                 "seconds": time.monotonic() - t0}]
        fitted = [(score, s_arx, p_arx)]
        if self.candidates:
            import torch

            torch.set_num_threads(self.n_threads)
        for i, (kind, config) in enumerate(self.candidates):
            left = self.budget_s - (time.monotonic() - t0)
            share = left / (len(self.candidates) - i)
            if share < 1.0:
                self._say(f"{kind}: skipped, budget exhausted")
                rows.append({"label": make_structure(kind, config, 1, 1).label, "kind": kind, "val_nrmse": None,
                             "iterations": 0, "seconds": 0.0, "skipped": "budget exhausted"})
                continue
            s = make_structure(kind, config, len(data.inputs), len(data.outputs))
            start = consts | (physical_init(sc, [p.unit for p in data.inputs], [p.unit for p in data.outputs],
                                            3 * len(data.inputs)) if kind == "greybox" else {})
            res = train_torch(s, tr, va, data.dt, share * 0.97, start, seed=self.seed,
                              lr=3e-3 if kind == "nss" else 1e-2,
                              max_iterations=self.max_iterations)
            self._say(f"{s.label}: validation free-run nRMSE {res.val_nrmse:.4f} "
                      f"({res.iterations} iterations, {res.seconds:.0f} s)")
            rows.append({"label": s.label, "kind": kind, "val_nrmse": res.val_nrmse, "iterations": res.iterations,
                         "seconds": res.seconds, "history": res.history})
            fitted.append((res.val_nrmse, s, res.params))
        best = _parsimonious(fitted, self.tolerance)
        self.baseline_ = twin(s_arx, p_arx)
        self.twin_ = twin(best[1], best[2])
        self.candidates_ = rows
        self.arx_orders_ = tried
        self.validation_ = sorted(s.name for s in val.segments)
        self.validation_data_ = val
        self.train_segments_ = sorted(s.name for s in train.segments)
        for t in (self.baseline_, self.twin_):
            t.metrics = {"validation": evaluate(t, val), "training": evaluate(t, train)}
        self.fit_seconds_ = time.monotonic() - t0
        self._say(f"chosen: {self.twin_.structure.label} in {self.fit_seconds_:.0f} s")
        return self
