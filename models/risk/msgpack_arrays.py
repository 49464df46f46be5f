"""Python lists read into numpy through msgpack, for the batch builders of the risk features.

msgspec writes a whole list as msgpack in one C call; when every item comes out with the same
marker and width (a float 64, a uint 32, a string of one length), numpy reads the items in
place: ~4–8 ns an item, where ``np.array`` / ``np.fromiter`` take ~20–40. Lists that do not
(an int among floats, None, an hour beyond uint 32) take ``np.array``.

>>> doubles([1.5, -2.0]).tolist(), doubles([1, None]).tolist(), hours([490000, 490001]).tolist()
([1.5, -2.0], [1.0, nan], [490000, 490001])
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
from numpy.typing import NDArray

_ENCODER = msgspec.msgpack.Encoder()
FLOAT64, UINT32, FIXSTR = 0xCB, 0xCE, 0xA0


def fixed_items(items: list[Any], marker: int, value: Any) -> NDArray[Any] | None:
    """The items as numpy ``value`` (a dtype, e.g. ``">f8"``), if msgspec writes every one of them as the byte
    ``marker`` followed by ``value``'s bytes; else None."""
    n = len(items)
    buf = _ENCODER.encode(items)
    head = 1 if n < 16 else 3 if n < 65536 else 5          # fixarray / array 16 / array 32 header
    item = np.dtype([("marker", "u1"), ("value", value)])
    if len(buf) != head + item.itemsize * n:
        return None
    a = np.frombuffer(buf, item, offset=head)
    if not (a["marker"] == marker).all():                 # an item of another kind would sit on one
        return None
    return a["value"]


def doubles(items: list[Any]) -> NDArray[np.float64]:
    """``np.array(items, dtype=float64)`` (None = NaN)."""
    a = fixed_items(items, FLOAT64, ">f8")
    return a.astype(np.float64) if a is not None else np.array(items, dtype=np.float64)


def hours(items: list[Any]) -> NDArray[np.int64]:
    """Hours since epoch (Python ints) as int64; every hour from 1977 to 2459 is a msgpack uint 32."""
    a = fixed_items(items, UINT32, ">u4")
    return a.astype(np.int64) if a is not None else np.array(items, dtype=np.float64).astype(np.int64)
