"""What fleet listings and the staleness sweep read of a stored twin, without decoding the rest.

A full decode of a stored twin (:func:`twins.twin.decode_twin`) builds its operating history,
residency, maintenance log and alert book (~36 µs for a 1.9 KB record in ``make bench``).
Listings (``/twins``, ``/fleet/summary``, ``/fleet/risk``) and the sweep need a handful of its
fields. :func:`decode_brief` decodes those and leaves the others as undecoded bytes
(``msgspec.Raw``): 7.6x cheaper side by side in ``make bench`` (213k against 28k twins/s).
The brief is declared by naming the fields it keeps: positions and types follow from
:class:`~twins.twin.Twin` itself, so a new twin field needs nothing here. A
:class:`~twins.twin.Twin` has every attribute a brief has, so code reading briefs reads
unflushed twin objects as they are.

>>> from twins.twin import encode_twin, new_twin
>>> b = decode_brief(encode_twin(new_twin("1FA6P8CF0L5100001")))
>>> b.vin, b.n_applied, active_alerts(b)
('1FA6P8CF0L5100001', 0, 0)
"""

from __future__ import annotations

from typing import Any

import msgspec

from twins.alerts.state import AlertBook
from twins.twin import LAYOUT_VERSION, Twin, decode_twin

#: The fields a brief decodes (every other field of ``Twin`` stays raw bytes).
BRIEF_FIELDS = frozenset({"layout", "vin", "values", "first_seen", "last_seen", "n_applied", "n_duplicate",
                          "n_too_late", "risk", "alerts"})


def _partial(struct: type[msgspec.Struct], name: str, keep: dict[str, Any]) -> type[msgspec.Struct]:
    """``struct`` with the fields of ``keep`` (name -> type) decoded and every other left raw."""
    fields = [(f.name, keep[f.name] if f.name in keep else msgspec.Raw, msgspec.field(default=None))
              for f in msgspec.structs.fields(struct)]
    return msgspec.defstruct(name, fields, array_like=True, gc=False)


#: An alert book with only the number of active alerts known (their records stay raw).
AlertCount = _partial(AlertBook, "AlertCount", {"active": list[msgspec.Raw]})
TwinBrief = _partial(Twin, "TwinBrief", {f.name: (AlertCount | None if f.name == "alerts" else f.type)
                                         for f in msgspec.structs.fields(Twin) if f.name in BRIEF_FIELDS})
_decoder = msgspec.msgpack.Decoder(TwinBrief)


def decode_brief(record: bytes) -> Any:
    """The brief of a stored twin; a record of another layout is decoded in full (migrated or refused,
    as :func:`~twins.twin.decode_twin` does) and returned as the twin itself."""
    try:
        brief = _decoder.decode(record)
    except msgspec.ValidationError:  # another layout (layout 1 starts with the VIN): the full path decides
        return decode_twin(record)
    return brief if brief.layout == LAYOUT_VERSION else decode_twin(record)


def active_alerts(twin: Any) -> int:
    """Active alerts of a brief or a twin."""
    book = twin.alerts
    return len(book.active) if book is not None else 0
