"""Fields of stored twins read straight from their records (positional msgpack), by one compiled pass.

A stored twin is ``twins.twin.encode_twin``'s msgpack: every struct an array of its fields
in declaration order. Decoding one into objects costs ~35 µs; the risk scorer needs ~90 of
its numbers. :class:`TwinRecords` walks a batch of records with a small program built from
the struct definitions (:func:`build_program`) and copies the wanted numbers into one float64
matrix, the items of lists (residency intervals, rainflow stack) into side rows, and the byte
positions of what it leaves in place (30-day ring, trouble codes) and of the ``risk``/``alerts``
fields, so a new risk state can be written into the record without decoding it
(``models.risk.record_scoring``). All of it is bounds-checked: a corrupt record is flagged, never
read past its end.

A record the program does not fit (fewer fields than the struct has now: written by an
older version; a value of an unexpected type) is marked not ``ok``; callers decode those.

>>> from twins.twin import Twin, encode_twin, new_twin
>>> program = build_program(Twin, {"history.n_updates": "num", "history.daily.base": ("nums", 6),
...                                "residency.cells": "at"})
>>> recs = TwinRecords(["1FA6P8CF0L5100001"], [encode_twin(new_twin("1FA6P8CF0L5100001"))], program)
>>> bool(recs.ok[0]), float(recs.column("history.n_updates")[0]), recs.column("history.daily.base", 6).tolist()
(True, 0.0, [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import msgspec
import numba
import numpy as np
from llvmlite import ir as llvm_ir
from numba.extending import intrinsic
from numpy.typing import NDArray

#: Program operations (``ops[k] = (op, a, b, c)``), executed in order along each record.
STRUCT, SKIP, NUM, AT, NUMS, MARK, OPTIONAL, ROW_BEFORE, LIST = range(9)


class RecordProgram(NamedTuple):
    """What :class:`TwinRecords` reads: the operations, the first output column of each want, the width, and
    where the byte position and item count of each ``"at"``/``"row_before"`` want are."""

    ops: NDArray[np.int64]
    columns: dict[str, int]
    width: int
    at: dict[str, int]
    lists: dict[str, int]                 # the side row of each "numbers"/"codes" want
    codes: frozenset[str]                 # the "codes" wants
    require: tuple[tuple[str, float], ...] = ()   # (want, value): a record is ok only if it holds that value


def _struct_type(tp: Any) -> tuple[type[msgspec.Struct] | None, bool]:
    """The Struct class of a field type (and whether it is optional: ``S | None``)."""
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return tp, False
    args = typing.get_args(tp)
    structs = [a for a in args if isinstance(a, type) and issubclass(a, msgspec.Struct)]
    if len(structs) == 1 and type(None) in args and len(args) == 2:
        return structs[0], True
    return None, False


def build_program(root: type[msgspec.Struct], wants: Mapping[str, Any],
                  fixed_lists: Mapping[str, int] | None = None, place: Mapping[str, int] | None = None,
                  require: Mapping[str, float] | None = None) -> RecordProgram:
    """The program reading ``wants`` out of records of ``root``.

    ``wants`` maps dotted field paths (``"history.inverter.peak_c"``; an item of a list whose length is
    fixed by ``fixed_lists``: ``"values.7"``) to what to read: ``"num"``: one number (nil = NaN, bool = 0/1);
    ``("nums", n)``: a list of exactly ``n`` numbers; ``"at"``: the value's byte position and item count
    (-1 if it is not an array, map or string), the value itself skipped; ``("row_before", w, day)``: for a
    list of rows of ``w`` numbers kept as a ring indexed by the number ``day`` (read before it), the ``w``
    numbers of row ``(day - 1) mod rows`` (NaN if there is no such row), then ``"at"``; ``"mark"``: the
    byte position only, the value read on (an optional struct inside which something is wanted gets
    column ``path + "?"``: 1.0 present, 0.0 nil). Structs are descended only where something is wanted
    inside; every other field is skipped. ``place`` puts wants at given output columns (the others
    follow them). ``require``: numbers a record must hold to be read as fitting (e.g. its layout version).
    """
    require = dict(require or {})
    wants = {**wants, **{path: "num" for path in require}}
    fixed_lists = dict(fixed_lists or {})
    place = dict(place or {})
    ops: list[tuple[int, int, int, int]] = []
    columns: dict[str, int] = {}
    used: set[str] = set()

    lists: dict[str, int] = {}

    def width(want: Any) -> int:
        if want in ("numbers", "codes"):
            return 3
        if want == "at":
            return 2
        if isinstance(want, tuple):
            return int(want[1]) + (2 if want[0] == "row_before" else 0)
        return 1

    free = [max((c + width(wants[p]) for p, c in place.items()), default=0)]

    def column(path: str, size: int) -> int:
        if path in place:
            columns[path] = place[path]
        else:
            columns[path], free[0] = free[0], free[0] + size
        return columns[path]

    def inside(path: str) -> bool:
        return any(w.startswith(path + ".") for w in wants)

    def leaf(path: str) -> None:
        want = wants[path]
        used.add(path)
        if want == "num":
            ops.append((NUM, column(path, 1), 0, 0))
        elif want == "at":
            ops.append((AT, column(path, 2), 0, 0))
        elif want in ("numbers", "codes"):
            lists[path] = len(lists)
            ops.append((LIST, lists[path], column(path, 3), 0 if want == "numbers" else 1))
        elif isinstance(want, tuple) and len(want) == 2 and want[0] == "nums":
            ops.append((NUMS, int(want[1]), column(path, int(want[1])), 0))
        elif isinstance(want, tuple) and len(want) == 3 and want[0] == "row_before" and want[2] in columns:
            ops.append((ROW_BEFORE, int(want[1]), column(path, width(want)), columns[want[2]]))
        else:
            raise ValueError(f"want {path!r}: {want!r} is not 'num', 'at', 'mark', 'numbers', 'codes', ('nums', n) "
                             "or ('row_before', width, path read before)")

    def walk(struct: type[msgspec.Struct], prefix: str) -> None:
        fields = msgspec.structs.fields(struct)
        ops.append((STRUCT, len(fields), 0, 0))
        for f in fields:
            path = prefix + f.name
            sub, optional = _struct_type(f.type)
            if wants.get(path) == "mark":
                used.add(path)
                ops.append((MARK, column(path, 1), 0, 0))
            elif path in wants:
                leaf(path)
                continue
            if sub is not None and inside(path):
                if optional:
                    at = len(ops)
                    ops.append((OPTIONAL, 0, column(path + "?", 1), 0))
                    walk(sub, path + ".")
                    ops[at] = (OPTIONAL, len(ops) - at - 1, columns[path + "?"], 0)
                else:
                    walk(sub, path + ".")
            elif path in fixed_lists and inside(path):
                ops.append((STRUCT, fixed_lists[path], 0, 0))
                for i in range(fixed_lists[path]):
                    if f"{path}.{i}" in wants:
                        leaf(f"{path}.{i}")
                    else:
                        ops.append((SKIP, 0, 0, 0))
            else:
                ops.append((SKIP, 0, 0, 0))

    walk(root, "")
    missing = set(wants) - used
    if missing:
        raise ValueError(f"no such field(s) in {root.__name__}: {sorted(missing)}")
    at = {p: c + (0 if wants[p] in ("at", "numbers", "codes") else int(wants[p][1])) for p, c in columns.items()
          if wants.get(p) in ("at", "numbers", "codes") or isinstance(wants.get(p), tuple) and wants[p][0] == "row_before"}
    return RecordProgram(np.array(ops, dtype=np.int64).reshape(-1, 4), columns,
                         max([free[0], *(c + width(wants.get(p, "num")) for p, c in columns.items())]), at, lists,
                         frozenset(p for p, w in wants.items() if w == "codes"),
                         tuple((p, float(v)) for p, v in require.items()))


@numba.njit(cache=True, nogil=True, forceinline=True)
def _uint(buf: Any, p: int, size: int) -> int:
    """Big-endian unsigned integer of ``size`` bytes at ``p``."""
    v = np.uint64(0)
    for k in range(size):
        v = (v << np.uint64(8)) | np.uint64(buf[p + k])
    return v


@numba.njit(cache=True, nogil=True, forceinline=True)
def _size(buf: Any, p: int, size: int) -> int:
    """Big-endian unsigned integer of ``size`` (at most 4) bytes at ``p``, as int64."""
    v = 0
    for k in range(size):
        v = (v << 8) | np.int64(buf[p + k])
    return v


def _fixed_sizes() -> NDArray[np.int64]:
    """Per msgpack marker byte, the size of a value with that marker if it is fixed (0: a container, a
    string/binary/extension of some length, or the unused 0xC1)."""
    size = np.zeros(256, np.int64)
    size[0x00:0x80] = size[0xE0:0x100] = 1                # fixints
    size[[0xC0, 0xC2, 0xC3]] = 1                          # nil, false, true
    size[[0xCC, 0xD0]], size[[0xCD, 0xD1]] = 2, 3        # (u)int 8, 16
    size[[0xCA, 0xCE, 0xD2]], size[[0xCB, 0xCF, 0xD3]] = 5, 9    # float 32 / (u)int 32, float 64 / (u)int 64
    size[[0xD4, 0xD5, 0xD6, 0xD7, 0xD8]] = 3, 4, 6, 10, 18       # fixext 1-16
    size[0xA0:0xC0] = 1 + np.arange(32)                  # fixstr
    return size


_FIXED_SIZE = _fixed_sizes()


@numba.njit(cache=True, nogil=True, forceinline=True)
def _skip(buf: Any, p: int, end: int) -> int:
    """The position after the value at ``p`` (-1: malformed or past ``end``)."""
    pending = 1
    while pending:
        pending -= 1
        if p < 0 or p >= end:
            return -1
        b = buf[p]
        size = _FIXED_SIZE[b]
        if size:
            p += size
        elif b <= 0x8F:                                   # fixmap
            pending += 2 * np.int64(b & 0x0F)
            p += 1
        elif b <= 0x9F:                                   # fixarray
            pending += np.int64(b & 0x0F)
            p += 1
        elif p + 5 > end:
            return -1
        elif b == 0xC4 or b == 0xD9:
            p += 2 + np.int64(buf[p + 1])
        elif b == 0xC5 or b == 0xDA:
            p += 3 + _size(buf, p + 1, 2)
        elif b == 0xC6 or b == 0xDB:
            p += 5 + _size(buf, p + 1, 4)
        elif b == 0xC7:
            p += 3 + np.int64(buf[p + 1])
        elif b == 0xC8:
            p += 4 + _size(buf, p + 1, 2)
        elif b == 0xC9:
            p += 6 + _size(buf, p + 1, 4)
        elif b == 0xDC:
            pending += _size(buf, p + 1, 2)
            p += 3
        elif b == 0xDD:
            pending += _size(buf, p + 1, 4)
            p += 5
        elif b == 0xDE:
            pending += 2 * _size(buf, p + 1, 2)
            p += 3
        elif b == 0xDF:
            pending += 2 * _size(buf, p + 1, 4)
            p += 5
        else:                                             # 0xC1: never used
            return -1
    return p if p <= end else -1


@numba.njit(cache=True, nogil=True, forceinline=True)
def _skip_items(buf: Any, p: int, end: int, n: int) -> int:
    """The position after the ``n`` values from ``p`` (-1: malformed or past ``end``); values of a fixed size
    are stepped over in a tight loop, others by :func:`_skip`."""
    for _ in range(n):
        if p < 0 or p >= end:
            return -1
        size = _FIXED_SIZE[buf[p]]
        p = p + size if size else _skip(buf, p, end)
    return p if p <= end else -1


@numba.njit(cache=True, nogil=True, forceinline=True)
def _count(buf: Any, p: int, end: int) -> tuple[int, int]:
    """Items of the array, map (pairs) or string at ``p`` and the position of its first item; (-1, p) if the
    value is something else."""
    if p < 0 or p >= end:
        return -1, p
    b = buf[p]
    if 0x90 <= b <= 0x9F:
        return np.int64(b & 0x0F), p + 1
    if 0x80 <= b <= 0x8F:
        return np.int64(b & 0x0F), p + 1
    if 0xA0 <= b <= 0xBF:
        return np.int64(b & 0x1F), p + 1
    if p + 5 > end:
        return -1, p
    if b == 0xDC or b == 0xDE or b == 0xDA:
        return _size(buf, p + 1, 2), p + 3
    if b == 0xDD or b == 0xDF or b == 0xDB:
        return _size(buf, p + 1, 4), p + 5
    if b == 0xD9:
        return np.int64(buf[p + 1]), p + 2
    return -1, p


@numba.njit(cache=True, nogil=True, forceinline=True)
def _array_len(buf: Any, p: int, end: int) -> tuple[int, int]:
    """Items of the array at ``p`` and the position of its first item; (-1, p) if the value is no array."""
    if p < 0 or p >= end:
        return -1, p
    b = buf[p]
    if 0x90 <= b <= 0x9F:
        return np.int64(b & 0x0F), p + 1
    if b == 0xDC and p + 3 <= end:
        return _size(buf, p + 1, 2), p + 3
    if b == 0xDD and p + 5 <= end:
        return _size(buf, p + 1, 4), p + 5
    return -1, p


@intrinsic
def _as_float64(typingctx: Any, bits: Any) -> Any:
    """The float64 whose IEEE bits are the uint64 ``bits``."""
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], llvm_ir.DoubleType())
    return numba.types.float64(numba.types.uint64), codegen


@intrinsic
def _as_float32(typingctx: Any, bits: Any) -> Any:
    """The float32 whose IEEE bits are the uint32 ``bits``."""
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], llvm_ir.FloatType())
    return numba.types.float32(numba.types.uint32), codegen


@numba.njit(cache=True, nogil=True, forceinline=True)
def _number(buf: Any, p: int, end: int) -> tuple[float, int]:
    """The number at ``p`` as float64 (nil = NaN, false/true = 0/1) and the position after it; ``-1`` if it
    is not a number."""
    if p < 0 or p >= end:
        return 0.0, -1
    b = buf[p]
    if b <= 0x7F:
        return float(b), p + 1
    if b >= 0xE0:
        return float(np.int64(b) - 256), p + 1
    if b == 0xCB and p + 9 <= end:
        return _as_float64(_uint(buf, p + 1, 8)), p + 9
    if b == 0xC0:
        return np.nan, p + 1
    if b == 0xC2 or b == 0xC3:
        return float(b - 0xC2), p + 1
    if b == 0xCA and p + 5 <= end:
        return float(_as_float32(np.uint32(_uint(buf, p + 1, 4)))), p + 5
    if b == 0xCC and p + 2 <= end:
        return float(buf[p + 1]), p + 2
    if b == 0xCD and p + 3 <= end:
        return float(_uint(buf, p + 1, 2)), p + 3
    if b == 0xCE and p + 5 <= end:
        return float(_uint(buf, p + 1, 4)), p + 5
    if b == 0xCF and p + 9 <= end:
        return float(_uint(buf, p + 1, 8)), p + 9
    if b == 0xD0 and p + 2 <= end:
        return float(np.int8(buf[p + 1])), p + 2
    if b == 0xD1 and p + 3 <= end:
        return float(np.int16(np.uint16(_uint(buf, p + 1, 2)))), p + 3
    if b == 0xD2 and p + 5 <= end:
        return float(np.int32(np.uint32(_uint(buf, p + 1, 4)))), p + 5
    if b == 0xD3 and p + 9 <= end:
        return float(np.int64(_uint(buf, p + 1, 8))), p + 9
    return 0.0, -1


@numba.njit(cache=True, nogil=True, forceinline=True)
def _code(buf: Any, p: int, end: int) -> tuple[int, int]:
    """The string of 1-8 bytes (no NUL) at ``p`` as a uint64 code and the position after it; -1 if it is not."""
    b = buf[p] if 0 <= p < end else 0
    width = np.int64(b) - 0xA0
    if not 0xA1 <= b <= 0xA8 or p + 1 + width > end:
        return np.uint64(0), -1
    code = np.uint64(0)
    for j in range(width):
        byte = buf[p + 1 + j]
        if byte == 0:
            return np.uint64(0), -1
        code |= np.uint64(byte) << np.uint64(8 * j)
    return code, p + 1 + width


@numba.njit(cache=True, nogil=True)
def _run(buf: Any, pos: Any, ends: Any, program: Any, out: Any, ok: Any, side: Any, cursor: Any, first: int,
         resume: bool, final: bool) -> int:  # pragma: no cover - compiled
    """Execute ``program`` on the records ``buf[pos[r]:ends[r]]`` from ``first`` into ``out[r]``; ``ok[r]`` = it
    fitted (with ``final``: and ended where the record does); ``pos[r]`` = where it stopped. ``resume``: the
    program goes on from an earlier one's ``pos``, for the records still ``ok``. List items go to
    ``side[row, cursor[row]:]`` (a record that does not fit takes none back). Returns the record at which a
    side row ran full (``len(pos)``: all done): grow ``side``, resume there."""
    n_ops = program.shape[0]
    mark = cursor.copy()
    for r in range(first, len(pos)):
        if resume:
            if not ok[r]:
                continue
        else:
            out[r, :] = np.nan
        p, end = pos[r], ends[r]
        good = True
        full = False
        mark[:] = cursor
        k = 0
        while k < n_ops:
            op, a, b, c = program[k, 0], program[k, 1], program[k, 2], program[k, 3]
            k += 1
            if op == STRUCT:
                n, p = _array_len(buf, p, end)
                if n != a:
                    good = False
            elif op == SKIP:
                p = _skip(buf, p, end)
            elif op == NUM:
                out[r, a], p = _number(buf, p, end)
            elif op == AT:
                out[r, a] = p
                n, _ = _count(buf, p, end)
                out[r, a + 1] = n
                p = _skip(buf, p, end)
            elif op == NUMS:
                n, p = _array_len(buf, p, end)
                if n != a:
                    good = False
                else:
                    for i in range(a):
                        out[r, b + i], p = _number(buf, p, end)
                        if p < 0:
                            break
            elif op == MARK:
                out[r, a] = p
            elif op == ROW_BEFORE:
                out[r, b + a] = p
                n, p = _array_len(buf, p, end)
                out[r, b + a + 1] = n
                day = out[r, c]
                if n < a or n % a or day != day:
                    p = _skip(buf, np.int64(out[r, b + a]), end)
                else:
                    first = ((np.int64(day) - 1) % (n // a)) * a
                    p = _skip_items(buf, p, end, first)
                    for i in range(a):
                        out[r, b + i], p = _number(buf, p, end)
                    p = _skip_items(buf, p, end, n - first - a)
            elif op == LIST:
                out[r, b] = p
                n, p = _array_len(buf, p, end)
                out[r, b + 1] = n
                q = cursor[a]
                out[r, b + 2] = q
                if n < 0 or n > end - p:                  # (every item takes a byte at least)
                    good = False
                elif q + n > side.shape[1]:
                    full = good = False
                else:
                    for i in range(n):
                        if c == 0:
                            side[a, q + i], p = _number(buf, p, end)
                        else:
                            code, p = _code(buf, p, end)
                            side[a, q + i] = _as_float64(code)
                        if p < 0:
                            break
                    cursor[a] = q + n
            elif op == OPTIONAL:
                if p < end and buf[p] == 0xC0:
                    out[r, b] = 0.0
                    p += 1
                    k += a                                # skip the struct's program
                else:
                    out[r, b] = 1.0
            if p < 0:
                good = False
            if not good:
                break
        ok[r] = good and (p == end or not final)
        if not ok[r]:
            cursor[:] = mark                              # its list items are dropped
        if full:
            return r                                      # (pos[r] still where the record starts)
        pos[r] = p
    return len(pos)


@numba.njit(cache=True, nogil=True, forceinline=True)
def _step(buf: Any, p: int, end: int) -> int:
    """The position after the one value at ``p`` (-1: malformed or past ``end``)."""
    if p < 0 or p >= end:
        return -1
    size = _FIXED_SIZE[buf[p]]
    return p + size if size else _skip(buf, p, end)


@numba.njit(cache=True, nogil=True, forceinline=True)
def _ring_head(buf: Any, p: int, end: int, out: Any, r: int, a: int, b: int, c: int) -> tuple[int, int, int]:
    """``ROW_BEFORE``'s header work for record ``r``: where its items start and how many to step over before and
    after the row; a value that is no ring of whole rows is stepped over at once (``(after it, 0, -1)``)."""
    out[r, b + a] = p
    n, q = _array_len(buf, p, end)
    out[r, b + a + 1] = n
    day = out[r, c]
    if n < a or n % a or day != day:
        return _skip(buf, p, end), 0, -1
    first = ((np.int64(day) - 1) % (n // a)) * a
    return q, first, n - first - a


@numba.njit(cache=True, nogil=True, forceinline=True)
def _step_lanes(buf: Any, p0: int, p1: int, p2: int, p3: int, n0: int, n1: int, n2: int, n3: int, e0: int, e1: int,
                e2: int, e3: int) -> tuple[int, int, int, int]:
    """Four positions each stepped over its next ``n`` values (``n`` <= 0: none), in one loop."""
    while n0 > 0 or n1 > 0 or n2 > 0 or n3 > 0:
        if n0 > 0:
            p0 = _step(buf, p0, e0)
            n0 -= 1
        if n1 > 0:
            p1 = _step(buf, p1, e1)
            n1 -= 1
        if n2 > 0:
            p2 = _step(buf, p2, e2)
            n2 -= 1
        if n3 > 0:
            p3 = _step(buf, p3, e3)
            n3 -= 1
    return p0, p1, p2, p3


@numba.njit(cache=True, nogil=True)
def _rows_before(buf: Any, pos: Any, ends: Any, out: Any, ok: Any, a: int, b: int,
                 c: int) -> None:  # pragma: no cover - compiled
    """The ``ROW_BEFORE`` operation at ``pos[r]`` of every ``ok`` record, four records at a time: their items
    are stepped over in one loop, so that the four chains (an item's marker, its size, the next item) overlap
    in the processor instead of running one after the other (a 270-item ring: ~1 µs a record alone)."""
    n = len(pos)
    for g in range(0, n, 4):
        p0 = p1 = p2 = p3 = -1
        s0 = s1 = s2 = s3 = 0
        t0 = t1 = t2 = t3 = -1
        e0 = e1 = e2 = e3 = 0
        if g < n and ok[g]:
            e0 = ends[g]
            p0, s0, t0 = _ring_head(buf, pos[g], e0, out, g, a, b, c)
        if g + 1 < n and ok[g + 1]:
            e1 = ends[g + 1]
            p1, s1, t1 = _ring_head(buf, pos[g + 1], e1, out, g + 1, a, b, c)
        if g + 2 < n and ok[g + 2]:
            e2 = ends[g + 2]
            p2, s2, t2 = _ring_head(buf, pos[g + 2], e2, out, g + 2, a, b, c)
        if g + 3 < n and ok[g + 3]:
            e3 = ends[g + 3]
            p3, s3, t3 = _ring_head(buf, pos[g + 3], e3, out, g + 3, a, b, c)
        p0, p1, p2, p3 = _step_lanes(buf, p0, p1, p2, p3, s0, s1, s2, s3, e0, e1, e2, e3)   # items before the row
        for i in range(a):                                # the row
            if t0 >= 0:
                out[g, b + i], p0 = _number(buf, p0, e0)
            if t1 >= 0:
                out[g + 1, b + i], p1 = _number(buf, p1, e1)
            if t2 >= 0:
                out[g + 2, b + i], p2 = _number(buf, p2, e2)
            if t3 >= 0:
                out[g + 3, b + i], p3 = _number(buf, p3, e3)
        p0, p1, p2, p3 = _step_lanes(buf, p0, p1, p2, p3, t0, t1, t2, t3, e0, e1, e2, e3)   # items after it
        for lane, p in ((0, p0), (1, p1), (2, p2), (3, p3)):
            if g + lane < n and ok[g + lane]:
                pos[g + lane] = p
                if p < 0:
                    ok[g + lane] = False


@numba.njit(cache=True, nogil=True)
def _numbers(buf: Any, at: Any, skip: Any, take: Any, ends: Any, out: Any, offsets: Any) -> Any:  # pragma: no cover
    """Items ``skip[r] .. skip[r] + take[r]`` of the number list at ``at[r]`` into ``out[offsets[r]:]``;
    False where a list is shorter or holds something else."""
    good = np.ones(len(at), np.bool_)
    for r in range(len(at)):
        end = ends[r]
        n, p = _array_len(buf, at[r], end)
        if n < skip[r] + take[r]:
            good[r] = False
            continue
        for _ in range(skip[r]):
            p = _skip(buf, p, end)
            if p < 0:
                break
        o = offsets[r]
        for i in range(take[r]):
            if p < 0:
                break
            out[o + i], p = _number(buf, p, end)
        if p < 0:
            good[r] = False
    return good


@numba.njit(cache=True, nogil=True)
def _prefix_flags(buf: Any, at: Any, ends: Any, prefixes: Any, out: Any) -> Any:  # pragma: no cover - compiled
    """For the string list at ``at[r]``: ``out[r, 0]`` = its length, ``out[r, 1 + j]`` = 1.0 if a string starts
    with ``prefixes[j]`` (ASCII, all of one length); False where it is not a list of strings."""
    good = np.ones(len(at), np.bool_)
    width = prefixes.shape[1]
    for r in range(len(at)):
        end = ends[r]
        n, p = _array_len(buf, at[r], end)
        if n < 0:
            good[r] = False
            continue
        out[r, 0] = n
        for _ in range(n):
            size, q = _count(buf, p, end)
            if size < 0 or not (0xA0 <= buf[p] <= 0xBF or 0xD9 <= buf[p] <= 0xDB) or q + size > end:
                good[r] = False
                break
            if size >= width:
                for j in range(prefixes.shape[0]):
                    same = True
                    for c in range(width):
                        if buf[q + c] != prefixes[j, c]:
                            same = False
                            break
                    if same:
                        out[r, 1 + j] = 1.0
            p = q + size
    return good


class RecordBuffer:
    """A reusable buffer for the records of :class:`TwinRecords` (one batch at a time): copying a batch of
    records into memory kept from the last batch costs ~0.4 µs a record, into fresh memory (``b"".join``,
    page faults included) ~1.5-2 µs."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.side = np.empty((0, 0))                       # list items (see build_program), reused likewise
        self.fields = np.empty((0, 0))                     # TwinRecords.fields, reused likewise

    def fill(self, records: Sequence[bytes]) -> tuple[NDArray[np.uint8], NDArray[np.int64], NDArray[np.int64]]:
        """The records one after the other (valid until the next ``fill``), and where each starts and ends."""
        sizes = np.fromiter(map(len, records), np.int64, len(records))
        ends = np.cumsum(sizes)
        total = int(ends[-1]) if len(ends) else 0
        if len(self._buf) < total:
            self._buf = bytearray(max(total, 2 * len(self._buf)))
        view = memoryview(self._buf)
        p = 0
        for rec in records:
            q = p + len(rec)
            view[p:q] = rec
            p = q
        return np.frombuffer(self._buf, np.uint8, total), ends - sizes, ends


def _phases(ops: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64] | None, NDArray[np.int64]]:
    """The program in three parts when it has a ``ROW_BEFORE`` with no list after it (its ring is read for
    four records at a time by :func:`_rows_before`): before it, it, after it; else all of it, None, nothing."""
    at = np.flatnonzero(ops[:, 0] == ROW_BEFORE)
    if len(at) != 1 or (ops[at[0]:, 0] == LIST).any():
        return ops, None, ops[:0]
    k = int(at[0])
    optional = np.flatnonzero(ops[:k, 0] == OPTIONAL)
    if (optional + ops[optional, 1] >= k).any():          # inside an optional struct: not split
        return ops, None, ops[:0]
    return ops[:k], ops[k], ops[k + 1:]


def _positions(values: NDArray[np.float64]) -> NDArray[np.int64]:
    return np.where(np.isnan(values), -1, values).astype(np.int64)


class TwinRecords:
    """A batch of stored twin records with ``program``'s fields read out (see the module).

    ``fields[r, columns[path]]`` holds want ``path`` of record ``r``: its number(s), or for ``"at"``
    wants the byte position in ``buf`` and the item count; ``ok[r]``: record ``r`` fitted the program
    (else its fields are incomplete: decode it). ``buffer``: where the records are copied and read to (reuse
    one across batches: a batch is valid until the next one is read with the same buffer).
    """

    def __init__(self, vins: Sequence[str], records: Sequence[bytes], program: RecordProgram,
                 buffer: RecordBuffer | None = None) -> None:
        if len(vins) != len(records):
            raise ValueError(f"{len(vins)} VINs for {len(records)} records")
        self.program = program
        self.columns = program.columns
        self.vins = list(vins)
        self.buf, self.starts, self.ends = (buffer := buffer or RecordBuffer()).fill(records)
        if buffer.fields.shape[1] != program.width or len(buffer.fields) < len(records):
            buffer.fields = np.empty((max(len(records), len(buffer.fields)), program.width))
        self.fields = buffer.fields[:len(records)]
        self.ok = np.zeros(len(records), np.bool_)
        rows = len(program.lists)
        if buffer.side.shape[0] != rows or buffer.side.shape[1] < 16 * len(records):
            buffer.side = np.empty((rows, max(16 * len(records), buffer.side.shape[1])))
        cursor = np.zeros(rows, np.int64)
        pos = self.starts.copy()
        head, ring, tail = _phases(program.ops)
        done = 0
        while done < len(records):
            done = _run(self.buf, pos, self.ends, head, self.fields, self.ok, buffer.side, cursor, done, False,
                        ring is None)
            if done < len(records):                       # a side row ran full: grow it, go on from that record
                buffer.side = np.concatenate([buffer.side, np.empty_like(buffer.side)], axis=1)
        if ring is not None:
            _rows_before(self.buf, pos, self.ends, self.fields, self.ok, ring[1], ring[2], ring[3])
            _run(self.buf, pos, self.ends, tail, self.fields, self.ok, buffer.side, cursor, 0, True, True)
        for path, value in program.require:  # e.g. another layout version: decode it, never misread it
            self.ok &= self.fields[:, self.columns[path]] == value
        self.side = buffer.side
        self.side_len = cursor

    def __len__(self) -> int:
        return len(self.vins)

    def take(self, rows: NDArray[np.intp]) -> TwinRecords:
        """These records only (read already: nothing is parsed again; valid while this batch is)."""
        out = object.__new__(TwinRecords)
        out.__dict__.update(self.__dict__)
        out.vins = [self.vins[r] for r in rows.tolist()]
        out.starts, out.ends, out.fields, out.ok = self.starts[rows], self.ends[rows], self.fields[rows], self.ok[rows]
        return out

    def column(self, path: str, width: int = 1) -> NDArray[np.float64]:
        """Want ``path`` of every record: ``(n,)``, or ``(n, width)`` for a ``("nums", width)`` want."""
        c = self.columns[path]
        return self.fields[:, c] if width == 1 else self.fields[:, c:c + width]

    def record(self, r: int) -> bytes:
        """Record ``r`` as stored."""
        return self.buf[self.starts[r]:self.ends[r]].tobytes()

    def _at(self, path: str, rows: NDArray[np.intp]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        c = self.program.at[path]
        return _positions(self.fields[rows, c]), _positions(self.fields[rows, c + 1])

    def numbers(self, path: str, rows: NDArray[np.intp], skip: NDArray[np.int64] | int = 0,
                take: NDArray[np.int64] | int | None = None
                ) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.bool_]]:
        """Items ``skip .. skip + take`` (default: all) of the ``"at"`` number list ``path`` of ``rows``, one row
        after the other: the values (nil = NaN), where each row's start in them, and which rows held such a
        list (long enough)."""
        at, count = self._at(path, rows)
        skips = np.ascontiguousarray(np.broadcast_to(np.asarray(skip, np.int64), len(rows)))
        takes = np.maximum(count, 0) - skips if take is None else np.broadcast_to(np.asarray(take, np.int64),
                                                                               len(rows))
        takes = np.ascontiguousarray(np.maximum(takes, 0))
        offsets = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(takes, out=offsets[1:])
        out = np.full(int(offsets[-1]), np.nan)
        good = _numbers(self.buf, at, skips, takes, self.ends[rows], out, offsets)
        return out, offsets, good

    def items(self, path: str, rows: NDArray[np.intp]) -> tuple[NDArray[Any], NDArray[np.int64]]:
        """The items of the ``"numbers"``/``"codes"`` list ``path`` of ``rows`` (records that fitted), one row
        after the other (float64 / uint64 codes), and each row's count."""
        at = self.program.at[path]
        lens = self.fields[rows, at + 1].astype(np.int64)
        first = self.fields[rows, at + 2].astype(np.int64)
        side = self.side[self.program.lists[path]]
        if path in self.program.codes:
            side = side.view(np.uint64)
        if not len(rows):
            return side[:0], lens
        if (first[1:] == first[:-1] + lens[:-1]).all():   # the usual case: one after the other already
            return side[first[0]:first[-1] + lens[-1]], lens
        index = np.repeat(first - np.cumsum(lens) + lens, lens) + np.arange(int(lens.sum()))
        return side[index], lens

    def string_equals(self, path: str, text: str) -> NDArray[np.bool_]:
        """Per record: the ``"at"`` value ``path`` is the string ``text``."""
        encoded = np.frombuffer(msgspec.msgpack.encode(text), np.uint8)
        at, count = self._at(path, np.arange(len(self)))
        same = (at >= 0) & (count == len(text.encode())) & (at + len(encoded) <= self.ends)
        same[same] &= self.buf[at[same]] == encoded[0]
        rows = np.flatnonzero(same)
        if len(rows):
            same[rows] = (self.buf[at[rows, None] + np.arange(len(encoded))] == encoded).all(axis=1)
        return same

    def prefix_flags(self, path: str, rows: NDArray[np.intp], prefixes: Sequence[str]
                     ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """For the ``"at"`` string list ``path`` of ``rows``: ``(rows, 1 + len(prefixes))`` = its length, then
        1.0 per prefix some string starts with (ASCII prefixes of one length); and which rows held one."""
        table = np.array([list(p.encode("ascii")) for p in prefixes], dtype=np.uint8).reshape(len(prefixes), -1)
        out = np.zeros((len(rows), 1 + len(prefixes)))
        good = _prefix_flags(self.buf, self._at(path, rows)[0], self.ends[rows], table, out)
        return out, good
