"""One-off extraction of the real data files the fleet simulator ships with.

Run from the repository root (needs the optional ``extract`` extras, i.e.
fastsim 3.1.0 and pvlib 0.16.1; the simulator itself needs neither)::

    python -m models.data.extract_data

It writes, next to this file:

* ``drive_cycles/udds.csv``, ``drive_cycles/hwfet.csv`` -- the EPA Urban
  Dynamometer Driving Schedule and Highway Fuel Economy Test cycles (1 Hz,
  columns ``time_s,speed_mps``), as shipped inside fastsim 3.1.0
  (NREL, Apache-2.0; the cycles themselves are US EPA public test procedures),
  read with ``fastsim.Cycle.from_resource(name).to_dict()``.
* ``ev_models.json`` -- per battery-electric model: chassis, battery, motor and
  thermal parameters read from fastsim's vehicle resources
  (``fastsim.Vehicle.from_resource(name).to_dict()``), plus a few public
  spec-sheet values fastsim does not model (cell chemistry/series count,
  on-board and DC charge limits, pack resistance). Those are tagged
  ``"spec"`` and are approximate.
* ``weather/<site>.csv`` + ``weather/sites.json`` -- hourly typical-year
  extracts of three NREL TMY files shipped in ``pvlib/data`` (TMY3 Greensboro
  NC and Sand Point AK, TMY2 Miami FL), see ``weather/README.md``.

Output is deterministic: re-running produces byte-identical files.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

CYCLES = ("udds.csv", "hwfet.csv")

#: fastsim resource -> (model, variant, spec-sheet values fastsim lacks).
EV_RESOURCES: dict[str, dict[str, Any]] = {
    "2016 Nissan Leaf 30 kWh thrml.yaml": {
        "model": "Leaf", "variant": "2016 30 kWh", "make": "Nissan", "wmi": "1N4",
        "spec": {"chemistry": "NMC", "cells_series": 96, "pack_resistance_ohm": 0.10,
                 "onboard_charger_kw": 6.6, "max_dc_charge_kw": 50.0, "battery_cooling": "passive",
                 "software_prefix": "NL"},
    },
    "2020 Chevrolet Bolt EV thrml.yaml": {
        "model": "Bolt EV", "variant": "2020 66 kWh", "make": "Chevrolet", "wmi": "1G1",
        "spec": {"chemistry": "NMC", "cells_series": 96, "pack_resistance_ohm": 0.065,
                 "onboard_charger_kw": 7.2, "max_dc_charge_kw": 55.0, "battery_cooling": "liquid",
                 "software_prefix": "GB"},
    },
    "2022 Tesla Model 3 RWD thrml.yaml": {
        "model": "Model 3", "variant": "2022 RWD 54 kWh", "make": "Tesla", "wmi": "5YJ",
        "spec": {"chemistry": "LFP", "cells_series": 106, "pack_resistance_ohm": 0.05,
                 "onboard_charger_kw": 7.6, "max_dc_charge_kw": 170.0, "battery_cooling": "liquid",
                 "software_prefix": "2025"},
    },
    "2022_Renault_Zoe_ZE50_R135.yaml": {
        "model": "Zoe", "variant": "2022 ZE50 R135 55 kWh", "make": "Renault", "wmi": "VF1",
        "spec": {"chemistry": "NMC", "cells_series": 96, "pack_resistance_ohm": 0.08,
                 "onboard_charger_kw": 22.0, "max_dc_charge_kw": 50.0, "battery_cooling": "air",
                 "software_prefix": "RZ"},
    },
}

#: The battery thermal block fastsim lacks for the Zoe is scaled per kWh from this model.
THERMAL_REFERENCE = "2020 Chevrolet Bolt EV thrml.yaml"

#: site id -> (pvlib data file, format, short name).
WEATHER_FILES: dict[str, tuple[str, str, str]] = {
    "723170": ("723170TYA.CSV", "tmy3", "greensboro"),
    "703165": ("703165TY.csv", "tmy3", "sand-point"),
    "12839": ("12839.tm2", "tmy2", "miami"),
}


def extract_cycles(out_dir: Path) -> None:
    """Write the fastsim EPA cycles as ``time_s,speed_mps`` CSVs."""
    import fastsim

    out_dir.mkdir(parents=True, exist_ok=True)
    for name in CYCLES:
        cyc = fastsim.Cycle.from_resource(name).to_dict()
        rows = zip(cyc["time_seconds"], cyc["speed_meters_per_second"])
        with open(out_dir / name, "w", newline="") as fh:
            fh.write("time_s,speed_mps\n")
            for t, v in rows:
                fh.write(f"{float(t):.1f},{float(v):.6f}\n")


def _res_thermal(res: dict[str, Any]) -> dict[str, float] | None:
    thrml = res.get("thrml")
    if not isinstance(thrml, dict) or "RESLumpedThermal" not in thrml:
        return None
    block = thrml["RESLumpedThermal"]
    return {"heat_capacitance_j_per_k": block["heat_capacitance_joules_per_kelvin"],
            "conductance_to_amb_w_per_k": block["conductance_to_amb_watts_per_kelvin"]}


def _hvac_heat_source(hvac: Any) -> str:
    if not isinstance(hvac, dict):
        return "ResistanceHeater"
    block = next(iter(hvac.values()))
    return str(block.get("cabin_heat_source", block.get("heat_source", "ResistanceHeater")))


def extract_ev_models(out_path: Path) -> None:
    """Read the fastsim BEV resources and write ``ev_models.json``."""
    import fastsim

    raw = {name: fastsim.Vehicle.from_resource(name).to_dict() for name in EV_RESOURCES}
    ref = raw[THERMAL_REFERENCE]["pt_type"]["BEV"]["res"]
    ref_kwh = ref["energy_capacity_joules"] / 3.6e6
    ref_thermal = _res_thermal(ref)
    assert ref_thermal is not None
    models = []
    for name, meta in EV_RESOURCES.items():
        veh = raw[name]
        bev = veh["pt_type"]["BEV"]
        res, em, chassis = bev["res"], bev["em"], veh["chassis"]
        kwh = res["energy_capacity_joules"] / 3.6e6
        thermal = _res_thermal(res)
        thermal_source = "fastsim"
        if thermal is None:
            thermal = {k: v * kwh / ref_kwh for k, v in ref_thermal.items()}
            thermal_source = f"scaled per kWh from {THERMAL_REFERENCE}"
        eff = em["eff_interp_achieved"]["data"]
        models.append({
            "id": meta["model"].lower().replace(" ", "-"),
            "name": veh["name"], "make": meta["make"], "model": meta["model"],
            "variant": meta["variant"], "year": int(veh["year"]), "wmi": meta["wmi"],
            "fastsim_resource": name,
            "mass_kg": veh["mass_kilograms"],
            "drag_coef": chassis["drag_coef"],
            "frontal_area_m2": chassis["frontal_area_square_meters"],
            "rolling_resistance_coef": chassis["wheel_rr_coef"],
            "wheel_radius_m": chassis["wheel_radius_meters"],
            "wheel_inertia_kg_m2": chassis["wheel_inertia_kilogram_square_meters"],
            "num_wheels": chassis["num_wheels"],
            "battery_kwh": round(kwh, 4),
            "battery_min_soc": res["min_soc"], "battery_max_soc": res["max_soc"],
            "battery_max_power_kw": round(min(res["pwr_out_max_watts"], 1e6) / 1e3, 3),
            "motor_max_power_kw": round(em["pwr_out_max_watts"] / 1e3, 3),
            "motor_eff_power_frac": eff["grid"][0]["data"],
            "motor_eff": eff["values"]["data"],
            "transmission_eff": bev["transmission"]["eff_interp"],
            "aux_base_w": veh["pwr_aux_base_watts"],
            "cabin_heat_source": _hvac_heat_source(veh["hvac"]),
            "battery_heat_capacitance_j_per_k": round(thermal["heat_capacitance_j_per_k"], 3),
            "battery_conductance_to_amb_w_per_k": round(thermal["conductance_to_amb_w_per_k"], 5),
            "battery_thermal_source": thermal_source,
            **meta["spec"],
        })
    doc = {
        "source": "fastsim 3.1.0 vehicle resources (NREL, Apache-2.0), extracted by models/data/extract_data.py",
        "spec_fields": sorted(next(iter(EV_RESOURCES.values()))["spec"]),
        "spec_note": "spec_fields are approximate public spec-sheet values, not from fastsim",
        "models": models,
    }
    out_path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")


def _fmt(x: float) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1f}"


def extract_weather(out_dir: Path) -> None:
    """Write hourly typical-year extracts and ``sites.json`` from pvlib's TMY files."""
    import pvlib
    from pvlib import iotools

    data_dir = Path(pvlib.__file__).parent / "data"
    out_dir.mkdir(parents=True, exist_ok=True)
    sites = {}
    for site_id, (fname, fmt, short) in WEATHER_FILES.items():
        if fmt == "tmy3":
            df, meta = iotools.read_tmy3(data_dir / fname, map_variables=True)
            month = [int(s[:2]) for s in df["Date (MM/DD/YYYY)"]]
            day = [int(s[3:5]) for s in df["Date (MM/DD/YYYY)"]]
            hour = [int(s[:2]) for s in df["Time (HH:MM)"]]
            temp, rh = df["temp_air"].tolist(), df["relative_humidity"].tolist()
            wind, ghi = df["wind_speed"].tolist(), df["ghi"].tolist()
            precip = [None if p < 0 else float(p) for p in df["Lprecip depth (mm)"]]
            name, lat, lon = meta["Name"].strip('"'), meta["latitude"], meta["longitude"]
            state, tz, alt = meta["State"], meta["TZ"], meta["altitude"]
        else:
            df, meta = iotools.read_tmy2(data_dir / fname)
            month, day, hour = (df[c].astype(int).tolist() for c in ("month", "day", "hour"))
            temp = (df["DryBulb"] / 10.0).tolist()   # TMY2 stores tenths of a degree C
            rh, ghi = df["RHum"].tolist(), df["GHI"].tolist()
            wind = (df["Wspd"] / 10.0).tolist()      # tenths of m/s
            precip = [None] * len(temp)              # TMY2 has no precipitation depth field
            name, lat, lon = meta["City"], meta["latitude"], meta["longitude"]
            state, tz, alt = meta["State"], meta["TZ"], meta["altitude"]
        assert len(temp) == 8760, (fname, len(temp))
        with open(out_dir / f"{site_id}.csv", "w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["month", "day", "hour", "temp_air_c", "rh_pct", "wind_mps", "precip_mm", "ghi_wm2"])
            for row in zip(month, day, hour, temp, rh, wind, precip, ghi):
                m, d, h, t, r, ws, p, g = row
                w.writerow([m, d, h, _fmt(t), _fmt(r), _fmt(ws), _fmt(p), _fmt(g)])
        sites[site_id] = {
            "name": f"{name.title()}, {state}", "short": short, "latitude": round(float(lat), 4),
            "longitude": round(float(lon), 4), "elevation_m": float(alt), "tz_offset_h": float(tz),
            "source_file": f"pvlib/data/{fname}", "format": fmt.upper(),
        }
    (out_dir / "sites.json").write_text(json.dumps(sites, indent=2) + "\n")


def main() -> None:
    """Extract everything into this directory."""
    extract_cycles(HERE / "drive_cycles")
    extract_ev_models(HERE / "ev_models.json")
    extract_weather(HERE / "weather")
    print(f"wrote data files under {HERE}")


if __name__ == "__main__":
    main()
