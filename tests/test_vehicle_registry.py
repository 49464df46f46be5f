"""Home cells from the optional vehicle registry."""

from __future__ import annotations

import pytest

from streams.vehicle_registry import load_home_cells
from twins.errors import ConfigurationError


def test_registry_gives_home_cells(tmp_path):
    path = tmp_path / "fleet.csv"
    path.write_text("vin,home_lat,home_lon\n1G1FZ6S09L4100001,25.8,-80.2667\n5YJ3E1EA7KF000001,55.317,-160.517\n")
    assert load_home_cells(path, 4) == {"1G1FZ6S09L4100001": "dhwf", "5YJ3E1EA7KF000001": "b3vf"}
    assert load_home_cells(None, 4) == {}


def test_registry_errors_name_line_and_value(tmp_path):
    path = tmp_path / "fleet.csv"
    path.write_text("vin,home_lat,home_lon\n1G1FZ6S09L4100001,north,-80\n")
    with pytest.raises(ConfigurationError, match="line 2") as err:
        load_home_cells(path, 4)
    assert "north" in str(err.value)
    path.write_text("vin,lat\nX,1\n")
    with pytest.raises(ConfigurationError, match="missing columns"):
        load_home_cells(path, 4)


def test_registry_in_service_dates(tmp_path):
    from streams.vehicle_registry import load_registry

    path = tmp_path / "fleet.csv"
    path.write_text("vin,region,model,variant,in_service_date,home_lat,home_lon\n"
                    "1G1FZ6S09L4100001,miami,Bolt EV,2020 66 kWh,2022-05-01,25.8,-80.2667\n"
                    "5YJ3E1EA7KF000001,sand-point,Model 3,x,,55.317,-160.517\n")
    reg = load_registry(path, 4)
    assert reg.in_service_ms == {"1G1FZ6S09L4100001": 1_651_363_200_000}
    assert reg.home_cells["5YJ3E1EA7KF000001"] == "b3vf"
    path.write_text("vin,home_lat,home_lon,in_service_date\nX,1,2,May 2022\n")
    with pytest.raises(ConfigurationError, match="line 2"):
        load_registry(path, 4)
