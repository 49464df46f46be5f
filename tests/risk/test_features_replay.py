"""The feature vector and the replay: same twin code and same features as the stream would compute."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from models.risk.dataset import dataset_paths, iter_lines, read_fleet, read_maintenance, read_weather, telemetry_parts
from models.risk.features import feature_matrix, twin_features
from models.risk.feature_names import COMPONENTS, EXTRA_FEATURES, FEATURE_INDEX, FEATURE_NAMES, feature_docs
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


def test_history_columns_equal_the_former_code(synthetic):
    """The history columns, batched and per twin (``twins.history.features``, the reference above), equal the
    rows the former code computed (numba kernel and per-twin Python, 8bb0fd7; ``tests/risk/history_golden.py``):
    an independent check, now that both run the same batch code. atol only for a slope of 0 vs 1e-14."""
    from tests.risk.history_golden import GOLDEN, history_rows

    want = np.load(GOLDEN)
    twins, got = history_rows(synthetic[0])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, equal_nan=True)
    per_twin = np.array([list(history_features(t.history).values()) for t in twins])
    np.testing.assert_allclose(per_twin, want, rtol=1e-9, atol=1e-12, equal_nan=True)
    assert np.isnan(want).any() and (want[:, HISTORY_NAMES.index("inv_damage_cips08")] > 0).any()


def _final_twins(data):
    """The synthetic fleet's twins after the last reading, the weather lookup and the in-service dates."""
    from models.risk.synthetic import stream_twins

    p = dataset_paths(data)
    twins = list(stream_twins(data)[0].values())
    fleet = read_fleet(p["fleet"])
    return twins, read_weather(p["weather"]).lookup, [fleet[t.vin].in_service_ms for t in twins]


def _check(twins, lookup, services, now, got):
    from tests.risk.reference_features import reference_features

    want = np.array([reference_features(t, lookup, now_ms=now, in_service_ms=s, component_ages_days=None)
                     for t, s in zip(twins, services)])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, equal_nan=True)
    return want


def test_window_features_follow_the_ring_of_the_twin_scored(synthetic):
    """A VIN scored again the same day gets the same rows, and new ones when its twin was replaced by another
    history of the same day, when yesterday's ring row changed, or once the day rolled over (nothing about a
    VIN is kept between batches; until 2026-12 its 30-day ring summary was)."""
    from twins.history.daily import INV_MAX, N_COLS, N_DAYS, roll_day
    from twins.history.state import totals
    from twins.twin import copy_twin

    twins, lookup, services = _final_twins(synthetic[0])
    now = max(t.last_seen for t in twins) + 3_600_000
    daily = [FEATURE_INDEX[n] for n in FEATURE_NAMES if n.startswith("daily_") or n == "batt_soh_slope_pct_per_day"]
    first = feature_matrix(twins, lookup, now_ms=now, in_service_ms=services)
    again = feature_matrix(twins, lookup, now_ms=now, in_service_ms=services)
    np.testing.assert_array_equal(again, first)
    _check(twins, lookup, services, now, again)
    a, b = twins[0], twins[1]
    assert a.history.daily.day == b.history.daily.day
    # a rebuilt twin: another history under the same VIN, same day
    rebuilt = copy_twin(b)
    rebuilt.vin = a.vin
    want = _check([rebuilt], lookup, services[1:2], now, feature_matrix([rebuilt], lookup, now_ms=now,
                                                                       in_service_ms=services[1:2]))
    assert not np.allclose(want[0, daily], first[0, daily], equal_nan=True)
    # yesterday's ring row changed, nothing else (the hottest inverter day of the week, 50 K hotter)
    hotter = copy_twin(a)
    d = hotter.history.daily
    j = (d.day - 1) % N_DAYS * N_COLS + INV_MAX
    d.ring[j] += 500
    feature_matrix([a], lookup, now_ms=now, in_service_ms=services[:1])
    want = _check([hotter], lookup, services[:1], now, feature_matrix([hotter], lookup, now_ms=now,
                                                                     in_service_ms=services[:1]))
    assert want[0, FEATURE_INDEX["daily_inv_temp_max_7d"]] != first[0, FEATURE_INDEX["daily_inv_temp_max_7d"]]
    # the day rolled over: today's totals become yesterday's ring row
    rolled = copy_twin(a)
    h = rolled.history
    h.usage.distance_km += 42.0
    roll_day(h.daily, h.daily.day + 1, totals(h), h.battery.soh)
    feature_matrix([a], lookup, now_ms=now, in_service_ms=services[:1])
    want = _check([rolled], lookup, services[:1], now + DAY, feature_matrix([rolled], lookup, now_ms=now + DAY,
                                                                           in_service_ms=services[:1]))
    assert not np.allclose(want[0, daily], first[0, daily], equal_nan=True)


def test_exposures_follow_the_residency_list_and_the_weather(synthetic):
    """Residency lists are summed once per distinct list: a list changed in the middle (same length, same
    first and last interval) or weather that changed between batches gives new sums, equal to exposure()."""
    from models.risk.features import EXPOSURE_FEATURE_NAMES, ExposureCache
    from twins.residency import Residency, exposure

    twins, lookup, services = _final_twins(synthetic[0])
    now = max(t.last_seen for t in twins) + 3_600_000
    weather = slice(FEATURE_INDEX[EXPOSURE_FEATURE_NAMES[0]], FEATURE_INDEX[EXPOSURE_FEATURE_NAMES[-1]] + 1)
    t, k = next((t, k) for t in twins for k in range(1, len(t.residency.cells) - 1)
                if t.residency.ends[k] > t.residency.starts[k] and lookup(t.residency.cells[k], t.residency.ends[k]))
    cache = ExposureCache(lookup)                            # kept across batches, as the training replay does
    before = feature_matrix([t], cache, now_ms=now, in_service_ms=[None])
    t.residency.ends[k] -= 1                                 # same length, first and last interval
    after = feature_matrix([t], cache, now_ms=now, in_service_ms=[None])
    _check([t], lookup, [None], now, after)
    assert after[0, weather][3] == before[0, weather][3] - 1   # one observed hour less
    # the weather table changed between two batches: a new cache per batch (feature_matrix with a lookup)
    def warmer(cell, hour):
        obs = lookup(cell, hour)
        return None if obs is None else (obs[0] + 30.0, obs[1])

    feature_matrix([t], lookup, now_ms=now, in_service_ms=[None])
    hot = feature_matrix([t], warmer, now_ms=now, in_service_ms=[None])
    _check([t], warmer, [None], now, hot)
    assert hot[0, weather][0] > after[0, weather][0]
    # the vectorised sums against exposure(): empty, one interval, overlapping stays, spans over midnight
    # and over the 30-day window
    end = max(t.residency.ends)
    lists = [Residency(),
             Residency(["dhwf"], [end - 2000], [end]),
             Residency(["dhwf", "dhwc"], [end - 30, end - 2], [end - 1, end + 3]),
             Residency(["dhwf", "dhwc", "dhwf"], [end - 900, end - 50, end - 20], [end - 60, end - 30, end]),
             *(other.residency for other in twins)]
    got = ExposureCache(lookup).of_lists(lists)
    want = [[exposure(r, lookup)[n] for n in EXPOSURE_FEATURE_NAMES] for r in lists]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)
    assert (got[1:, 3] > 0).all() and got[2, 3] < 36           # observed, and each hour of the overlap once


def test_numbers_of_an_unexpected_type_are_read_as_numpy_would(synthetic):
    """Fields holding another type than declared (an int for a float, a float for an int, also in the ring and
    the trouble-code sightings) are read as np.array reads them and still equal the per-twin reference."""
    from twins.twin import copy_twin

    twins, lookup, services = _final_twins(synthetic[0])
    now = max(t.last_seen for t in twins) + 3_600_000
    odd = [copy_twin(t) for t in twins[:4]]
    for i, t in enumerate(odd):
        t.vin = f"ODDTYPES{i:09d}"
    odd[0].history.observed_s = int(odd[0].history.observed_s)
    odd[1].history.lv.wakes = float(odd[1].history.lv.wakes)
    odd[2].history.daily.ring[3] = 12.0
    odd[3].history.dtc.onset_ms[1] = 1.5
    odd[3].history.dtc.last_seen_ms[1] = odd[3].history.last_ms
    mixed = odd + twins[4:8]
    _check(mixed, lookup, services[:4] + services[4:8], now,
           feature_matrix(mixed, lookup, now_ms=now, in_service_ms=services[:4] + services[4:8]))


def test_residue_edge_cases_equal_the_per_twin_reference(synthetic):
    """The inverter residue as twins.history.inverter.cycle_summary counts it: a full stack of converging
    turning points plus a pending extreme (65 points: 64 half cycles), a pending extreme that closes ranges,
    a flat stack (no swing: no damage), no reversal yet (the extreme is not a point), and an empty stack."""
    from twins.history.inverter import RESIDUE_MAX
    from twins.twin import copy_twin

    twins, lookup, services = _final_twins(synthetic[0])
    now = max(t.last_seen for t in twins) + 3_600_000
    edge = [copy_twin(twins[i % len(twins)]) for i in range(5)]
    converging = [60.0 + (-1) ** k * (40.0 - 0.5 * k) for k in range(RESIDUE_MAX)]
    stacks = [(converging, 60.0 + 39.0 * (-1) ** RESIDUE_MAX * 0.01, 1),
              ([50.0, 20.0, 45.0, 25.0, 40.0], 110.0, 1),
              ([70.0, 70.0, 70.0], 70.0, -1),
              ([55.0], 55.0, 0),
              ([], 0.0, 0)]
    for i, (t, (stack, cand, direction)) in enumerate(zip(edge, stacks)):
        t.vin = f"RESIDUEEDGE{i:06d}"
        rf = t.history.inverter.rf
        rf.stack, rf.cand, rf.direction = list(stack), cand, direction
    got = feature_matrix(edge, lookup, now_ms=now, in_service_ms=services[:5])
    want = _check(edge, lookup, services[:5], now, got)
    damage, total = FEATURE_INDEX["inv_damage_cips08"], FEATURE_INDEX["inv_cycles_total"]
    residue = [want[i, total] - sum(t.history.inverter.bins_half) * 0.5 for i, t in enumerate(edge)]
    assert residue == [RESIDUE_MAX * 0.5, 2.5, 1.5, 0.0, 0.0]         # 70, 70, 70, 70: a full cycle of 0 K + a half
    stored = [t.history.inverter.damage for t in edge]
    assert want[0, damage] > stored[0] and want[1, damage] > stored[1]
    assert (want[2, damage], want[3, damage], want[4, damage]) == (stored[2], stored[3], stored[4])
