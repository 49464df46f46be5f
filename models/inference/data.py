"""The decoding boundary of the inference engine: tables in, checked uniform segments out.

A table (CSV or Parquet) has one row per sample, a time column (seconds), an
optional segment column (independent experiments) and freely named input and
output columns (a VSS path such as ``Vehicle.Powertrain.TractionBattery.CurrentCurrent``
takes its unit from the VSS catalogue; otherwise a unit suffix such as ``_A``,
``_V``, ``_C``, ``_W`` names it). Rows are numbered from 1, header excluded.

Rules, applied per segment in row order:

* a missing value (empty cell or ``nan``) is filled by linear interpolation in
  time when it belongs to a run of at most :data:`MAX_NAN_RUN` rows; a longer
  run is an error;
* time must increase strictly;
* the sampling step ``dt`` is the median step over all segments; a gap longer
  than :data:`MAX_GAP_STEPS` steps splits the segment into parts named
  ``name/2``, ``name/3``, ...; each part is resampled onto the uniform grid
  ``t0 + k·dt`` by linear interpolation;
* an input or output that is constant over the whole table is an error (its
  effect cannot be identified).

Every violation raises :class:`InferenceError` naming the column, the row and
the value, before anything is written.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.inference.errors import InferenceError

MAX_NAN_RUN = 3
MAX_GAP_STEPS = 10
MIN_SEGMENT_SAMPLES = 10
UNIT_SUFFIXES = {"_A": "A", "_V": "V", "_C": "celsius", "_degC": "celsius", "_K": "K", "_W": "W", "_kW": "kW",
                 "_s": "s", "_mps": "m/s", "_kmh": "km/h", "_pct": "percent", "_Ah": "Ah", "_Pa": "Pa",
                 "_kgps": "kg/s", "_rpm": "rpm", "_Nm": "Nm"}


@dataclass(frozen=True)
class Port:
    """A named signal of a twin with its unit (VSS unit names where a VSS path fits)."""

    name: str
    unit: str


@dataclass(frozen=True)
class Segment:
    """One experiment on the uniform grid: times ``t`` (s), inputs ``u`` (T, nu), outputs ``y`` (T, ny).

    ``t_raw`` and ``rows`` are the original sample times and 1-based table rows
    of the part (for mapping predictions back). Outputs may hold NaN after the
    first sample only when decoded for prediction.
    """

    name: str
    t: np.ndarray
    u: np.ndarray
    y: np.ndarray
    t_raw: np.ndarray
    rows: np.ndarray


@dataclass(frozen=True)
class Dataset:
    """Decoded segments with their ports and common sampling step ``dt`` (s)."""

    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    dt: float
    segments: tuple[Segment, ...]

    @property
    def n_samples(self) -> int:
        """Total number of samples on the uniform grid."""
        return sum(len(s.t) for s in self.segments)

    def subset(self, names: set[str]) -> Dataset:
        """The segments whose names are in ``names`` (parts ``a/2`` belong to ``a``)."""
        keep = tuple(s for s in self.segments if s.name.split("/")[0] in names or s.name in names)
        return Dataset(self.inputs, self.outputs, self.dt, keep)


def unit_of(column: str) -> str:
    """Unit of a column: from the VSS catalogue for a VSS path, else from its suffix, else ``""``.

    >>> unit_of("Vehicle.Powertrain.TractionBattery.CurrentCurrent"), unit_of("temperature_C"), unit_of("x")
    ('A', 'celsius', '')
    """
    from twins.signals import SIGNALS

    for sig in SIGNALS:
        if sig.path == column:
            return sig.unit
    for suffix, unit in sorted(UNIT_SUFFIXES.items(), key=lambda kv: -len(kv[0])):
        if column.endswith(suffix):
            return unit
    return ""


def read_table(path: Path) -> dict[str, list[object]]:
    """Columns of a CSV or Parquet file as lists of raw cells."""
    if not path.is_file():
        raise InferenceError(f"--data {path}: no such file")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise InferenceError(f"--data {path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
        try:
            return pq.read_table(path).to_pydict()
        except Exception as exc:  # pyarrow raises several unrelated types on corrupt files
            raise InferenceError(f"--data {path}: not a readable Parquet file ({exc})") from None
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InferenceError(f"--data {path}: not a readable CSV file ({exc})") from None
    if not rows:
        raise InferenceError(f"--data {path}: the file is empty")
    header = [h.strip() for h in rows[0]]
    for n, row in enumerate(rows[1:], start=1):
        if len(row) != len(header):
            raise InferenceError(f"--data {path}: row {n} has {len(row)} cells, the header has {len(header)}")
    return {h: [r[i] for r in rows[1:]] for i, h in enumerate(header)}


def _numbers(table: dict[str, list[object]], column: str) -> np.ndarray:
    out = np.empty(len(table[column]))
    for i, cell in enumerate(table[column]):
        if cell is None or (isinstance(cell, str) and cell.strip().lower() in ("", "nan", "na", "null")):
            out[i] = np.nan
            continue
        try:
            out[i] = float(cell)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InferenceError(f"column {column!r} row {i + 1}: {cell!r} is not a number") from None
        if np.isinf(out[i]):
            raise InferenceError(f"column {column!r} row {i + 1}: {cell!r} is not finite")
    return out


def _fill_gaps(values: np.ndarray, t: np.ndarray, rows: np.ndarray, column: str, allow_tail: bool) -> np.ndarray:
    """Interpolate short NaN runs; a longer run raises (after the first sample too when ``allow_tail``)."""
    bad = np.isnan(values)
    if allow_tail:
        if bad[0]:
            raise InferenceError(f"column {column!r} row {rows[0]}: the first sample of a segment is missing "
                                 "(free-run prediction starts from it)")
        return values
    if not bad.any():
        return values
    edges = np.flatnonzero(np.diff(np.concatenate([[0], bad.astype(np.int8), [0]])))
    for start, stop in zip(edges[::2], edges[1::2]):
        if stop - start > MAX_NAN_RUN:
            raise InferenceError(f"column {column!r} rows {rows[start]}-{rows[stop - 1]}: {stop - start} consecutive "
                                 f"missing values (runs of at most {MAX_NAN_RUN} are interpolated)")
    if bad.all():
        raise InferenceError(f"column {column!r} rows {rows[0]}-{rows[-1]}: no values")
    return np.interp(t, t[~bad], values[~bad])


def decode(path: Path, inputs: list[str], outputs: list[str], time_column: str = "time_s",
           segment_column: str | None = None, dt: float | None = None, for_prediction: bool = False) -> Dataset:
    """Read and check a CSV or Parquet file; see :func:`decode_table`."""
    return decode_table(read_table(Path(path)), inputs, outputs, time_column, segment_column, dt, for_prediction,
                        source=str(path))


def decode_table(table: dict[str, list[object]], inputs: list[str], outputs: list[str], time_column: str = "time_s",
                 segment_column: str | None = None, dt: float | None = None, for_prediction: bool = False,
                 source: str = "the table") -> Dataset:
    """Check a table of raw columns and resample it; see the module docstring for the rules.

    ``for_prediction`` allows missing outputs after each segment's first
    sample and skips the constant-signal check.
    """
    path = source
    if not inputs or not outputs:
        raise InferenceError("--inputs and --outputs each need at least one column name")
    wanted = [time_column, *inputs, *outputs] + ([segment_column] if segment_column else [])
    for name in wanted:
        if name not in table:
            raise InferenceError(f"column {name!r} not found in {path}; its columns are: {', '.join(table)}")
    dup = {c for c in inputs + outputs if (inputs + outputs).count(c) > 1}
    if dup:
        raise InferenceError(f"column {sorted(dup)[0]!r} is named more than once in --inputs/--outputs")
    n_rows = len(table[time_column])
    if n_rows == 0:
        raise InferenceError(f"--data {path}: no data rows")
    t_all = _numbers(table, time_column)
    cols = {c: _numbers(table, c) for c in inputs + outputs}
    labels = [str(v) for v in table[segment_column]] if segment_column else ["all"] * n_rows
    groups: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        groups.setdefault(lab, []).append(i)
    parts = []
    for name, idx_list in groups.items():
        idx = np.array(idx_list)
        t, rows = t_all[idx], idx + 1
        if np.isnan(t).any():
            raise InferenceError(f"column {time_column!r} row {rows[np.isnan(t)][0]}: missing time")
        back = np.flatnonzero(np.diff(t) <= 0)
        if back.size:
            k = back[0] + 1
            raise InferenceError(f"column {time_column!r} row {rows[k]}: time {t[k]:g} is not after "
                                 f"{t[k - 1]:g} of row {rows[k - 1]} (segment {name!r})")
        parts.append((name, t, rows, idx))
    steps = np.concatenate([np.diff(t) for _, t, _, _ in parts])
    if dt is None:
        if steps.size == 0:
            raise InferenceError(f"--data {path}: every segment has a single row; the sampling step is unknown")
        dt = float(np.median(steps))
    segments = []
    for name, t, rows, idx in parts:
        cuts = np.flatnonzero(np.diff(t) > MAX_GAP_STEPS * dt) + 1
        for p, (a, b) in enumerate(zip(np.r_[0, cuts], np.r_[cuts, len(t)])):
            pname = name if p == 0 else f"{name}/{p + 1}"
            tp, rp = t[a:b], rows[a:b]
            if len(tp) < MIN_SEGMENT_SAMPLES:
                raise InferenceError(f"segment {pname!r} rows {rp[0]}-{rp[-1]}: {len(tp)} samples, at least "
                                     f"{MIN_SEGMENT_SAMPLES} are needed (a gap of over {MAX_GAP_STEPS} steps "
                                     "splits a segment)")
            grid = tp[0] + dt * np.arange(int(np.floor((tp[-1] - tp[0]) / dt + 1e-9)) + 1)
            u = [np.interp(grid, tp, _fill_gaps(cols[c][idx][a:b], tp, rp, c, False)) for c in inputs]
            y = []
            for c in outputs:
                v = _fill_gaps(cols[c][idx][a:b], tp, rp, c, for_prediction)
                ok = ~np.isnan(v)
                y.append(np.interp(grid, tp[ok], v[ok]) if ok.all() else
                         np.where(np.isin(grid, tp[ok]), np.interp(grid, tp[ok], v[ok]), np.nan))
            segments.append(Segment(pname, grid, np.stack(u, 1), np.stack(y, 1), tp, rp))
    if not for_prediction:
        for j, c in enumerate(inputs + outputs):
            v = np.concatenate([s.u[:, j] if j < len(inputs) else s.y[:, j - len(inputs)] for s in segments])
            if np.ptp(v) == 0:
                raise InferenceError(f"column {c!r} rows 1-{n_rows}: constant value {v[0]:g}; its effect cannot "
                                     "be identified, drop it")
    return Dataset(tuple(Port(c, unit_of(c)) for c in inputs), tuple(Port(c, unit_of(c)) for c in outputs),
                   dt, tuple(segments))
