"""A twin's state stays bounded however long a vehicle streams (pure twin, no broker)."""

from __future__ import annotations

from models.simulation import FleetSimulator
from twins.join import cell_of, note_residency
from twins.reading import reading_from_dict
from twins.twin import encode_twin, merge_into, new_twin


def test_twin_size_is_bounded_after_100k_readings():
    sim = FleetSimulator(1, seed=3, regions=["miami"])
    day = [sim.step(60.0)[0] for _ in range(1440)]  # one simulated day at 1/min, replayed with shifted times
    twin = new_twin(sim.vins[0])
    sizes = {}
    for i in range(1, 100_001):
        lap, k = divmod(i - 1, len(day))
        msg = dict(day[k], seq=i - 1, ts=day[k]["ts"] + lap * 86_400_000)  # 100k readings = ~69 days
        reading = reading_from_dict(msg)
        merge_into(twin, (reading,))
        note_residency(twin, reading.ts, reading.ts, 4, "dhwf")
        if i in (50_000, 100_000):
            sizes[i] = len(encode_twin(twin))
    assert twin.n_applied == 100_000
    assert sizes[100_000] < 2_000, sizes
    assert sizes[100_000] - sizes[50_000] <= 16, sizes  # no growth beyond integer widths


def test_vehicle_without_fix_joins_its_home_cell():
    twin = new_twin("1G1FZ6S09L4100001")
    assert cell_of(twin, 4, "b3vf") == "b3vf"
    merge_into(twin, (reading_from_dict({"schema": 1, "vin": twin.vin, "ts": 1_767_225_600_000, "seq": 0,
                                         "signals": {"Vehicle.CurrentLocation.Latitude": 25.8,
                                                     "Vehicle.CurrentLocation.Longitude": -80.2667}}),))
    assert cell_of(twin, 4, "b3vf") == "dhwf"
