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

Params = dict[str, Any]


class _NumpyOps:
    """Array functions the structures use, numpy flavour."""

    exp, tanh, abs, sign = np.exp, np.tanh, np.abs, np.sign

    @staticmethod
    def clip(x: Any, lo: float | None, hi: float | None) -> Any:
        return np.clip(x, lo, hi)

    @staticmethod
    def cat(xs: list[Any]) -> Any:
        return np.concatenate(xs, axis=-1)

    @staticmethod
    def stack(xs: list[Any]) -> Any:
        return np.stack(xs, axis=1)

    @staticmethod
    def softplus(x: Any) -> Any:
        return np.logaddexp(0.0, x)

    @staticmethod
    def unbind(x: Any) -> Any:
        return list(np.moveaxis(x, 1, 0))

    solve, eye = staticmethod(np.linalg.solve), staticmethod(np.eye)


NP = _NumpyOps()


def torch_ops() -> Any:
    """The torch flavour of :data:`NP` (imported lazily: serving never needs torch)."""
    import torch

    class _TorchOps:
        exp, tanh, abs, sign = torch.exp, torch.tanh, torch.abs, torch.sign

        @staticmethod
        def clip(x: Any, lo: float | None, hi: float | None) -> Any:
            return torch.clamp(x, lo, hi)

        @staticmethod
        def cat(xs: list[Any]) -> Any:
            return torch.cat(xs, dim=-1)

        @staticmethod
        def stack(xs: list[Any]) -> Any:
            return torch.stack(xs, dim=1)

        softplus = staticmethod(torch.nn.functional.softplus)

        @staticmethod
        def unbind(x: Any) -> Any:
            return torch.unbind(x, dim=1)

        solve = staticmethod(torch.linalg.solve)

        @staticmethod
        def eye(n: int) -> Any:
            return torch.eye(n, dtype=torch.float64)

    return _TorchOps()


def _mlp(ops: Any, P: Params, prefix: str, z: Any) -> Any:
    return ops.tanh(z @ P[f"{prefix}W1"] + P[f"{prefix}b1"]) @ P[f"{prefix}W2"]


def _mlp_init(rng: np.random.Generator, prefix: str, n_in: int, hidden: int, n_out: int) -> Params:
    return {f"{prefix}W1": rng.normal(0, 1 / np.sqrt(n_in), (n_in, hidden)), f"{prefix}b1": np.zeros(hidden),
            f"{prefix}W2": np.zeros((hidden, n_out))}


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

    Blocks (switched by ``config``), all in normalised units. *Flow* inputs
    (``const_flow``: inputs that change sign or rest at zero, such as a
    current or a power; not levels such as temperatures) enter through their
    value ``w`` from their physical zero; the features are φ(u) = [u, w², |w|]:

    * ``integrator``: charge counting ``q' = a·w`` of the flows, seen through
      one monotone piecewise-linear spline per output (e.g. an OCV(SoC) curve);
    * ``lags`` first-order lags / RC branches ``v' = (r(θ)·B φ(u) − v)/τ``;
    * ``thermal``: a lumped heat balance ``θ' = g·(e·u + e0 − θ) + g·r(θ)·h·φ(u)``
      (Newton cooling to an ambient drawn from the inputs, losses ∝ I² and
      |I|), whose temperature scales resistances with the linearised Arrhenius
      factor ``r(θ) = exp(−κ θ)``;
    * ``residual``: a small tanh network on (state, input) added to the output.

    ``y = s(q) + C v + r(θ)·D φ(u) + E θ + b (+ residual)``. Lags and the heat
    balance are integrated exactly over the step (stable for any ``dt``).
    The initial state comes from a linear map plus a small network of
    ``(y(0), u(0))``, trained with the rest.
    """

    kind = "greybox"
    # gains under an L1 penalty: each block uses few inputs and feeds few outputs
    SPARSE = ("int_a", "lag_B", "th_h", "D", "lag_C", "spl_c", "th_E")
    KNOTS = np.linspace(-3.0, 3.0, 13)

    @property
    def nx(self) -> int:
        c = self.config
        return int(c["integrator"]) + c["lags"] + int(c["thermal"])

    def init_params(self, rng: np.random.Generator, dt: float, horizon_s: float) -> Params:
        c, nu, ny, nx = self.config, self.nu, self.ny, self.nx
        nf, k = 3 * nu, len(self.KNOTS) - 1
        P: Params = {"enc_W": rng.normal(0, 0.1, (ny + nu, nx)), "enc_b": np.zeros(nx),
                     "const_u_zero": np.zeros(nu), "const_flow": np.ones(nu),
                     **_mlp_init(rng, "enc_", ny + nu, 16, nx),
                     "D": np.zeros((nf, ny)), "b": np.zeros(ny)}
        if c["integrator"]:
            P |= {"int_a": rng.normal(0, 1.0, nu), "const_rate": np.full(1, 1.0 / horizon_s),
                  "spl_w": np.zeros((ny, k)), "const_knots": self.KNOTS[:-1].copy(),
                  "spl_end": np.zeros((ny, 2)), "spl_c": rng.normal(0, 0.1, ny)}
        if c["lags"]:
            P |= {"lag_B": rng.normal(0, 0.1, (nf, c["lags"])), "lag_C": rng.normal(0, 0.1, (c["lags"], ny)),
                  "lag_logtau": np.linspace(np.log(10 * dt), np.log(horizon_s / 4), c["lags"])}
        if c["thermal"]:
            P |= {"th_h": rng.normal(0, 0.1, nf), "th_e": rng.normal(0, 0.1, nu), "th_e0": np.zeros(1),
                  "th_logg": np.full(1, -np.log(horizon_s / 4)), "th_kappa": np.zeros(1),
                  "th_E": rng.normal(0, 0.5, ny)}
        if c["residual"]:
            P |= _mlp_init(rng, "res_", nx + nu, c["residual"], ny)
        return P

    def _r(self, P: Params, th: Any, ops: Any) -> Any:
        return ops.exp(ops.clip(-P["th_kappa"] * th, -3.0, 3.0))

    def encode(self, P: Params, y0: Any, u0: Any, ops: Any = NP) -> Any:
        z = ops.cat([y0, u0])
        return z @ P["enc_W"] + P["enc_b"] + _mlp(ops, P, "enc_", z)

    def features(self, P: Params, u: Any, ops: Any = NP) -> Any:
        w = (u - P["const_u_zero"]) * P["const_flow"]
        return ops.cat([u, w * w, ops.abs(w)])

    def drive(self, P: Params, f: Any, dt: float, ops: Any = NP) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """``x_next = a ⊙ x + lin + r(θ) ⊙ rel``: per-step ``lin``/``rel`` and the decays ``a``."""
        c, phi, lin, rel, decay = self.config, f, [], [], []
        u = f[..., :self.nu]
        zero = u[..., :1] * 0.0
        if c["integrator"]:
            flow = (u - P["const_u_zero"]) * P["const_flow"]  # linear in u: block averages commute
            lin.append(dt * (flow @ P["int_a"][:, None]) * P["const_rate"])
            rel.append(zero)
            decay.append(P["const_rate"] * 0.0 + 1.0)
        if c["lags"]:
            a = ops.exp(-dt * ops.exp(-P["lag_logtau"]))
            lin.append(zero * a)
            rel.append((phi @ P["lag_B"]) * (1.0 - a))
            decay.append(a)
        if c["thermal"]:
            a = ops.exp(-dt * ops.exp(P["th_logg"]))
            lin.append((u @ P["th_e"][:, None] + P["th_e0"]) * (1.0 - a))
            rel.append((phi @ P["th_h"][:, None]) * (1.0 - a))
            decay.append(a)
        return (ops.cat(lin), ops.cat(rel)), (ops.cat(decay),)

    def step(self, P: Params, x: Any, d: tuple[Any, ...], consts: tuple[Any, ...], ops: Any = NP) -> Any:
        lin, rel = d
        if self.config["thermal"]:
            rel = rel * self._r(P, x[..., -1:], ops)
        return consts[0] * x + lin + rel

    def output(self, P: Params, x: Any, u: Any, ops: Any = NP) -> Any:
        c, i, n = self.config, int(self.config["integrator"]), self.config["lags"]
        th = x[..., -1:] if c["thermal"] else None
        r = self._r(P, th, ops) if c["thermal"] else 1.0
        y = (u @ P["D"]) * r + P["b"]
        if c["integrator"]:
            q = x[..., :1]
            lo, hi, width = float(self.KNOTS[0]), float(self.KNOTS[-1]), float(self.KNOTS[1] - self.KNOTS[0])
            seg = ops.clip(ops.clip(q, lo, hi) - P["const_knots"], 0.0, width)
            ends = ops.cat([ops.clip(q - lo, None, 0.0), ops.clip(q - hi, 0.0, None)])
            mono = seg @ ops.softplus(P["spl_w"]).T + ends @ ops.softplus(P["spl_end"]).T
            y = y + mono * P["spl_c"]
        if n:
            y = y + x[..., i:i + n] @ P["lag_C"]
        if th is not None:
            y = y + th * P["th_E"]
        if c["residual"]:
            y = y + _mlp(ops, P, "res_", ops.cat([x, u[..., :self.nu]]))
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
        return {**_mlp_init(rng, "enc_", ny + nu, h, nx), "enc_W": rng.normal(0, 0.1, (ny + nu, nx)),
                "f_Wx": rng.normal(0, 1 / np.sqrt(nx), (nx, h)), "f_Wu": rng.normal(0, 1 / np.sqrt(nu), (nu, h)),
                "f_b1": np.zeros(h), "f_W2": rng.normal(0, 0.3 / np.sqrt(h), (h, nx)), "f_b2": np.zeros(nx),
                "lograte": -np.linspace(np.log(5 * dt), np.log(horizon_s / 2), nx),
                **_mlp_init(rng, "h_", nx + nu, h, ny), "C": rng.normal(0, 0.3, (nx, ny)),
                "D": np.zeros((nu, ny)), "b": np.zeros(ny)}

    def encode(self, P: Params, y0: Any, u0: Any, ops: Any = NP) -> Any:
        z = ops.cat([y0, u0])
        return z @ P["enc_W"] + _mlp(ops, P, "enc_", z)

    def drive(self, P: Params, u: Any, dt: float, ops: Any = NP) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        a = ops.exp(-dt * ops.exp(P["lograte"]))
        return (u @ P["f_Wu"] + P["f_b1"],), (a, P["f_W2"] * (1.0 - a), P["f_b2"] * (1.0 - a))

    def step(self, P: Params, x: Any, d: tuple[Any, ...], consts: tuple[Any, ...], ops: Any = NP) -> Any:
        a, w2, b2 = consts
        return a * x + ops.tanh(x @ P["f_Wx"] + d[0]) @ w2 + b2

    def output(self, P: Params, x: Any, u: Any, ops: Any = NP) -> Any:
        return x @ P["C"] + u @ P["D"] + _mlp(ops, P, "h_", ops.cat([x, u])) + P["b"]


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
