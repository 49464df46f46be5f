"""Scoring stored twins without decoding them: records in, records with the new risk state out.

The stream keeps a flushed twin as its record (``twins.twin.encode_twin``). Decoding one
costs ~35 µs and encoding it again ~7, several times the scoring itself. Here a batch of
records is scored as they are:

1. :class:`models.risk.twin_records.TwinRecords` reads the numbers the features need in one
   compiled pass (``models.risk.features.RECORD_PROGRAM``), and
   :meth:`models.risk.features.FeatureRows.add_records` builds the rows the object path builds;
2. the model set walks its trees once per row (``RiskModelSet.explain``);
3. a compiled pass writes each record again with its ``risk`` field replaced by the new
   ``RiskState`` in msgpack — byte for byte what ``encode_twin`` writes for the twin with that
   state — and every other byte copied.

Records the program does not fit (an older layout, an unexpected value) are decoded and scored
through the object path, so every record comes back scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec
import numba
import numpy as np
from llvmlite import ir as llvm_ir
from numba.extending import intrinsic
from numpy.typing import NDArray

from models.risk.artifact import RiskModelSet
from models.risk.exposure import ExposureCache
from models.risk.features import COMPONENTS, RECORD_PROGRAM, FeatureRows
from models.risk.scoring import component_ages, score_twins
from models.risk.scoring import warm_up as warm_up_objects
from models.risk.twin_records import TwinRecords
from twins.maintenance import COMPONENTS as LOG_COMPONENTS
from twins.residency import Residency
from twins.risk import RiskState
from twins.signals import SLOT
from twins.twin import decode_twin, encode_twin, new_twin

DAY_MS = 86_400_000
_DTC_SLOT = SLOT["Vehicle.Diagnostics.DTCList"]
_ACTIVE_COUNT = RECORD_PROGRAM.at["alerts.active"] + 1
#: Records rewritten per kernel call: their new bytes (~250 kB) are still in the CPU cache when copied out.
REWRITE_CHUNK = 128
#: the repair log's column of each feature component
_LOG_INDEX = np.array([LOG_COMPONENTS.index(c) for c in COMPONENTS])


class ScoredRecords(NamedTuple):
    """The outcome of :func:`score_records`, aligned with its input."""

    records: list[bytes]                  # each record with its new risk state
    probability: NDArray[np.float64]      # (n, len(models.components))
    alerts_active: NDArray[np.bool_]      # the twin has active alerts (its alert book is not empty)
    decoded: NDArray[np.bool_]            # scored through the object path (the program did not fit)


def record_ages(serviced_ms: NDArray[np.float64], in_service_ms: NDArray[np.float64], now_ms: int
                ) -> NDArray[np.float64]:
    """:func:`models.risk.scoring.component_ages` of rows of the repair log's ``serviced_ms``
    (``(n, len(COMPONENTS))`` in ``twins.maintenance`` order; NaN = unknown in-service date), as an
    ``(n, len(COMPONENTS))`` array in feature order (NaN = fall back to the vehicle age)."""
    serviced = serviced_ms[:, _LOG_INDEX]
    since = np.where(serviced != 0, serviced, in_service_ms[:, None])
    ages = np.where((since != 0) & ~np.isnan(since), np.maximum(0.0, (now_ms - since) / DAY_MS), np.nan)
    ages[~(serviced_ms != 0).any(axis=1)] = np.nan         # never serviced: every age is the vehicle's
    return ages


@intrinsic
def _float64_bits(typingctx: Any, value: Any) -> Any:
    """The IEEE bits of the float64 ``value`` as a uint64."""
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], llvm_ir.IntType(64))
    return numba.types.uint64(numba.types.float64), codegen


@numba.njit(cache=True, nogil=True, forceinline=True)
def _header(out: Any, p: int, n: int) -> int:
    """A msgpack array header for ``n`` items at ``p``; the position after it."""
    if n < 16:
        out[p] = 0x90 | n
        return p + 1
    out[p] = 0xDC
    out[p + 1] = n >> 8
    out[p + 2] = n & 0xFF
    return p + 3


@numba.njit(cache=True, nogil=True, forceinline=True)
def _float(out: Any, p: int, x: float) -> int:
    """A msgpack float 64 at ``p``; the position after it."""
    bits = _float64_bits(x)
    out[p] = 0xCB
    for k in range(8):
        out[p + 1 + k] = (bits >> np.uint64(8 * (7 - k))) & np.uint64(0xFF)
    return p + 9


@numba.njit(cache=True, nogil=True, forceinline=True)
def _copy(out: Any, p: int, src: Any, a: int, b: int) -> int:
    """``src[a:b]`` into ``out`` at ``p``; the position after it. (Unsigned indices: numba checks signed
    ones for wrap-around, which keeps the loop from being vectorised — ~10x slower.)"""
    q, a0 = np.uint64(p), np.uint64(a)
    for i in range(np.uint64(b - a)):
        out[q + i] = src[a0 + i]
    return p + b - a


@numba.njit(cache=True, nogil=True)
def _rewrite(buf: Any, starts: Any, ends: Any, risk_at: Any, alerts_at: Any, prefix: Any, proba: Any, idx: Any,
             val: Any, names: Any, name_at: Any, out: Any, out_at: Any) -> None:  # pragma: no cover - compiled
    """Record ``r`` with its risk field replaced: ``buf[starts[r]:risk_at[r]]``, then ``RiskState(...)`` as
    msgpack (``prefix`` = its fields up to the probabilities, which are the batch's), then
    ``buf[alerts_at[r]:ends[r]]``; into ``out[out_at[r]:out_at[r + 1]]``."""
    n_comp = proba.shape[1]
    n_top = idx.shape[1] * idx.shape[2]
    for r in range(len(starts)):
        p = _copy(out, out_at[r], buf, starts[r], risk_at[r])
        p = _copy(out, p, prefix, 0, len(prefix))
        p = _header(out, p, n_comp)
        for c in range(n_comp):
            p = _float(out, p, proba[r, c])
        p = _header(out, p, n_top)
        for c in range(idx.shape[1]):
            for j in range(idx.shape[2]):
                f = idx[r, c, j]
                p = _copy(out, p, names, name_at[f], name_at[f + 1])
        p = _header(out, p, n_top)
        for c in range(idx.shape[1]):
            for j in range(idx.shape[2]):
                p = _float(out, p, val[r, c, j])
        _copy(out, p, buf, alerts_at[r], ends[r])


def _header_size(n: int) -> int:
    return 1 if n < 16 else 3


class RiskEncoder:
    """Writes batches of ``RiskState``\\ s of one model set into records (see :func:`score_records`)."""

    def __init__(self, models: RiskModelSet) -> None:
        self.models = models
        encoded = [msgspec.msgpack.encode(name) for name in models.feature_names]
        self.names = np.frombuffer(b"".join(encoded), np.uint8)
        self.name_at = np.zeros(len(encoded) + 1, np.int64)
        np.cumsum([len(e) for e in encoded], out=self.name_at[1:])
        self.name_size = np.diff(self.name_at)
        self._out = np.empty(0, np.uint8)                  # reused: the records are copied out of it

    def prefix(self, scored_ms: int) -> NDArray[np.uint8]:
        """The state's msgpack up to its probabilities (version, time, horizon, components)."""
        m = self.models
        empty = msgspec.msgpack.encode(RiskState(m.version, scored_ms, m.horizon_days, list(m.components), [], [], []))
        return np.frombuffer(empty[:-3], np.uint8)               # the three empty lists are one byte each

    def rewrite(self, records: TwinRecords, rows: NDArray[np.intp], proba: NDArray[np.float64],
                idx: NDArray[np.intp], val: NDArray[np.float64], scored_ms: int) -> list[bytes]:
        """``records``' ``rows`` with their risk replaced by the states of ``explain``'s arrays at ``scored_ms``."""
        prefix = self.prefix(scored_ms)
        n_comp, n_top = proba.shape[1], idx.shape[1] * idx.shape[2]
        state = (len(prefix) + _header_size(n_comp) + 9 * n_comp + 2 * _header_size(n_top) + 9 * n_top
                 + self.name_size[idx.reshape(len(rows), -1)].sum(axis=1))
        cols = RECORD_PROGRAM.columns
        starts, ends = records.starts[rows], records.ends[rows]
        risk_at = records.fields[rows, cols["risk"]].astype(np.int64)
        alerts_at = records.fields[rows, cols["alerts"]].astype(np.int64)
        sizes = (risk_at - starts) + state + (ends - alerts_at)
        out_at = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(sizes, out=out_at[1:])
        proba, idx, val = np.ascontiguousarray(proba), np.ascontiguousarray(idx, np.int64), np.ascontiguousarray(val)
        edges = out_at.tolist()
        records_out: list[bytes] = []
        for a in range(0, len(rows), REWRITE_CHUNK):    # written and copied out while in the CPU cache
            b = min(a + REWRITE_CHUNK, len(rows))
            at = out_at[a:b + 1] - out_at[a]
            if len(self._out) < at[-1]:
                self._out = np.empty(max(int(at[-1]), 2 * len(self._out)), np.uint8)
            _rewrite(records.buf, starts[a:b], ends[a:b], risk_at[a:b], alerts_at[a:b], prefix, proba[a:b], idx[a:b],
                     val[a:b], self.names, self.name_at, self._out, at)
            chunk = self._out[:at[-1]].tobytes()          # bytes slices: no memoryview per record (GC-tracked)
            base = edges[a]
            records_out += [chunk[x - base:y - base] for x, y in zip(edges[a:b], edges[a + 1:b + 1])]
        return records_out


def score_records(models: RiskModelSet, records: TwinRecords, weather: ExposureCache, *, now_ms: int,
                  in_service_ms: Sequence[int | None], encoder: RiskEncoder | None = None, k: int = 3
                  ) -> ScoredRecords:
    """Score the stored twins of ``records`` (read with ``RECORD_PROGRAM``) at ``now_ms`` and write each
    record again with its new ``RiskState`` (the ``score_twins`` state of the decoded twin, byte for byte).

    ``in_service_ms`` per record (None = unknown); component ages come from each record's repair log as
    :func:`models.risk.scoring.component_ages` computes them. ``encoder``: keep one per model set.
    """
    n = len(records)
    encoder = encoder if encoder is not None and encoder.models is models else RiskEncoder(models)
    service = np.array([np.nan if s is None else s for s in in_service_ms], dtype=np.float64)
    ages = record_ages(records.column("maintenance.serviced_ms", len(LOG_COMPONENTS)), service, now_ms)
    out: list[bytes] = [b""] * n
    proba = np.empty((n, len(models.components)))
    decoded = np.ones(n, np.bool_)
    if n:
        rows_of = FeatureRows(weather)
        taken = rows_of.add_records(records, now_ms, service, ages)
        if len(taken):
            p, idx, val = models.explain(rows_of.matrix(), k=k)
            proba[taken] = p
            decoded[taken] = False
            for r, rec in zip(taken.tolist(), encoder.rewrite(records, taken, p, idx, val, now_ms)):
                out[r] = rec
    alerts_active = (records.column("alerts?") == 1.0) & (records.fields[:, _ACTIVE_COUNT] != 0)
    rest = np.flatnonzero(decoded)
    if len(rest):                                          # the object path, for records the program does not fit
        twins = [decode_twin(records.record(r)) for r in rest.tolist()]
        services = [in_service_ms[r] for r in rest.tolist()]
        states = score_twins(models, twins, weather, now_ms=now_ms, in_service_ms=services,
                             component_ages_days=[component_ages(t.maintenance, now_ms, s)
                                                  for t, s in zip(twins, services)], k=k)
        for r, twin, state in zip(rest.tolist(), twins, states):
            twin.risk = state
            out[r] = encode_twin(twin)
            proba[r] = state.probability
            alerts_active[r] = twin.alerts is not None and bool(twin.alerts.active)
    return ScoredRecords(out, proba, alerts_active, decoded)


def warm_up(models: RiskModelSet) -> None:
    """Compile every numba loop of both scoring paths (objects and records) now, not in the first batch: ~25 s
    on a machine with an empty numba cache, well under a second once cached (``python -m models.risk.precompile``
    fills the cache at install)."""
    warm_up_objects(models)
    weather = ExposureCache(lambda cell, hour: None)
    twin = new_twin("WARMUP00000000000")
    twin.residency = Residency(["s000"], [0], [0])
    score_records(models, TwinRecords([twin.vin], [encode_twin(twin)], RECORD_PROGRAM), weather, now_ms=0,
                  in_service_ms=[None])
    # a twin with a day (its ring read in full) and an active trouble code; rows only, no ring summary kept
    twin.history.daily.day = 1
    twin.values[_DTC_SLOT] = ["P0A7F"]
    rows = FeatureRows(weather, reuse_ring_summaries=False)
    rows.add_records(TwinRecords([twin.vin], [encode_twin(twin)], RECORD_PROGRAM), 0, np.full(1, np.nan),
                     np.full((1, len(COMPONENTS)), np.nan))
    rows.matrix()
