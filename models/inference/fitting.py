"""Fitting: normalisation, batching, free-run scoring, ARX least squares and torch training.

All functions work on normalised arrays; :class:`Scaler` maps physical units in and out.
Selection scores are free-run RMSE on validation segments (never one-step).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.inference.structures import Arx, Params, Structure, simulate


@dataclass(frozen=True)
class Scaler:
    """Per-channel mean and standard deviation of inputs and outputs (training segments)."""

    u_mean: np.ndarray
    u_std: np.ndarray
    y_mean: np.ndarray
    y_std: np.ndarray

    @classmethod
    def fit(cls, us: list[np.ndarray], ys: list[np.ndarray]) -> Scaler:
        u, y = np.concatenate(us), np.concatenate(ys)
        return cls(u.mean(0), np.maximum(u.std(0), 1e-12), y.mean(0), np.maximum(y.std(0), 1e-12))

    def u(self, u: np.ndarray) -> np.ndarray:
        return (u - self.u_mean) / self.u_std

    def y(self, y: np.ndarray) -> np.ndarray:
        return (y - self.y_mean) / self.y_std

    def y_inv(self, yn: np.ndarray) -> np.ndarray:
        return yn * self.y_std + self.y_mean


TEMPERATURE_UNITS = ("celsius", "K")


def input_constants(scaler: Scaler, us_raw: list[np.ndarray], ys_raw: list[np.ndarray],
                    in_units: list[str] | None = None) -> dict[str, np.ndarray]:
    """Normalised physical zero of each input, which inputs are flows, and the training range.

    A flow rests at zero (within 1 % of its range) in at least 5 % of the
    training samples, or takes each sign in at least 10 % of them: a current,
    a power or a speed; never an input declared in a temperature unit (a
    level, even when a winter ambient crosses 0 °C). ``const_lo``/``const_hi``:
    the normalised range of ``[y, u]`` in training, to which the inputs of
    learned networks are clipped (so they stay constant beyond it).
    """
    u, y = np.concatenate(us_raw), np.concatenate(ys_raw)
    span = np.ptp(u, axis=0)
    resting = np.mean(np.abs(u) <= 0.01 * span, axis=0) >= 0.05
    crossing = (np.mean(u < 0, axis=0) >= 0.1) & (np.mean(u > 0, axis=0) >= 0.1)
    level = np.array([unit in TEMPERATURE_UNITS for unit in in_units or [""] * u.shape[1]])
    z = np.concatenate([scaler.y(y), scaler.u(u)], axis=1)
    return {"const_u_zero": scaler.u(np.zeros(u.shape[1])), "const_flow": ((resting | crossing) & ~level).astype(float),
            "const_lo": z.min(0), "const_hi": z.max(0)}


def physical_init(scaler: Scaler, in_units: list[str], out_units: list[str], nf: int) -> dict[str, np.ndarray]:
    """Starting values that make the grey-box heat balance a temperature, from the declared units.

    When some outputs are temperatures, the thermal node is the first of them
    (``θ`` in its normalised units; every temperature output follows it with a
    fixed unit gain, plus its own lags), its Newton-cooling target starts as
    the mean of the inputs in the same unit (the ambient) and its losses as
    small positive heat; the OCV spline starts on the other outputs only.
    Without a temperature output: nothing (random starts). Grey-box keys only
    (``nf`` flow features).
    """
    ty = np.array([u in TEMPERATURE_UNITS for u in out_units])
    if not ty.any():
        return {}
    ref = int(np.argmax(ty))
    mu0, sd0 = scaler.y_mean[ref], scaler.y_std[ref]
    gain = np.where(ty, sd0 / scaler.y_std, 0.0)
    init = {"th_E": gain, "const_th_fixed": ty.astype(float), "const_th_E": gain,
            "b": np.where(ty, (mu0 - scaler.y_mean) / scaler.y_std, 0.0), "spl_c": np.where(ty, 0.0, 0.1)}
    tu = np.array([u == out_units[ref] for u in in_units])
    if tu.any():
        init["th_e"] = np.where(tu, scaler.u_std / sd0, 0.0) / tu.sum()
        init["th_e0"] = np.array([np.mean((scaler.u_mean[tu] - mu0) / sd0)])
    nu = len(in_units)
    init["th_h"] = np.r_[np.zeros(nu), np.full(nf - nu, 0.05)]
    return init


def pad(arrays: list[np.ndarray]) -> np.ndarray:
    """Stack ``(T_i, n)`` arrays into ``(B, max T, n)``, holding each last row."""
    t_max = max(len(a) for a in arrays)
    return np.stack([np.concatenate([a, np.repeat(a[-1:], t_max - len(a), 0)]) for a in arrays])


def free_run(s: Structure, P: Params, us: list[np.ndarray], y0s: list[np.ndarray], dt: float) -> list[np.ndarray]:
    """Normalised free-run outputs of each segment (batched; numpy)."""
    with np.errstate(all="ignore"):
        out = simulate(s, P, pad(us), np.stack(y0s), dt)
    return [out[i, :len(u)] for i, u in enumerate(us)]


def nrmse(pred: list[np.ndarray], ys: list[np.ndarray]) -> float:
    """Mean over outputs of the pooled RMSE in normalised units (inf if the run diverged)."""
    err = np.concatenate([p - y for p, y in zip(pred, ys)])
    per = np.sqrt(np.nanmean(err**2, axis=0))
    return float(np.mean(per)) if np.all(np.isfinite(per)) else float("inf")


def fit_arx(na: int, nb: int, us: list[np.ndarray], ys: list[np.ndarray], ridge: float = 1e-6) -> tuple[Arx, Params]:
    """Least-squares MIMO ARX of orders ``na`` (outputs) and ``nb`` (inputs, including u(k))."""
    nu, ny = us[0].shape[1], ys[0].shape[1]
    s = Arx(nu=nu, ny=ny, config={"na": na, "nb": nb})
    rows, targets = [], []
    for u, y in zip(us, ys):
        k0 = max(na, nb - 1)
        cols = [y[k0 - i:len(y) - i] for i in range(1, na + 1)] + [u[k0 - j:len(u) - j] for j in range(nb)]
        rows.append(np.concatenate(cols + [np.ones((len(y) - k0, 1))], axis=1))
        targets.append(y[k0:])
    X, Y = np.concatenate(rows), np.concatenate(targets)
    theta = np.linalg.solve(X.T @ X + ridge * len(X) * np.eye(X.shape[1]), X.T @ Y)
    n_a = na * ny
    return s, {"A": theta[:n_a], "B": theta[n_a:-1], "c": theta[-1]}


def select_arx(train: tuple[list, list], val: tuple[list, list], dt: float, max_order: int = 4
               ) -> tuple[Arx, Params, float, list[dict[str, Any]]]:
    """ARX orders ``1..max_order`` fitted one-step, chosen by free-run validation error."""
    best: tuple[Arx, Params, float] | None = None
    tried = []
    for na in range(1, max_order + 1):
        for nb in range(1, max_order + 1):
            s, P = fit_arx(na, nb, *train)
            score = nrmse(free_run(s, P, val[0], [y[0] for y in val[1]], dt), val[1])
            tried.append({"label": s.label, "val_nrmse": score})
            if best is None or score < best[2]:
                best = (s, P, score)
    assert best is not None
    return best[0], best[1], best[2], tried


@dataclass
class TrainResult:
    """Best parameters of one trained structure and how the training went."""

    params: Params
    val_nrmse: float
    iterations: int
    seconds: float
    history: list[tuple[int, float, float]]


def train_torch(s: Structure, train: tuple[list, list], val: tuple[list, list], dt: float, budget_s: float,
                consts: dict[str, np.ndarray] | None = None, seed: int = 0, l1: float = 1e-3, lr: float = 1e-2,
                batch: int = 64, eval_every: int = 25, patience: int = 10,
                windows: tuple[tuple[float, int, int], ...] = ((0.5, 64, 32), (1.0, 96, 4)),
                max_iterations: int | None = None) -> TrainResult:
    """Adam on the multi-step (simulation) loss over random windows, early-stopped on validation free run.

    Each window starts from its own first output sample through the structure's
    initial-state map, exactly as in free-run prediction. ``windows`` is the
    curriculum: (share of the budget, window length in steps, stride): with
    stride ``m`` the window is simulated at step ``m·dt`` on block-averaged
    input features against block-averaged outputs (the structures are
    continuous-time), so slow dynamics (charge counting, heat) are seen over
    long horizons cheaply before the finer phase. Running out of patience
    moves to the next phase; a plateau halves the step size. ``consts``
    overrides the structure's data-dependent constants (see
    :func:`input_constants`); ``l1`` weighs the structure's sparse gains;
    ``max_iterations`` caps the iterations (the phases then follow it).
    """
    import torch

    from models.inference.structures import torch_ops

    t_start = time.monotonic()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    us, ys = train
    horizon = float(np.mean([len(u) for u in us])) * dt
    P0 = s.init_params(rng, dt, horizon)
    P0 |= {k: v for k, v in (consts or {}).items() if k in P0}
    P = {k: torch.tensor(v, dtype=torch.float64, requires_grad=not k.startswith("const_")) for k, v in P0.items()}
    opt = torch.optim.Adam([p for p in P.values() if p.requires_grad], lr=lr)
    ops = torch_ops()
    lengths = np.array([len(u) for u in us])
    y0_val = [y[0] for y in val[1]]

    def export() -> Params:
        return {k: v.detach().numpy().copy() for k, v in P.items()}

    best = TrainResult(export(), nrmse(free_run(s, export(), val[0], y0_val, dt), val[1]), 0, 0.0, [])
    stale, it, phase, losses = 0, 0, 0, []
    while (elapsed := time.monotonic() - t_start) < budget_s and it < (max_iterations or np.inf):
        if max_iterations:  # an iteration cap makes the phases follow iterations, not the clock
            elapsed = max(elapsed, budget_s * it / max_iterations)
        phase = max(phase, next(i for i, w in enumerate(windows) if elapsed <= w[0] * budget_s))
        _, steps, stride = windows[phase]
        span = min(steps * stride, int(np.median(lengths)))  # windows come from segments at least this long
        stride = max(1, span // steps)
        steps = span // stride
        span = steps * stride
        weight = np.where(lengths >= span, lengths, 0)
        seg = rng.choice(len(us), size=batch, p=weight / weight.sum())
        start = rng.integers(0, lengths[seg] - span + 1)
        ub = torch.from_numpy(np.stack([us[i][a:a + span] for i, a in zip(seg, start)]))
        yb = torch.from_numpy(np.stack([ys[i][a:a + span] for i, a in zip(seg, start)]))
        fb = s.features(P, ub, ops)
        if stride > 1:
            fb, yb0 = fb.reshape(batch, steps, stride, -1).mean(2), yb[:, 0]
            ub, yb = ub.reshape(batch, steps, stride, -1).mean(2), yb.reshape(batch, steps, stride, -1).mean(2)
            pred = simulate(s, P, ub, yb0, dt * stride, ops, f=fb)
            yb = torch.cat([yb0[:, None], yb[:, 1:]], 1)
        else:
            pred = simulate(s, P, ub, yb[:, 0], dt, ops, f=fb)
        loss = torch.mean((pred - yb) ** 2) + l1 * sum(P[k].abs().sum() for k in getattr(s, "SPARSE", ()) if k in P)
        losses.append(float(loss.detach()))
        opt.zero_grad()
        if torch.isfinite(loss):
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(P.values()), 1.0)
            opt.step()
        it += 1
        if it % eval_every == 0:
            score = nrmse(free_run(s, export(), val[0], y0_val, dt), val[1])
            best.history.append((it, score, float(np.mean(losses[-eval_every:]))))
            if score < best.val_nrmse:
                best.params, best.val_nrmse, stale = export(), score, 0
            else:
                stale += 1
                if stale % 3 == 0:  # plateau: halve the step size
                    for group in opt.param_groups:
                        group["lr"] *= 0.5
                if not np.isfinite(score):  # diverged: restart from the best parameters
                    with torch.no_grad():
                        for k, v in best.params.items():
                            P[k].copy_(torch.from_numpy(v))
            if stale >= patience:
                if phase == len(windows) - 1:
                    break
                phase, stale = phase + 1, 0
                for group in opt.param_groups:
                    group["lr"] = lr
    best.iterations, best.seconds = it, time.monotonic() - t_start
    return best


def one_step(s: Structure, P: Params, u: np.ndarray, y: np.ndarray, dt: float) -> np.ndarray:
    """One-step-ahead prediction ``ŷ(k+1 | y(≤k), u(≤k+1))`` in numpy, shape ``(B, T-1, ny)``.

    ARX uses its measured regressors; the state-space structures restart from
    the measured sample each step (``x(k) = init_state(y(k), u(k))``).
    """
    b, t, _ = u.shape
    if isinstance(s, Arx):
        na, nb = s.config["na"], s.config["nb"]
        pad_y = np.concatenate([np.repeat(y[:, :1], na, axis=1), y], axis=1)
        pad_u = np.concatenate([np.repeat(u[:, :1], nb, axis=1), u], axis=1)
        out = []
        for k in range(1, t):
            past_y = [pad_y[:, na + k - i] for i in range(1, na + 1)]
            past_u = [pad_u[:, nb + k - j] for j in range(1, nb)]
            x = np.concatenate(past_y + past_u, axis=-1)
            out.append(s.output(P, x, u[:, k]))
        return np.stack(out, axis=1)
    flat_u, flat_y = u[:, :-1].reshape(-1, u.shape[2]), y[:, :-1].reshape(-1, y.shape[2])
    x = s.advance(P, s.init_state(P, flat_y, flat_u), flat_u, None, dt)
    return s.output(P, x, s.features(P, u[:, 1:].reshape(-1, u.shape[2]))).reshape(b, t - 1, -1)
