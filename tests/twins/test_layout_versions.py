"""Stored-twin layout versions: golden records of the current and the previous layout decode to the
same twin; a newer layout is refused, never misread; a field inserted mid-struct is caught and migrated."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from twins.layout import LayoutCodec, TwinLayoutError
from twins.twin import LAYOUT_VERSION, MIGRATIONS, Twin, decode_twin, encode_twin

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "twin-layout"


def test_golden_records_of_the_current_and_previous_layout_decode_to_the_same_twin():
    """layout-1.msgpack was written by the release before layout versions (its JSON view beside it);
    layout-2.msgpack by this one. Both give the twin of that JSON, now at the current layout."""
    assert LAYOUT_VERSION == 2
    old = decode_twin((GOLDEN / "layout-1.msgpack").read_bytes())
    new = decode_twin((GOLDEN / "layout-2.msgpack").read_bytes())
    assert old == new and new.layout == LAYOUT_VERSION
    fields = msgspec.json.decode((GOLDEN / "layout-1.json").read_bytes())
    assert msgspec.json.decode(msgspec.json.encode(msgspec.structs.asdict(new))) == {"layout": 2, **fields}
    assert new.vin == "VF16W24HXND303032" and new.n_applied == 720 and new.risk.probability == [0.12, 0.03]
    assert encode_twin(old) == (GOLDEN / "layout-2.msgpack").read_bytes()   # rewritten in the current layout


def test_a_newer_layout_is_refused_not_misread():
    twin = decode_twin((GOLDEN / "layout-2.msgpack").read_bytes())
    newer = msgspec.msgpack.encode([3, *msgspec.structs.astuple(twin)[1:]])
    with pytest.raises(TwinLayoutError, match="layout 3, this release reads layouts 1..2"):
        decode_twin(newer)


def _inserted_mid_struct() -> type[msgspec.Struct]:
    """A future Twin with ``model_year`` inserted after ``vin`` (what positional msgpack cannot absorb)."""
    fields = []
    for f in msgspec.structs.fields(Twin):
        default = msgspec.NODEFAULT if f.required else (f.default if f.default is not msgspec.NODEFAULT
                                                        else msgspec.field(default_factory=f.default_factory))
        fields.append((f.name, f.type) if f.required else (f.name, f.type, default))
        if f.name == "vin":
            fields.append(("model_year", int))
    return msgspec.defstruct("TwinV3", fields, array_like=True, gc=False)


def test_a_field_inserted_mid_struct_is_detected_and_migrated():
    v3 = _inserted_mid_struct()
    current = (GOLDEN / "layout-2.msgpack").read_bytes()
    with pytest.raises(ValueError, match="no migration from layout"):
        LayoutCodec(v3, 3, MIGRATIONS)                  # the new version without its migration: refused at import
    codec = LayoutCodec(v3, 3, {**MIGRATIONS, 2: lambda rec: [3, rec[1], 0, *rec[2:]]})
    migrated = codec.decode(current)
    twin = decode_twin(current)
    assert migrated.layout == 3 and migrated.model_year == 0
    assert {f: getattr(migrated, f) for f in twin.__struct_fields__ if f != "layout"} == \
        {f: getattr(twin, f) for f in twin.__struct_fields__ if f != "layout"}
    assert codec.decode((GOLDEN / "layout-1.msgpack").read_bytes()) == migrated    # 1 -> 2 -> 3
    # the other way round: this release's reader never takes a layout-3 record for its own
    with pytest.raises(TwinLayoutError, match="layout 3"):
        decode_twin(msgspec.msgpack.encode(migrated))
