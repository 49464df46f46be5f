"""``fleet infer``: infer a twin from a data file, or run an inferred twin on new data.

The arguments and the data file are decoded here and in :mod:`models.inference.data`
before anything is written; every bad value is an :class:`InferenceError` naming it.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import numpy as np

from models.inference.errors import InferenceError


def _names(flag: str, text: str | None) -> list[str]:
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    if not names:
        raise InferenceError(f"{flag} {text!r}: give one or more comma-separated column names")
    return names


def _budget(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InferenceError(f"--budget-s {text!r}: not a number of seconds") from None
    if not (math.isfinite(value) and 1.0 <= value <= 86_400.0):
        raise InferenceError(f"--budget-s {text}: must be between 1 and 86400 seconds")
    return value


def parser() -> argparse.ArgumentParser:
    """Arguments of ``fleet infer``."""
    p = argparse.ArgumentParser(prog="fleet infer", description=__doc__.splitlines()[0])
    p.add_argument("--data", help="CSV or Parquet (needs pyarrow) file, one row per sample")
    p.add_argument("--inputs", help="comma-separated input columns (with --predict: taken from the artifact)")
    p.add_argument("--outputs", help="comma-separated output columns (with --predict: taken from the artifact)")
    p.add_argument("--segment-column", default=None, help="column naming independent experiments")
    p.add_argument("--time-column", default="time_s", help="time in seconds (default time_s)")
    p.add_argument("--validation", default=None, help="comma-separated validation segments (default: a quarter, the segments reaching "
                   "furthest in each input first)")
    p.add_argument("--budget-s", default="480", help="training time budget in seconds (default 480)")
    p.add_argument("--seed", default="0", help="random seed (default 0)")
    p.add_argument("--predict", default=None, metavar="ARTIFACT", help="run this twin on --data instead of inferring")
    p.add_argument("--export-fmu", default=None, metavar="ARTIFACT",
                   help="export this twin as an FMI 2.0 co-simulation FMU to --out (a .fmu file)")
    p.add_argument("--out", required=True,
                   help="artifact parent directory; with --predict the output CSV; with --export-fmu the .fmu file")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def infer(args: argparse.Namespace) -> Path:
    """Decode, fit and write the artifact; returns its path."""
    from models.inference.artifact import save
    from models.inference.data import decode
    from models.inference.engine import TwinInference

    budget = _budget(args.budget_s)
    if not args.seed.isdigit():
        raise InferenceError(f"--seed {args.seed!r}: must be a non-negative integer")
    data = decode(Path(args.data), _names("--inputs", args.inputs), _names("--outputs", args.outputs),
                  args.time_column, args.segment_column)
    validation = _names("--validation", args.validation) if args.validation is not None else None
    log = None if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    est = TwinInference(budget_s=budget, seed=int(args.seed), log=log).fit(data, validation)
    return save(est, Path(args.out))


def predict(args: argparse.Namespace) -> int:
    """Free-run prediction of an artifact on new data; writes a CSV, returns the out-of-range row count."""
    from models.inference.artifact import load
    from models.inference.data import decode

    twin = load(Path(args.predict))
    ins, outs = [p.name for p in twin.inputs], [p.name for p in twin.outputs]
    for flag, given, expected in (("--inputs", args.inputs, ins), ("--outputs", args.outputs, outs)):
        if given is not None and _names(flag, given) != expected:
            raise InferenceError(f"{flag} {given!r}: the artifact was trained on {','.join(expected)}")
    data = decode(Path(args.data), ins, outs, args.time_column, args.segment_column, dt=twin.dt,
                  for_prediction=True)
    preds = twin.predict_many([s.u for s in data.segments], [s.y[0] for s in data.segments])
    out = Path(args.out)
    if out.is_dir():
        raise InferenceError(f"--out {out}: is a directory; give the CSV file to write")
    n_bad = 0
    with out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["row", "segment", args.time_column, *ins, *[f"{o}_pred" for o in outs], "out_of_range"])
        for seg, pred in zip(data.segments, preds):
            u_raw = np.stack([np.interp(seg.t_raw, seg.t, seg.u[:, j]) for j in range(len(ins))], 1)
            y_raw = np.stack([np.interp(seg.t_raw, seg.t, pred[:, j]) for j in range(len(outs))], 1)
            flags = twin.out_of_range(u_raw)
            n_bad += sum(1 for f in flags if f)
            for r, t, u, y, f in zip(seg.rows, seg.t_raw, u_raw, y_raw, flags):
                w.writerow([int(r), seg.name, f"{t:.6g}", *[f"{v:.6g}" for v in u], *[f"{v:.6g}" for v in y], f])
    return n_bad


def main(argv: list[str] | None = None) -> None:
    """Entry point (``fleet infer ...`` or ``python -m models.inference.cli ...``)."""
    args = parser().parse_args(argv)
    try:
        if args.export_fmu:
            from models.inference.fmu import export_fmu

            print(f"wrote {export_fmu(Path(args.export_fmu), Path(args.out))}")
            return
        if not args.data:
            raise InferenceError("--data PATH is required (the table to infer from or predict on)")
        if args.predict:
            n_bad = predict(args)
            print(f"wrote {args.out}")
            if n_bad:
                print(f"warning: {n_bad} rows have inputs outside the range seen in training "
                      "(column out_of_range names them)", file=sys.stderr)
        else:
            print(f"wrote {infer(args)}")
    except InferenceError as exc:
        print(f"fleet infer: error: {exc}; nothing was written", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
