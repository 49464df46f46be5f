"""Model structures of the inference engine, written once for numpy and torch.

Every structure is a discrete-time state-space map in *normalised* units
(inputs and outputs scaled to zero mean, unit standard deviation), with the
true step ``dt`` (seconds) as an argument:

* ``init_state(P, y0, u0)`` — the initial state from the first output and
  input sample only (the free-run contract);
* ``output(P, x, u)`` — the output at the current step;
* ``step(P, x, u, y, dt)`` — the state one step later.

``P`` is a dict of parameter arrays. The same functions run on torch tensors
(training, with gradients) and on numpy arrays (prediction, FMU), through the
small array namespaces :data:`NP` and :func:`torch_ops`, so what is trained is
exactly what is served.

>>> import numpy as np
>>> s = make_structure("arx", {"na": 1, "nb": 1}, nu=1, ny=1)
>>> P = {"A": np.array([[0.5]]), "B": np.array([[1.0]]), "c": np.zeros(1)}
>>> simulate(s, P, np.ones((1, 3, 1)), np.zeros((1, 1)), 1.0)[0, :, 0].tolist()
[1.0, 1.5, 1.75]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

try:
    from models.inference.arrays import NP, Params, mlp, mlp_init, torch_ops
except ImportError:  # inside an exported FMU, where arrays.py sits beside this file
    from arrays import NP, Params, mlp, mlp_init, torch_ops  # type: ignore[no-redef]

__all__ = ["NP", "Params", "Structure", "Arx", "GreyBox", "NeuralSS", "Runner", "make_structure", "simulate",
           "torch_ops"]


@dataclass(frozen=True)
class Structure:
    """Base of the structures: sizes and configuration; subclasses hold the maths.

    ``drive(P, u, dt)`` precomputes everything that depends on the inputs and
    parameters alone (``series`` with the leading shape of ``u``, and
    ``consts``), so the recurrence ``step(P, x, series_k, consts)`` stays a
    handful of operations and ``output(P, x, u)`` runs on whole trajectories.
    """

    nu: int
    ny: int
    config: dict[str, Any] = field(default_factory=dict)
    kind = "base"

    @property
    def label(self) -> str:
        """Short human-readable name, e.g. ``arx(na=2,nb=2)``."""
        inner = ",".join(f"{k}={v}" for k, v in sorted(self.config.items()))
        return f"{self.kind}({inner})"

    def init_params(self, rng: np.random.Generator, dt: float, horizon_s: float) -> Params:
        raise NotImplementedError

    def encode(self, P: Params, y0: Any, u0: Any, ops: Any = NP) -> Any:
        raise NotImplementedError

    def init_state(self, P: Params, y0: Any, u0: Any, ops: Any = NP) -> Any:
        """Initial state from ``y(0)``, ``u(0)``: the learned encoder's guess, then Gauss-Newton steps.

        Each step applies the minimum-norm correction
        ``δ = Jᵀ (J Jᵀ + λI)⁻¹ (y(0) − output(x, u(0)))`` (``J`` by finite
        differences), so the model's first output matches the measured one.
        """
        x = self.encode(P, y0, u0, ops)
        eps, n = 1e-3, x.shape[-1]
        basis = ops.eye(n) * eps
        for _ in range(self.GN_STEPS):
            f0 = self.features(P, u0, ops)
            y = self.output(P, x, f0, ops)
            J = ops.stack([(self.output(P, x + basis[i], f0, ops) - y) / eps for i in range(n)])  # (B, nx, ny)
            Jt = J.transpose(1, 2) if hasattr(J, "detach") else J.transpose(0, 2, 1)
            gram = Jt @ J + 1e-3 * ops.eye(self.ny)
            x = x + (J @ ops.solve(gram, (y0 - y)[..., None]))[..., 0]
        return x

    GN_STEPS = 2

    def features(self, P: Params, u: Any, ops: Any = NP) -> Any:
        """Per-sample input features ``f`` that ``drive`` and ``output`` are linear in or read (default: ``u``).

        Averaging ``f`` over blocks of samples is how training simulates at a coarser step.
        """
        return u

    def drive(self, P: Params, f: Any, dt: float, ops: Any = NP) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        raise NotImplementedError

    def step(self, P: Params, x: Any, d: tuple[Any, ...], consts: tuple[Any, ...], ops: Any = NP) -> Any:
        raise NotImplementedError

    def output(self, P: Params, x: Any, u: Any, ops: Any = NP) -> Any:
        raise NotImplementedError

    def advance(self, P: Params, x: Any, u: Any, y: Any, dt: float, ops: Any = NP) -> Any:
        """The state one step later given this step's input ``u`` and output ``y`` (step-by-step use)."""
        series, consts = self.drive(P, self.features(P, u, ops), dt, ops)
        return self.step(P, x, series, consts, ops)


class Arx(Structure):
    """Linear MIMO ARX: ``y_k = Σ A_i y_{k-i} + Σ_{j<nb} B_j u_{k-j} + c``.

    The state is the past ``na`` outputs and ``nb - 1`` inputs; free run starts
    from ``y(0)`` and ``u(0)`` repeated into the past (a system at rest).
    """

    kind = "arx"

    GN_STEPS = 0

    def encode(self, P: Params, y0: Any, u0: Any, ops: Any = NP) -> Any:
        na, nb = self.config["na"], self.config["nb"]
        return ops.cat([y0] * na + [u0] * (nb - 1))

    def output(self, P: Params, x: Any, u: Any, ops: Any = NP) -> Any:
        n_y = self.config["na"] * self.ny
        return x[:, :n_y] @ P["A"] + ops.cat([u, x[:, n_y:]]) @ P["B"] + P["c"]

    def advance(self, P: Params, x: Any, u: Any, y: Any, dt: float, ops: Any = NP) -> Any:
        n_y, nb = self.config["na"] * self.ny, self.config["nb"]
        parts = [y, x[:, :n_y - self.ny]]
        if nb > 1:
            parts += [u, x[:, n_y:n_y + (nb - 2) * self.nu]]
        return ops.cat(parts)


class GreyBox(Structure):
    """Continuous-time grey-box state space assembled from physical blocks.

    Blocks (switched by ``config``), all in normalised units. Inputs are split
    by :func:`~models.inference.fitting.input_constants` into *flows*
    (``const_flow``: inputs that change sign or rest at zero, such as a
    current, a power or a speed) and *levels* (``ℓ``: the others, such as an
    ambient temperature). A flow enters through its value ``w`` from its
    physical zero, as the flow features ψ = [w, w², |w|]; levels enter only
    linearly, so the model is linear in every level input and extrapolates
    beyond the levels seen in training (a hotter ambient) by construction:

    * ``integrator``: charge counting ``q' = a·w`` of the flows, seen through
      one monotone piecewise-linear spline per output (e.g. an OCV(SoC) curve),
      continued linearly beyond its end knots;
    * ``lags`` first-order lags / RC branches ``v' = (r(θ)·B ψ + L ℓ − v)/τ``;
    * ``thermal``: a lumped heat balance (its node *is* the first temperature
      output when outputs are declared in a temperature unit: those outputs
      follow it with the fixed gain ``const_th_E``, see
      :func:`~models.inference.fitting.physical_init`) ``θ' = G·(e·ℓ + e0 − θ) + g·r(θ)·h·ψ``
      with Newton cooling to a target linear in the levels (the ambient), losses
      ∝ w² and |w|, and a conductance ``G = g·(1 + |γ|·|w|)`` that forced flow
      (air speed) may raise; its temperature scales the losses and resistances
      with the linearised Arrhenius factor ``r(θ) = exp(−κ θ)``;
    * ``residual``: a small tanh network on (state, input), its input clipped
      to the range seen in training (constant beyond it), added to the output.

    ``y = s(q) + C v + r(θ)·D ψ + F ℓ + E θ + b (+ residual)``. Lags and the heat
    balance are integrated exactly over the step with its inputs held (stable for
    any ``dt``). The initial state comes from a linear map plus a small network of
    ``(y(0), u(0))`` (network inputs clipped to the training range), trained with
    the rest, then Gauss-Newton steps.
    """

    kind = "greybox"
    # gains under an L1 penalty: each block uses few inputs and feeds few outputs
    SPARSE = ("lag_B", "lag_L", "th_h", "th_gam", "th_kappa", "D", "F", "lag_C", "spl_c", "th_E")
    KNOTS = np.linspace(-3.0, 3.0, 13)
    GN_STEPS = 4

    @property
    def nx(self) -> int:
        c = self.config
        return int(c["integrator"]) + c["lags"] + int(c["thermal"])

    def init_params(self, rng: np.random.Generator, dt: float, horizon_s: float) -> Params:
        c, nu, ny, nx = self.config, self.nu, self.ny, self.nx
        nf, k = 3 * nu, len(self.KNOTS) - 1
        P: Params = {"enc_W": rng.normal(0, 0.1, (ny + nu, nx)), "enc_b": np.zeros(nx),
                     "const_u_zero": np.zeros(nu), "const_flow": np.ones(nu),
                     "const_lo": np.full(ny + nu, -3.0), "const_hi": np.full(ny + nu, 3.0),
                     **mlp_init(rng, "enc_", ny + nu, 16, nx),
                     "D": np.zeros((nf, ny)), "F": np.zeros((nu, ny)), "b": np.zeros(ny)}
        if c["integrator"]:
            P |= {"int_a": np.ones(nu), "const_rate": np.full(1, 1.0 / horizon_s),
                  "spl_w": np.zeros((ny, k)), "const_knots": self.KNOTS[:-1].copy(),
                  "spl_end": np.zeros((ny, 2)), "spl_c": rng.normal(0, 0.1, ny)}
        if c["lags"]:
            # RC branches start driven by the flows themselves, losses (w², |w|) start at zero
            P |= {"lag_B": np.r_[rng.normal(0, 0.3, (nu, c["lags"])), np.zeros((nf - nu, c["lags"]))],
                  "lag_L": np.zeros((nu, c["lags"])),
                  "lag_C": rng.normal(0, 0.1, (c["lags"], ny)),
                  "lag_logtau": np.linspace(np.log(10 * dt), np.log(horizon_s / 4), c["lags"])}
        if c["thermal"]:
            P |= {"th_h": rng.normal(0, 0.1, nf), "th_e": rng.normal(0, 0.1, nu), "th_e0": np.zeros(1),
                  "th_gam": np.full(nu, 0.05), "th_logg": np.full(1, -np.log(horizon_s / 4)),
                  "th_kappa": np.zeros(1), "th_E": rng.normal(0, 0.5, ny),
                  "const_th_fixed": np.zeros(ny), "const_th_E": np.zeros(ny)}
        if c["residual"]:
            P |= mlp_init(rng, "res_", nx + nu, c["residual"], ny)
        return P

    def init_state(self, P: Params, y0: Any, u0: Any, ops: Any = NP) -> Any:
        """Initial state from ``y(0)``, ``u(0)``: lags at rest, the outputs matched by charge and temperature first.

        The lag / RC states start at their steady state for ``u(0)`` (a system
        settled under its present inputs: the best guess one sample allows, exact
        at rest); charge ``q`` and temperature ``θ`` start from the encoder's
        guess. Gauss-Newton steps then apply the weighted minimum-norm correction
        ``δ = W J (Jᵀ W J + λI)⁻¹ (y(0) − output(x, u(0)))`` (``J = ∂y/∂x`` by
        finite differences) with weight 1 on ``q`` and ``θ`` and 10⁻⁴ on the lags,
        so the model's first output matches the measured one, explained by the
        slow conserved states where they can explain it (lags take the rest).
        """
        c, nu = self.config, self.nu
        i, n, nx = int(c["integrator"]), c["lags"], self.nx
        f0 = self.features(P, u0, ops)
        x = self.encode(P, y0, u0, ops)
        w = np.ones(nx)
        if n and (i or c["thermal"]):
            w[i:i + n] = 1e-4
            r = self._r(P, x[..., -1:], ops) if c["thermal"] else 1.0
            level = (f0[..., :nu] * (1.0 - P["const_flow"])) @ P["lag_L"]
            x = ops.cat([x[..., :i], (f0[..., nu:] @ P["lag_B"]) * r + level, x[..., i + n:]])
        eps, basis = 1e-3, ops.eye(nx) * 1e-3
        for _ in range(self.GN_STEPS):
            y = self.output(P, x, f0, ops)
            J = ops.stack([(self.output(P, x + basis[k], f0, ops) - y) / eps for k in range(nx)])  # (B, nx, ny)
            Jt = J.transpose(1, 2) if hasattr(J, "detach") else J.transpose(0, 2, 1)
            WJ = J * ops.const(w)[:, None]
            x = x + (WJ @ ops.solve(Jt @ WJ + 1e-5 * ops.eye(self.ny), (y0 - y)[..., None]))[..., 0]
        return x

    def _r(self, P: Params, th: Any, ops: Any) -> Any:
        return ops.exp(ops.clip(-P["th_kappa"] * th, -3.0, 3.0))

    def _clip(self, P: Params, z: Any, part: slice, ops: Any) -> Any:
        """``z`` clipped to the training range (``const_lo``/``const_hi``, normalised) of channels ``part``."""
        return ops.clip(z, P["const_lo"][part], P["const_hi"][part])

    def encode(self, P: Params, y0: Any, u0: Any, ops: Any = NP) -> Any:
        z = ops.cat([y0, u0])
        return z @ P["enc_W"] + P["enc_b"] + mlp(ops, P, "enc_", self._clip(P, z, slice(None), ops))

    def features(self, P: Params, u: Any, ops: Any = NP) -> Any:
        """``[u, w, w², |w|]`` (block averages of these are what a coarser step sees)."""
        w = (u - P["const_u_zero"]) * P["const_flow"]
        return ops.cat([u, w, w * w, ops.abs(w)])

    def drive(self, P: Params, f: Any, dt: float, ops: Any = NP) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """``x_next = a ⊙ x + lin + r(θ) ⊙ rel``: per-step ``lin``, ``rel`` and decays ``a``."""
        c, nu = self.config, self.nu
        u, psi = f[..., :nu], f[..., nu:]
        level = u * (1.0 - P["const_flow"])
        zero = u[..., :1] * 0.0
        lin, rel, decay = [], [], []
        if c["integrator"]:
            lin.append(dt * (psi[..., :nu] @ P["int_a"][:, None]) * P["const_rate"])
            rel.append(zero)
            decay.append(zero + 1.0)
        if c["lags"]:
            a = ops.exp(-dt * ops.exp(-P["lag_logtau"])) + zero
            lin.append((level @ P["lag_L"]) * (1.0 - a))
            rel.append((psi @ P["lag_B"]) * (1.0 - a))
            decay.append(a)
        if c["thermal"]:
            boost = 1.0 + psi[..., 2 * nu:] @ ops.abs(P["th_gam"])[:, None]  # G / g
            a = ops.exp(-dt * ops.exp(P["th_logg"]) * boost)
            lin.append((level @ P["th_e"][:, None] + P["th_e0"]) * (1.0 - a))
            rel.append((psi @ P["th_h"][:, None]) * (1.0 - a) / boost)
            decay.append(a)
        return (ops.cat(lin), ops.cat(rel), ops.cat(decay)), ()

    def step(self, P: Params, x: Any, d: tuple[Any, ...], consts: tuple[Any, ...], ops: Any = NP) -> Any:
        lin, rel, a = d
        if self.config["thermal"]:
            rel = rel * self._r(P, x[..., -1:], ops)
        return a * x + lin + rel

    def output(self, P: Params, x: Any, f: Any, ops: Any = NP) -> Any:
        c, nu, i, n = self.config, self.nu, int(self.config["integrator"]), self.config["lags"]
        u, psi = f[..., :nu], f[..., nu:]
        th = x[..., -1:] if c["thermal"] else None
        r = self._r(P, th, ops) if c["thermal"] else 1.0
        y = (psi @ P["D"]) * r + (u * (1.0 - P["const_flow"])) @ P["F"] + P["b"]
        if c["integrator"]:
            q = x[..., :1]
            lo, hi, width = float(self.KNOTS[0]), float(self.KNOTS[-1]), float(self.KNOTS[1] - self.KNOTS[0])
            seg = ops.clip(ops.clip(q, lo, hi) - P["const_knots"], 0.0, width)
            ends = ops.cat([ops.clip(q - lo, None, 0.0), ops.clip(q - hi, 0.0, None)])
            mono = seg @ ops.softplus(P["spl_w"]).T + ends @ ops.softplus(P["spl_end"]).T
            y = y + mono * P["spl_c"]
        if n:
            y = y + x[..., i:i + n] @ P["lag_C"]
        if th is not None:  # outputs declared as temperatures follow the node with a fixed gain
            fixed = P["const_th_fixed"]
            y = y + th * (fixed * P["const_th_E"] + (1.0 - fixed) * P["th_E"])
        if c["residual"]:
            y = y + mlp(ops, P, "res_", ops.cat([x, self._clip(P, u, slice(self.ny, None), ops)]))
        return y


class NeuralSS(Structure):
    """Generic neural state space: encoder, state network and output network.

    ``x' = λ ⊙ (f(x, u) − x)`` (a learned nonlinear relaxation, integrated
    with the exact exponential step for the rates λ > 0), ``y = C x + D u +
    h(x, u) + b``, ``x(0) = e(y(0), u(0))``; ``f``, ``h``, ``e`` are one-hidden-layer
    tanh networks.
    """

    kind = "nss"

    def init_params(self, rng: np.random.Generator, dt: float, horizon_s: float) -> Params:
        nu, ny, nx, h = self.nu, self.ny, self.config["nx"], self.config["hidden"]
        return {**mlp_init(rng, "enc_", ny + nu, h, nx), "enc_W": rng.normal(0, 0.1, (ny + nu, nx)),
                "f_Wx": rng.normal(0, 1 / np.sqrt(nx), (nx, h)), "f_Wu": rng.normal(0, 1 / np.sqrt(nu), (nu, h)),
                "f_b1": np.zeros(h), "f_W2": rng.normal(0, 0.3 / np.sqrt(h), (h, nx)), "f_b2": np.zeros(nx),
                "lograte": -np.linspace(np.log(5 * dt), np.log(horizon_s / 2), nx),
                **mlp_init(rng, "h_", nx + nu, h, ny), "C": rng.normal(0, 0.3, (nx, ny)),
                "D": np.zeros((nu, ny)), "b": np.zeros(ny)}

    def encode(self, P: Params, y0: Any, u0: Any, ops: Any = NP) -> Any:
        z = ops.cat([y0, u0])
        return z @ P["enc_W"] + mlp(ops, P, "enc_", z)

    def drive(self, P: Params, u: Any, dt: float, ops: Any = NP) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        a = ops.exp(-dt * ops.exp(P["lograte"]))
        return (u @ P["f_Wu"] + P["f_b1"],), (a, P["f_W2"] * (1.0 - a), P["f_b2"] * (1.0 - a))

    def step(self, P: Params, x: Any, d: tuple[Any, ...], consts: tuple[Any, ...], ops: Any = NP) -> Any:
        a, w2, b2 = consts
        return a * x + ops.tanh(x @ P["f_Wx"] + d[0]) @ w2 + b2

    def output(self, P: Params, x: Any, u: Any, ops: Any = NP) -> Any:
        return x @ P["C"] + u @ P["D"] + mlp(ops, P, "h_", ops.cat([x, u])) + P["b"]


STRUCTURES: dict[str, type[Structure]] = {s.kind: s for s in (Arx, GreyBox, NeuralSS)}


def make_structure(kind: str, config: dict[str, Any], nu: int, ny: int) -> Structure:
    """The structure ``kind`` (``arx``, ``greybox`` or ``nss``) for ``nu`` inputs and ``ny`` outputs."""
    return STRUCTURES[kind](nu=nu, ny=ny, config=dict(config))


def simulate(s: Structure, P: Params, u: Any, y0: Any, dt: float, ops: Any = NP, f: Any = None) -> Any:
    """Free run: outputs ``(B, T, ny)`` from inputs ``(B, T, nu)`` and the first outputs ``y0`` ``(B, ny)``.

    ``f`` replaces ``features(u)`` (training passes block-averaged features).
    """
    x = s.init_state(P, y0, u[:, 0], ops)
    if isinstance(s, Arx):
        ys = []
        for k in range(u.shape[1]):
            ys.append(s.output(P, x, u[:, k], ops))
            x = s.advance(P, x, u[:, k], ys[-1], dt, ops)
        return ops.stack(ys)
    f = s.features(P, u, ops) if f is None else f
    (series, consts), xs = s.drive(P, f, dt, ops), []
    for dk in zip(*(ops.unbind(a) for a in series)):
        xs.append(x)
        x = s.step(P, x, dk, consts, ops)
    return s.output(P, ops.stack(xs), f, ops)


class Runner:
    """Step-by-step execution in physical units, batch of one (assemblies and FMUs; numpy only).

    ``start(y0, u0)``, then per step ``y = output(u)`` and ``advance(u, y)``;
    the same sequence as :func:`simulate`, so the outputs are identical.
    """

    def __init__(self, s: Structure, P: Params, dt: float, u_mean: Any, u_std: Any, y_mean: Any, y_std: Any) -> None:
        self.s, self.P, self.dt = s, P, dt
        self.u_mean, self.u_std, self.y_mean, self.y_std = u_mean, u_std, y_mean, y_std
        self.x: Any = None

    def _u(self, u: Any) -> Any:
        return ((np.asarray(u, float) - self.u_mean) / self.u_std)[None]

    def start(self, y0: Any, u0: Any) -> None:
        """Initial state from the first output and input sample."""
        self.x = self.s.init_state(self.P, ((np.asarray(y0, float) - self.y_mean) / self.y_std)[None], self._u(u0))

    def output(self, u: Any) -> Any:
        """Outputs at the current step for this step's inputs."""
        un = self._u(u)
        return self.s.output(self.P, self.x, self.s.features(self.P, un))[0] * self.y_std + self.y_mean

    def advance(self, u: Any, y: Any) -> None:
        """Move one step ``dt`` on, given this step's inputs and outputs."""
        yn = ((np.asarray(y, float) - self.y_mean) / self.y_std)[None]
        self.x = self.s.advance(self.P, self.x, self._u(u), yn, self.dt)
