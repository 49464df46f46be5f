"""Composition: linked twins reproduce the coupled generator; bad links are rejected by name."""

from __future__ import annotations

import numpy as np
import pytest

from models.inference import assembly
from models.inference.artifact import load
from models.inference.assembly import build, load_assembly, simulate
from models.inference.errors import InferenceError

LINKED = """
[twins.cell]
artifact = "{cell}"
[twins.loop]
artifact = "{loop}"
[[links]]
from = "cell.heat_W"
to = "loop.heat_W"
[inputs]
"cell.current_A" = "current_A"
"cell.ambient_C" = "ambient_C"
"loop.ambient_C" = "ambient_C"
"loop.speed_mps" = "speed_mps"
"""


def _write(tmp_path, cell_fit, loop_fit, text=LINKED):
    path = tmp_path / "asm.toml"
    path.write_text(text.format(cell=cell_fit[1], loop=loop_fit[1]))
    return path


def test_linked_twins_reproduce_the_coupled_generator(cell_fit, loop_fit, coupled, tmp_path):
    asm = load_assembly(_write(tmp_path, cell_fit, loop_fit))
    assert asm.order == ("cell", "loop")
    errors, unlinked = [], []
    for seg in coupled[1]:
        c = seg["columns"]
        signals = {k: c[k] for k in ("current_A", "ambient_C", "speed_mps")}
        initial = {"cell.voltage_V": c["voltage_V"][0], "cell.temperature_C": c["temperature_C"][0],
                   "cell.heat_W": c["heat_W"][0], "loop.coolant_C": c["coolant_C"][0]}
        out = simulate(asm, signals, initial)
        errors.append(out["loop.coolant_C"] - c["coolant_C"])
        # the same loop twin with no heat linked in: what the link is worth
        loop = load(loop_fit[1])
        u = np.stack([np.zeros_like(c["ambient_C"]), c["ambient_C"], c["speed_mps"]], 1)
        unlinked.append(loop.predict(u, np.array([c["coolant_C"][0]]))[:, 0] - c["coolant_C"])
    rmse = float(np.sqrt(np.mean(np.concatenate(errors) ** 2)))
    rmse_unlinked = float(np.sqrt(np.mean(np.concatenate(unlinked) ** 2)))
    assert rmse < 1.1, (rmse, rmse_unlinked)  # kelvin: the stated composition error (measured 1.01 K; noise 0.1 K)
    assert rmse < 0.75 * rmse_unlinked  # the link carries the cell heat: unlinked, the loop twin errs 1.48 K


def test_unit_mismatch_unknown_names_and_unfed_inputs_name_the_link(cell_fit, loop_fit, tmp_path):
    twins = {"cell": load(cell_fit[1]), "loop": load(loop_fit[1])}
    feeds = {"cell.current_A": "current_A", "cell.ambient_C": "ambient_C", "loop.ambient_C": "ambient_C",
             "loop.speed_mps": "speed_mps"}
    with pytest.raises(InferenceError, match=r"link 1 \(cell.voltage_V -> loop.heat_W\): unit mismatch, "
                                             r"cell.voltage_V is in 'V' but loop.heat_W expects 'W'"):
        build({"links": [{"from": "cell.voltage_V", "to": "loop.heat_W"}], "inputs": feeds}, twins)
    with pytest.raises(InferenceError, match=r"link 1 \(pump.heat_W -> loop.heat_W\): unknown twin 'pump'"):
        build({"links": [{"from": "pump.heat_W", "to": "loop.heat_W"}], "inputs": feeds}, twins)
    with pytest.raises(InferenceError, match=r"link 1 \(cell.heat -> loop.heat_W\): 'cell' has no output 'heat'"):
        build({"links": [{"from": "cell.heat", "to": "loop.heat_W"}], "inputs": feeds}, twins)
    with pytest.raises(InferenceError, match=r"input loop.heat_W is fed by no link"):
        build({"links": [], "inputs": feeds}, twins)


def test_algebraic_loop_is_rejected_naming_its_links(loop_fit):
    loop = load(loop_fit[1])
    doc = {"links": [{"from": "a.coolant_C", "to": "b.ambient_C"}, {"from": "b.coolant_C", "to": "a.ambient_C"}],
           "inputs": {"a.heat_W": "h", "a.speed_mps": "v", "b.heat_W": "h", "b.speed_mps": "v"}}
    with pytest.raises(InferenceError, match=r"algebraic loop through links a.coolant_C -> b.ambient_C, "
                                             r"b.coolant_C -> a.ambient_C"):
        build(doc, {"a": loop, "b": loop})


def test_assemble_cli_check_and_simulate_a_scenario(cell_fit, loop_fit, tmp_path, capsys):
    path = _write(tmp_path, cell_fit, loop_fit)
    assembly.main([str(path), "--check"])
    assert "ok (2 twins, 1 links, order cell -> loop)" in capsys.readouterr().out
    scen = tmp_path / "scen.toml"
    scen.write_text('cycles = ["udds"]\nvehicle = "Leaf"\nambient_C = [20.0, 24.0]\n[initial]\n'
                    '"cell.voltage_V" = 3.9\n"cell.temperature_C" = 20.0\n"cell.heat_W" = 0.0\n'
                    '"loop.coolant_C" = 20.0\n')
    out = tmp_path / "run.csv"
    assembly.main([str(path), "--simulate", str(scen), "--out", str(out)])
    rows = out.read_text().splitlines()
    assert rows[0].split(",")[-4:] == ["cell.voltage_V", "cell.temperature_C", "cell.heat_W", "loop.coolant_C"]
    assert len(rows) == 1 + 60 + 1370 + 60  # rest, the 1,370 s UDDS, rest
    coolant = np.array([float(r.split(",")[-1]) for r in rows[1:]])
    assert 18.0 < coolant.min() and coolant.max() < 30.0
    bad = tmp_path / "bad.toml"
    bad.write_text(LINKED.format(cell=cell_fit[1], loop=loop_fit[1]).replace('"cell.heat_W"', '"cell.voltage_V"'))
    with pytest.raises(SystemExit):
        assembly.main([str(bad), "--check"])
    assert "unit mismatch" in capsys.readouterr().err
