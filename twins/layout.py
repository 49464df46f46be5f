"""The stored twin's layout version and the migrations between versions.

A stored twin (state store, changelog) is positional msgpack: every struct is an array of
its fields in declaration order, so the bytes carry no field names. A field inserted in
the middle of a struct by a later release would make every older record decode into the
wrong fields — silently, when the types happen to agree. Hence the rule:

* every stored twin starts with its **layout version** (``Twin.layout``, the first field);
* a release that changes the stored form in any way other than appending a field with a
  default at the end of a struct raises :data:`twins.twin.LAYOUT_VERSION` by one and adds
  one migration to ``twins.twin.MIGRATIONS``: a pure function from the decoded record
  (plain lists) of version N−1 to version N;
* a reader decodes records of its own version directly, migrates older ones step by step
  (``tests/twins/test_layout_versions.py`` decodes committed golden records of the current
  and the previous layout), and refuses newer ones with :class:`TwinLayoutError` rather than
  misreading them (a rolled-back worker must not run on a newer changelog).

So adding a field is one declaration plus, unless it is appended, one migration.

>>> import msgspec
>>> class V2(msgspec.Struct, array_like=True):
...     layout: int
...     name: str
...     wheels: int = 4
>>> codec = LayoutCodec(V2, 2, {1: lambda rec: [2, *rec]})   # version 1 had no layout field
>>> codec.decode(msgspec.msgpack.encode(["van", 6]))
V2(layout=2, name='van', wheels=6)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import msgspec

from twins.errors import FleetAssuranceError

S = TypeVar("S", bound=msgspec.Struct)
Migration = Callable[[list[Any]], list[Any]]


class TwinLayoutError(FleetAssuranceError):
    """A stored twin of a layout this release cannot read (newer, or no migration for it)."""


class LayoutCodec(Generic[S]):
    """Encode structs of layout ``version``; decode records of that or any migratable older layout.

    ``struct``'s first field holds the layout version. Records without one (a leading
    non-integer) are layout 1.
    """

    def __init__(self, struct: type[S], version: int, migrations: Mapping[int, Migration]) -> None:
        first = msgspec.structs.fields(struct)[0]
        if first.name != "layout":
            raise ValueError(f"struct {struct.__name__}: the first field must be 'layout', not {first.name!r}")
        missing = [v for v in range(1, version) if v not in migrations]
        if missing:
            raise ValueError(f"struct {struct.__name__} layout {version}: no migration from layout(s) {missing}")
        self.struct = struct
        self.version = version
        self.migrations = dict(migrations)
        self._decoder = msgspec.msgpack.Decoder(struct)

    def decode(self, data: bytes) -> S:
        """The struct of record ``data``, migrated to the current layout if it is older."""
        try:
            out = self._decoder.decode(data)
        except msgspec.ValidationError:
            return self._migrate(data)
        if out.layout != self.version:  # type: ignore[attr-defined]
            return self._migrate(data)
        return out

    def _migrate(self, data: bytes) -> S:
        record = msgspec.msgpack.decode(data)
        if not isinstance(record, list) or not record:
            raise TwinLayoutError(f"a stored {self.struct.__name__} is not a msgpack array: "
                                  f"{type(record).__name__}")
        head = record[0]
        version = head if isinstance(head, int) and not isinstance(head, bool) else 1
        if version > self.version:
            raise TwinLayoutError(f"a stored {self.struct.__name__} has layout {version}, this release reads "
                                  f"layouts 1..{self.version}: run the release that wrote it (or a newer one)")
        if version < 1:
            raise TwinLayoutError(f"a stored {self.struct.__name__} has layout {version}, not 1..{self.version}")
        if version == self.version:  # the right layout, but it did not decode: the record itself is bad
            return msgspec.convert(record, self.struct)
        while version < self.version:
            record = self.migrations[version](record)
            version += 1
        return msgspec.convert(record, self.struct)
