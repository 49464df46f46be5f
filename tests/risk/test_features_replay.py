"""The feature vector and the replay: same twin code and same features as the stream would compute."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from models.risk.dataset import dataset_paths, iter_lines, read_fleet, read_maintenance, read_weather, telemetry_parts
from models.risk.features import (COMPONENTS, EXTRA_FEATURES, FEATURE_INDEX, FEATURE_NAMES, feature_docs,
                                  feature_matrix, twin_features)
from models.risk.labels import EventIndex
from models.risk.replay import replay
from twins.history import FEATURE_NAMES as HISTORY_NAMES
from twins.history import features as history_features
from twins.join import note_residency
from twins.reading import decode_reading
from twins.twin import merge_into, new_twin

DAY = 86_400_000


def test_feature_names_and_docs():
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES)) == 75 + 4 + len(EXTRA_FEATURES)
    assert FEATURE_NAMES[:75] == tuple(HISTORY_NAMES)
    assert list(history_features(new_twin("1FA6P8CF0L5100001").history)) == list(HISTORY_NAMES)
    assert [d[0] for d in feature_docs()] == list(FEATURE_NAMES)
    assert all(unit is not None and meaning for _, unit, meaning in feature_docs())
    assert {f"age_days_{c}" for c in COMPONENTS} <= set(FEATURE_NAMES)


def test_ages_fall_back_to_vehicle_age_and_unknowns_are_nan():
    t = new_twin("1FA6P8CF0L5100001")
    x = twin_features(t, lambda c, h: None, now_ms=400 * DAY, in_service_ms=None,
                      component_ages_days={"inverter": 12.5})
    assert x[FEATURE_INDEX["age_days_inverter"]] == 12.5
    assert np.isnan(x[FEATURE_INDEX["vehicle_age_days"]]) and np.isnan(x[FEATURE_INDEX["age_days_lv_battery"]])
    assert np.isnan(x[FEATURE_INDEX["odometer_km"]]) and np.isnan(x[FEATURE_INDEX["soh_pct"]])
    m = feature_matrix([t, t], lambda c, h: None, now_ms=[400 * DAY, 401 * DAY], in_service_ms=[0, 0])
    assert m.shape == (2, len(FEATURE_NAMES)) and m[1, FEATURE_INDEX["vehicle_age_days"]] == 401.0
    with pytest.raises(ValueError, match="per-row"):
        feature_matrix([t], lambda c, h: None, now_ms=0, in_service_ms=[0, 0])


def _stream_style_rows(data, vin):
    """Rebuild one vehicle's daily rows with the stream's calls and the stream's weather lookup."""
    p = dataset_paths(data)
    weather, fleet = read_weather(p["weather"]), read_fleet(p["fleet"])
    idx = EventIndex(read_maintenance(p["maintenance"]))
    info = fleet[vin]
    twin, day, rows = new_twin(vin), -1, []

    def snap():
        now = (day + 1) * DAY
        rows.append(twin_features(twin, weather.lookup, now_ms=now, in_service_ms=info.in_service_ms,
                                  component_ages_days=idx.component_ages_days(vin, now)))

    for line in iter_lines(telemetry_parts(p["telemetry"])):
        if vin.encode() not in line:
            continue
        r = decode_reading(line)
        if r.ts // DAY > day:
            if day >= 0:
                snap()
            day = r.ts // DAY
        merge_into(twin, [r])
        note_residency(twin, r.ts, r.ts, 4, info.home_cell())
    snap()
    return np.array(rows)


def test_replay_rows_equal_the_stream_computation(trained):
    p = dataset_paths(trained.data)
    inputs = (read_weather(p["weather"]), read_fleet(p["fleet"]), EventIndex(read_maintenance(p["maintenance"])))
    failed = sorted({v for v, c, _ in trained.truth.failures if c == "inverter"})
    vins = [failed[0], trained.truth.vins[0]]
    snap1 = replay(p["telemetry"], *inputs, vins=vins, workers=1)
    snap2 = replay(p["telemetry"], *inputs, vins=vins, workers=2)
    np.testing.assert_array_equal(snap1.X, snap2.X)
    assert snap1.vins.tolist() == snap2.vins.tolist() and snap1.stats["readings"] == 2 * 90 * 12
    for vin in vins:
        expected = _stream_style_rows(trained.data, vin).astype(np.float32)
        got = snap1.X[snap1.vins == vin]
        assert got.shape == expected.shape == (90 + 1, len(FEATURE_NAMES))   # days 0..89 plus the final midnight
        np.testing.assert_array_equal(got, expected)
    # the failed vehicle's inverter age resets after its replacement
    rows = snap1.X[snap1.vins == failed[0]]
    age = rows[:, FEATURE_INDEX["age_days_inverter"]]
    assert (np.diff(age) < 0).any() and (age < rows[:, FEATURE_INDEX["vehicle_age_days"]]).any()
    assert (rows[:, FEATURE_INDEX["weather_hours_observed"]] > 0).all()


def test_invalid_lines_are_counted_and_skipped(trained, tmp_path):
    src = telemetry_parts(trained.data / "telemetry")[0]
    lines = list(iter_lines([src]))[:500]
    bad = [b'{"schema":1,"vin":"1FA6P8CF0L5100001","ts":5,"seq":0,"signals":{}}', b"not json", lines[0][:-3]]
    (tmp_path / "telemetry").mkdir()
    with gzip.open(tmp_path / "telemetry" / "part-00000.jsonl.gz", "wb") as fh:
        fh.write(b"\n".join(lines[:250] + bad + lines[250:]) + b"\n")
    p = dataset_paths(trained.data)
    snap = replay(tmp_path / "telemetry", read_weather(None), read_fleet(p["fleet"]), EventIndex([]), workers=1)
    assert snap.stats["invalid"] == 3 and snap.stats["applied"] == 500


def test_chunked_resumable_replay_equals_the_full_replay(trained, tmp_path):
    from models.risk.train import build_snapshots, load_inputs

    p = dataset_paths(trained.data)
    inputs = load_inputs(p["telemetry"], p["maintenance"], p["fleet"], p["weather"])
    full = build_snapshots(inputs, cache_dir=trained.cache)                 # the training replay (cached)
    vins = sorted(full.first_ts)[:12]
    chunked = build_snapshots(inputs, vins=vins, workers=1, cache_dir=tmp_path, chunks=2)
    part = full.select(np.isin(full.vins, vins))
    np.testing.assert_array_equal(chunked.X, part.X)
    assert chunked.vins.tolist() == part.vins.tolist() and chunked.last_ts == part.last_ts
    assert [f.name for f in tmp_path.glob("*.npz")] and not list(tmp_path.glob("*chunk*"))


def _varied_twins(data, limit: int = 320):
    """Copies of the synthetic fleet's twins at many points of their history, plus edge cases: an empty
    twin, unknown signals (None), trouble codes, a twin in two cells within one hour, odd rainflow stacks."""
    from models.risk.synthetic import stream_twins
    from twins.twin import copy_twin

    fleet = read_fleet(dataset_paths(data)["fleet"])
    _, out = stream_twins(data, copy_every=97, copies_max=limit)
    out.append(new_twin("1FA6P8CF0L5100001"))
    odd = [copy_twin(t) for t in out[-40:-1]]
    for i, t in enumerate(odd):
        from twins.signals import SLOT

        if i % 4 == 0:
            t.values[SLOT["Vehicle.TraveledDistance"]] = None
            t.values[SLOT["Vehicle.Powertrain.TractionBattery.StateOfHealth"]] = None
        if i % 4 == 1:
            t.values[SLOT["Vehicle.Diagnostics.DTCList"]] = ["P0A3C", "U0100", "P0562-1"]
            t.history.dtc.last_seen_ms[0] = t.history.last_ms - 5 * DAY
            t.history.dtc.onsets[0], t.history.dtc.onset_ms[0] = 2.5, t.history.last_ms - 9 * DAY
        if i % 4 == 2:
            res = t.residency
            if res.cells:
                end = max(res.ends)
                res.cells.append("dnrj" if res.cells[-1] != "dnrj" else "dhwf")
                res.starts.append(end)                     # overlaps the newest hour of another cell
                res.ends.append(end + 3)
            t.history.inverter.rf.stack = [20.0, 90.0, 25.0, 80.0, 30.0, 70.0, 35.0]
            t.history.inverter.rf.cand, t.history.inverter.rf.direction = 95.0, 1
        if i % 4 == 3:
            t.history.daily.first_day = t.history.daily.day - 3   # a young ring
            t.history.battery.soh = -1.0
    return out + odd, fleet


def test_vectorised_rows_equal_the_per_twin_reference(trained):
    from tests.risk.reference_features import reference_features

    twins, fleet = _varied_twins(trained.data)
    assert len(twins) >= 300
    lookup = read_weather(dataset_paths(trained.data)["weather"]).lookup
    now = max(t.last_seen for t in twins) + 3_600_000
    services = [fleet[t.vin].in_service_ms if t.vin in fleet and i % 5 else None for i, t in enumerate(twins)]
    ages = [None if i % 3 else {"inverter": 12.5, "lv_battery": None, "drive_motor": 400.0}
            for i in range(len(twins))]
    got = feature_matrix(twins, lookup, now_ms=now, in_service_ms=services, component_ages_days=ages)
    want = np.array([reference_features(t, lookup, now_ms=now, in_service_ms=s, component_ages_days=a)
                     for t, s, a in zip(twins, services, ages)])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, equal_nan=True)
    # the cases are really there: unknowns, codes, residue cycles, overlapping stays
    assert np.isnan(want).any(axis=0).sum() > 20
    assert (want[:, FEATURE_INDEX["dtc_P0A3C"]] == 1).any() and (want[:, FEATURE_INDEX["dtc_onsets_30d_P0A3C"]] > 0).any()
    assert (want[:, FEATURE_INDEX["inv_cycles_dt_60up_tm_40_70"]] > 0).any()
    assert len({tuple(r) for r in np.nan_to_num(want[:, 75:79])}) > 5
