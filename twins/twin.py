"""Per-vehicle twin state and the pure merge of readings into it.

Rules (all tested in ``tests/twins/test_twin.py``):

* last-writer-wins **per signal by event time**: a reading older than the value a
  twin holds for a signal never overwrites it (ties keep the held value);
* a repeated ``(vin, seq)`` is applied once: the twin remembers the highest
  ``seq`` and a 64-message window below it (anti-replay bitmask, as in IPsec);
* a ``seq`` below that window, a ``seq`` already seen with another event time, or a
  ``seq`` more than ``seq_jump_max`` above the highest is not taken at its word: if its
  event time is newer than anything seen, the producer restarted its sequence
  (``seq_resets``) and the reading is applied, else it is counted as ``too_late``;
* a restart opens a new sequence epoch: readings with an event time at or before the
  newest one of the old epoch (``seq_floor``) belong to that epoch, whose window is
  gone, so they are ``too_late`` — a redelivery is never applied twice;
* ``first_seen``/``last_seen`` are the oldest/newest applied event times;
* operating history (``twins.history``) folds in every applied reading that is newer
  than the last one it saw, with the twin's merged values.

Functions never mutate their input twin; they return a new one.

>>> from twins.reading import reading_from_dict
>>> r = reading_from_dict({"schema": 1, "vin": "1FA6P8CF0L5100001", "ts": 1767225600000,
...                        "seq": 0, "signals": {"Vehicle.Speed": 50.0}})
>>> t = apply(new_twin(r.vin), r)
>>> signal_value(t, "Vehicle.Speed"), t.n_applied
(50.0, 1)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from twins.alerts.state import AlertBook
from twins.history import HistoryState, copy_history, update_history
from twins.layout import LayoutCodec
from twins.maintenance import ComponentLog
from twins.reading import Reading
from twins.residency import Residency
from twins.risk import RiskState
from twins.signals import N_SIGNALS, SLOT

SEQ_WINDOW = 64
#: Default of the largest forward ``seq`` step taken as the next message (FLEET_SEQ_JUMP_MAX).
SEQ_JUMP_MAX = 100_000
_MASK = (1 << SEQ_WINDOW) - 1
_UNSET = msgspec.UNSET
_astuple = msgspec.structs.astuple


class Twin(msgspec.Struct, array_like=True, gc=False):
    """Last-known state of one vehicle. ``values[i]``/``times[i]`` belong to ``SIGNALS[i]``.

    Stored positionally (:func:`encode_twin`); changing the order or types of fields means
    a new :data:`LAYOUT_VERSION` and a migration (rules in :mod:`twins.layout`).
    """

    #: layout version of the stored form (:data:`LAYOUT_VERSION` for a twin made by this release)
    layout: int
    vin: str
    values: list[Any]
    times: list[int]
    first_seen: int = 0
    last_seen: int = 0
    seq_max: int = -1
    seq_mask: int = 0
    n_applied: int = 0
    n_duplicate: int = 0
    n_too_late: int = 0
    n_seq_resets: int = 0
    residency: Residency = msgspec.field(default_factory=Residency)
    history: HistoryState = msgspec.field(default_factory=HistoryState)
    maintenance: ComponentLog = msgspec.field(default_factory=ComponentLog)
    risk: RiskState | None = None
    alerts: AlertBook | None = None
    #: Newest event time of the sequence epoch before the last restart (0: no restart yet).
    seq_floor: int = 0


def new_twin(vin: str) -> Twin:
    """An empty twin for ``vin``."""
    return Twin(layout=LAYOUT_VERSION, vin=vin, values=[None] * N_SIGNALS, times=[0] * N_SIGNALS)


def copy_twin(twin: Twin) -> Twin:
    """A copy that can be mutated without touching ``twin``."""
    r = twin.residency
    residency = Residency(list(r.cells), list(r.starts), list(r.ends), r.current, r.current_ts)
    m = twin.maintenance
    return msgspec.structs.replace(twin, values=list(twin.values), times=list(twin.times), residency=residency,
                                   history=copy_history(twin.history),
                                   maintenance=ComponentLog(list(m.failed_ms), list(m.serviced_ms), m.inspections),
                                   alerts=copy_alerts(twin.alerts))


def copy_alerts(book: AlertBook | None) -> AlertBook | None:
    """A copy of an alert book (alert records are never mutated, so they are shared)."""
    if book is None:
        return None
    return AlertBook(list(book.active), dict(book.episodes), dict(book.cooldown_until), dict(book.since),
                     dict(book.last), book.last_ts, book.power, book.wake_until_ms)


def apply(twin: Twin, reading: Reading) -> Twin:
    """Return ``twin`` with ``reading`` merged in."""
    return apply_many(twin, (reading,))


def apply_many(twin: Twin, readings: Iterable[Reading]) -> Twin:
    """Return ``twin`` with every reading merged in, in the given order (one copy, then in place)."""
    out = copy_twin(twin)
    merge_into(out, readings)
    return out


def merge_into(twin: Twin, readings: Iterable[Reading], seq_jump_max: int = SEQ_JUMP_MAX) -> None:
    """Merge readings into ``twin`` **in place** (the batch hot path; callers own ``twin``).

    A reading newer than everything the twin holds (``ts > last_seen``, the common in-order
    case) wins every signal it carries, since no held signal time exceeds ``last_seen``; only
    older readings need the per-signal time comparison.
    """
    values = twin.values
    times = twin.times
    history = twin.history
    for r in readings:
        seq = r.seq
        ts = r.ts
        seq_max = twin.seq_max
        if ts <= twin.seq_floor:  # from before the last restart: its window is gone
            twin.n_too_late += 1
            continue
        if seq_max < seq <= seq_max + seq_jump_max or seq_max < 0:
            shift = seq - seq_max
            twin.seq_mask = ((twin.seq_mask << shift) | 1) & _MASK if shift < SEQ_WINDOW else 1
            twin.seq_max = seq
        else:
            age = seq_max - seq
            bit = 1 << age if 0 <= age < SEQ_WINDOW else 0
            if bit and not twin.seq_mask & bit:
                twin.seq_mask |= bit  # inside the window, not seen yet
            elif ts > twin.last_seen:
                # A seq seen before, below the window or far ahead, with time going forward: the producer restarted.
                twin.seq_floor = twin.last_seen
                twin.seq_max = seq
                twin.seq_mask = 1
                twin.n_seq_resets += 1
            elif bit:
                twin.n_duplicate += 1
                continue
            else:
                twin.n_too_late += 1
                continue
        signals = _astuple(r.signals)
        if ts > twin.last_seen:
            i = 0
            for v in signals:
                if v is not _UNSET:
                    values[i] = v
                    times[i] = ts
                i += 1
            if not twin.n_applied:
                twin.first_seen = ts
            twin.last_seen = ts
        else:
            i = 0
            for v in signals:
                if v is not _UNSET and ts > times[i]:
                    values[i] = v
                    times[i] = ts
                i += 1
            if twin.n_applied == 0 or ts < twin.first_seen:
                twin.first_seen = ts
        twin.n_applied += 1
        update_history(history, ts, values)  # ignores readings older than its last update


def signal_value(twin: Twin, path: str) -> Any:
    """Last-known value of the signal at VSS ``path`` (``None`` if never seen)."""
    return twin.values[SLOT[path]]


def signal_time(twin: Twin, path: str) -> int:
    """Event time (epoch ms) of the last-known value at ``path`` (0 if never seen)."""
    return twin.times[SLOT[path]]


def is_stale(twin: Twin, now_ms: int, stale_after_ms: int) -> bool:
    """True when the vehicle has sent nothing for longer than ``stale_after_ms``."""
    return now_ms - twin.last_seen > stale_after_ms


_twin_encoder = msgspec.msgpack.Encoder()
#: Layout of the stored twin written by this release (history and rules: :mod:`twins.layout`).
LAYOUT_VERSION = 2
#: Migration from each older layout to the next (a decoded record, plain lists, in and out).
MIGRATIONS = {
    1: lambda record: [2, *record],  # layout 1 had no version field
}
_codec = LayoutCodec(Twin, LAYOUT_VERSION, MIGRATIONS)


_twin_buffer = bytearray(4096)


def encode_twin(twin: Twin) -> bytes:
    """Compact binary form (msgpack, positional) used in the state store and changelog.

    Encoded into a reused buffer and copied out: ``Encoder.encode`` returns bytes that keep
    its growth slack (~1.5 KB held for a 1 KB twin, measured), which at 100k twins is 50 MB.
    """
    _twin_encoder.encode_into(twin, _twin_buffer)
    return bytes(_twin_buffer)


def decode_twin(data: bytes) -> Twin:
    """Inverse of :func:`encode_twin`; a record of an older layout is migrated, a newer one refused
    (:class:`twins.layout.TwinLayoutError`)."""
    return _codec.decode(data)
