"""The shipped data files are real, complete, and the simulator reads only them at run time."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from models.simulation.drive_cycles import build_routes, load_cycle
from models.simulation.ev_models import load_ev_models

ROOT = Path(__file__).resolve().parents[2]
SIM_DIR = ROOT / "models" / "simulation"
RUNTIME_FORBIDDEN = {"fastsim", "pvlib", "pandas", "streams", "faust", "kafka", "aiokafka", "prometheus_client",
                     "twins", "yaml"}


def test_epa_cycles_have_their_published_lengths() -> None:
    udds, hwfet = load_cycle("udds"), load_cycle("hwfet")
    assert len(udds.time_s) == 1370 and len(hwfet.time_s) == 766
    assert udds.distance_m == pytest.approx(11_990, rel=0.01)    # 7.45 mi
    assert hwfet.distance_m == pytest.approx(16_507, rel=0.01)   # 10.26 mi
    assert udds.speed_mps.max() == pytest.approx(25.35, abs=0.05)  # 56.7 mph


def test_ev_models_carry_the_fastsim_parameters() -> None:
    models = {m.model: m for m in load_ev_models()}
    assert set(models) == {"Leaf", "Bolt EV", "Model 3", "Zoe"}
    bolt = models["Bolt EV"]
    assert bolt.variant == "2020 66 kWh" and bolt.battery_kwh == pytest.approx(66.0)
    assert bolt.drag_coef == pytest.approx(0.309) and bolt.mass_kg == pytest.approx(1626.129)
    assert bolt.motor_max_power_kw == pytest.approx(149.14, abs=0.01)
    for m in models.values():
        assert 1400 < m.mass_kg < 2000 and 0.2 < m.drag_coef < 0.4 and 2.0 < m.frontal_area_m2 < 3.0
        assert 0.005 < m.rolling_resistance_coef < 0.012 and 25 < m.battery_kwh < 70
        assert len(m.motor_eff) == len(m.motor_eff_power_frac) and 0.8 < min(m.motor_eff) <= max(m.motor_eff) < 1
    doc = json.loads((ROOT / "models" / "data" / "ev_models.json").read_text())
    assert "fastsim" in doc["source"]


def test_routes_are_cyclic_stop_to_stop_and_deterministic() -> None:
    a, b = build_routes(11), build_routes(11)
    assert (a.speed_mps == b.speed_mps).all() and a.speed_mps.shape == (4, 6 * 3600)
    assert (a.speed_mps[:, 0] == 0).all() and (a.speed_mps[:, -1] == 0).all()
    per_route_km = a.cum[:, -1, 0] / 1000.0
    assert ((per_route_km > 120) & (per_route_km < 320)).all()   # 6 h at 20-53 km/h average
    assert not (build_routes(12).speed_mps == a.speed_mps).all()


def test_weather_readme_names_source_and_licence() -> None:
    text = (ROOT / "models" / "data" / "weather" / "README.md").read_text()
    for needle in ("NREL", "pvlib", "BSD-3-Clause", "723170", "703165", "12839"):
        assert needle in text


def test_simulator_source_imports_no_runtime_heavyweights() -> None:
    for path in SIM_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        roots |= {n.module.split(".")[0] for n in ast.walk(tree)
                  if isinstance(n, ast.ImportFrom) and n.module and n.level == 0}
        assert not roots & RUNTIME_FORBIDDEN, (path.name, roots & RUNTIME_FORBIDDEN)


def test_running_the_simulator_loads_no_heavyweight_modules() -> None:
    code = ("import sys; from models.simulation import FleetSimulator; FleetSimulator(3).step(1.0); "
            "print(sorted({m.split('.')[0] for m in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = set(ast.literal_eval(out.stdout.strip()))
    assert not loaded & RUNTIME_FORBIDDEN
