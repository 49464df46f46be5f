"""The decoding boundary: bad tables give one clear error naming column and row; nothing is written."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from models.inference import cli
from models.inference.data import decode, decode_table, unit_of
from models.inference.errors import InferenceError


def _table(n: int = 40, **cols: list) -> dict[str, list]:
    t = np.arange(n, dtype=float)
    base = {"time_s": list(t), "u_A": list(np.sin(t / 3)), "y_V": list(np.cos(t / 5))}
    return base | cols


def _decode(table: dict[str, list], **kw):
    return decode_table(table, ["u_A"], ["y_V"], **kw)


def test_missing_column_names_it_and_lists_the_columns():
    with pytest.raises(InferenceError, match=r"column 'nope' not found .*columns are: time_s, u_A, y_V"):
        decode_table(_table(), ["nope"], ["y_V"])


def test_non_numeric_cell_names_column_and_row():
    tab = _table()
    tab["u_A"][6] = "12,5"
    with pytest.raises(InferenceError, match=r"column 'u_A' row 7: '12,5' is not a number"):
        _decode(tab)


def test_long_nan_run_is_an_error_short_one_is_interpolated():
    tab = _table()
    tab["y_V"][10:15] = [""] * 5
    with pytest.raises(InferenceError, match=r"column 'y_V' rows 11-15: 5 consecutive missing values"):
        _decode(tab)
    tab = _table()
    tab["y_V"][10:12] = ["nan", ""]
    y = _decode(tab).segments[0].y[:, 0]
    assert y[10] == pytest.approx(np.cos(9 / 5) + (np.cos(12 / 5) - np.cos(9 / 5)) / 3)


def test_non_monotonic_time_names_the_row():
    tab = _table()
    tab["time_s"][20] = 5.0
    with pytest.raises(InferenceError, match=r"column 'time_s' row 21: time 5 is not after 19 of row 20"):
        _decode(tab)


def test_constant_input_is_rejected():
    with pytest.raises(InferenceError, match=r"column 'u_A' rows 1-40: constant value 2"):
        _decode(_table(u_A=[2.0] * 40))


def test_irregular_sampling_is_resampled_and_gaps_split_segments():
    t = np.r_[np.arange(0.0, 30.0, 1.0), 30.4, 31.0, np.arange(32.0, 50.0), np.arange(100.0, 130.0)]
    tab = {"time_s": list(t), "u_A": list(2 * t), "y_V": list(t + 1)}
    data = _decode(tab)
    assert data.dt == 1.0
    assert [s.name for s in data.segments] == ["all", "all/2"]  # the 50 s gap (> 10 steps) splits
    first = data.segments[0]
    np.testing.assert_allclose(first.t, np.arange(0.0, 50.0))
    np.testing.assert_allclose(first.u[:, 0], 2 * first.t)  # linear signals survive linear resampling exactly
    np.testing.assert_allclose(data.segments[1].y[:, 0], np.arange(100.0, 130.0) + 1)


def test_units_from_vss_paths_and_suffixes():
    assert unit_of("Vehicle.Powertrain.TractionBattery.CurrentCurrent") == "A"
    assert unit_of("Vehicle.Speed") == "km/h"
    assert unit_of("coolant_C") == "celsius"
    assert unit_of("motor_kW") == "kW"
    assert unit_of("mystery") == ""


def test_cli_error_writes_nothing(tmp_path, capsys):
    csv = tmp_path / "d.csv"
    csv.write_text("time_s,u_A,y_V\n0,1,2\n1,x,3\n")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        cli.main(["--data", str(csv), "--inputs", "u_A", "--outputs", "y_V", "--out", str(out)])
    assert exc.value.code == 2
    assert "column 'u_A' row 2: 'x' is not a number; nothing was written" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(SystemExit):
        cli.main(["--data", str(csv), "--inputs", "u_A", "--outputs", "y_V", "--budget-s", "-3", "--out", str(out)])
    assert "--budget-s -3: must be between 1 and 86400 seconds" in capsys.readouterr().err
    with pytest.raises(InferenceError, match="no such file"):
        decode(tmp_path / "missing.csv", ["u_A"], ["y_V"])


def _segments_table() -> dict[str, list]:
    t = np.arange(60, dtype=float)
    return {"segment": ["a"] * 60 + ["b"] * 60, "time_s": list(t) * 2,
            "u_A": list(np.sin(t / 3)) + list(np.cos(t / 4)), "y_V": list(np.cos(t / 5)) + list(np.sin(t / 7))}


def test_parquet_is_read_like_csv_and_fleet_infer_accepts_it(tmp_path):
    pa = pytest.importorskip("pyarrow")  # the `inference` extra; not in `test`, so CI skips this
    import pyarrow.parquet as pq

    from models.inference.artifact import load

    table = _segments_table()
    pq.write_table(pa.table(table), tmp_path / "d.parquet")
    csv = tmp_path / "d.csv"
    csv.write_text("\n".join([",".join(table)] + [",".join(str(v) for v in row) for row in zip(*table.values())]))
    from_pq = decode(tmp_path / "d.parquet", ["u_A"], ["y_V"], segment_column="segment")
    from_csv = decode(csv, ["u_A"], ["y_V"], segment_column="segment")
    assert [s.name for s in from_pq.segments] == ["a", "b"]
    for p, c in zip(from_pq.segments, from_csv.segments):
        np.testing.assert_array_equal(p.u, c.u)
        np.testing.assert_array_equal(p.y, c.y)
    cli.main(["--data", str(tmp_path / "d.parquet"), "--inputs", "u_A", "--outputs", "y_V", "--segment-column",
              "segment", "--validation", "b", "--budget-s", "1", "--out", str(tmp_path / "twin")])
    (art,) = (tmp_path / "twin").iterdir()  # the versioned artifact directory
    twin = load(art)
    assert [p.name for p in twin.inputs] == ["u_A"] and [p.unit for p in twin.outputs] == ["V"]
    # trained on segment a only (b validates): its input range is that of sin(t/3), t = 0..59
    sin = np.sin(np.arange(60) / 3)
    np.testing.assert_allclose(twin.input_ranges[0], [sin.min(), sin.max()], atol=1e-9)
    seg = from_pq.segments[1]
    assert twin.predict(seg.u, seg.y[0]).shape == (60, 1)


def test_parquet_without_pyarrow_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "d.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if the `inference` extra were not installed
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(InferenceError, match=r"d.parquet: reading Parquet needs pyarrow \(pip install pyarrow\)"):
        decode(tmp_path / "d.parquet", ["u_A"], ["y_V"])
