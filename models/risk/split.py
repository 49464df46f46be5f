"""Train / calibration / evaluation split: by vehicle AND by time.

* Vehicles are split by a salted hash of the VIN into group **A** (train + calibration)
  and held-out group **B** (evaluation); no vehicle is in both, and the assignment of a
  VIN does not depend on which other VINs exist.
* Time: ``train_end_ms`` cuts the data window at ``train_fraction``. Training rows are
  A-rows whose whole label horizon lies before the cut (``T + H <= train_end``), so
  training never sees a failure after the cut. Calibration rows are A-rows strictly
  after the cut (``T > train_end``): a later window, disjoint in labels too.
* Evaluation rows are all usable B-rows; the report also shows the out-of-time subset
  (B-rows after the cut).

>>> s = make_split(["V1", "V2", "V3", "V4"], 0, 100 * 86_400_000, horizon_days=10, eval_fraction=0.5)
>>> sorted(s.train_vins | s.eval_vins) == ["V1", "V2", "V3", "V4"] and not (s.train_vins & s.eval_vins)
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

DAY_MS = 86_400_000
NONE, TRAIN, CALIB, EVAL = 0, 1, 2, 3
ROLE_NAMES = {NONE: "unused", TRAIN: "train", CALIB: "calibration", EVAL: "evaluation"}


def vin_fraction(vin: str, salt: str = "") -> float:
    """A stable pseudo-random number in [0, 1) for a VIN (SHA-256 of salt + VIN)."""
    digest = hashlib.sha256(f"{salt}:{vin}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Split:
    """Who and when: vehicle groups and the time cut (epoch ms)."""

    train_vins: frozenset[str]
    eval_vins: frozenset[str]
    data_start_ms: int
    data_end_ms: int
    train_end_ms: int
    horizon_days: float
    salt: str

    def roles(self, vins: NDArray[np.str_], now_ms: NDArray[np.int64], usable: NDArray[np.bool_]) -> NDArray[np.int8]:
        """Role (TRAIN, CALIB, EVAL or NONE) of each row; ``usable`` comes from the labels."""
        h = int(round(self.horizon_days * DAY_MS))
        in_a = np.isin(vins, np.array(sorted(self.train_vins), dtype=vins.dtype))
        in_b = np.isin(vins, np.array(sorted(self.eval_vins), dtype=vins.dtype))
        out = np.full(len(now_ms), NONE, dtype=np.int8)
        out[usable & in_a & (now_ms + h <= self.train_end_ms)] = TRAIN
        out[usable & in_a & (now_ms > self.train_end_ms)] = CALIB
        out[usable & in_b] = EVAL
        return out

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (VIN lists sorted)."""
        return {"train_vins": sorted(self.train_vins), "eval_vins": sorted(self.eval_vins),
                "data_start_ms": self.data_start_ms, "data_end_ms": self.data_end_ms,
                "train_end_ms": self.train_end_ms, "horizon_days": self.horizon_days, "salt": self.salt}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Split":
        """Inverse of :meth:`to_json`."""
        return cls(frozenset(d["train_vins"]), frozenset(d["eval_vins"]), int(d["data_start_ms"]),
                   int(d["data_end_ms"]), int(d["train_end_ms"]), float(d["horizon_days"]), str(d["salt"]))


def make_split(vins: Iterable[str], data_start_ms: int, data_end_ms: int, *, horizon_days: float,
               eval_fraction: float = 0.4, train_fraction: float = 0.6, salt: str = "risk-v1") -> Split:
    """Split vehicles by hash and time at ``train_fraction`` of the data window."""
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in (0, 1), got {eval_fraction!r}")
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction!r}")
    vins = sorted(set(vins))
    b = frozenset(v for v in vins if vin_fraction(v, salt) < eval_fraction)
    a = frozenset(vins) - b
    train_end = data_start_ms + int((data_end_ms - data_start_ms) * train_fraction)
    return Split(a, b, int(data_start_ms), int(data_end_ms), int(train_end), float(horizon_days), salt)
