"""Array namespaces the model structures run on: numpy (serving, FMU) and torch (training).

The structures call ``ops.exp``, ``ops.cat``, ... on whichever namespace they are
given, so one definition of the maths serves both. This file has no project
imports: an exported FMU carries it beside ``structures.py``.
"""

from __future__ import annotations

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

    @staticmethod
    def const(x: Any) -> Any:
        return np.asarray(x, dtype=float)


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

        @staticmethod
        def const(x: Any) -> Any:
            return torch.as_tensor(x, dtype=torch.float64)

    return _TorchOps()


def mlp(ops: Any, P: Params, prefix: str, z: Any) -> Any:
    """One-hidden-layer tanh network ``W2ᵀ tanh(W1ᵀ z + b1)`` with parameters ``P[prefix + ...]``."""
    return ops.tanh(z @ P[f"{prefix}W1"] + P[f"{prefix}b1"]) @ P[f"{prefix}W2"]


def mlp_init(rng: np.random.Generator, prefix: str, n_in: int, hidden: int, n_out: int) -> Params:
    """Parameters of :func:`mlp`: random first layer, zero output layer (the network starts silent)."""
    return {f"{prefix}W1": rng.normal(0, 1 / np.sqrt(n_in), (n_in, hidden)), f"{prefix}b1": np.zeros(hidden),
            f"{prefix}W2": np.zeros((hidden, n_out))}
