"""FMI 2.0 export: the FMU simulated by fmpy gives the native model's outputs."""

from __future__ import annotations

import numpy as np

from models.inference.artifact import load
from models.inference.fmu import export_fmu
from models.inference.generators import to_dataset
from tests.inference.conftest import CELL_IN, CELL_OUT


def test_exported_fmu_matches_the_native_twin(cell_fit, coupled, tmp_path):
    from fmpy import extract, read_model_description
    from fmpy.fmi2 import FMU2Slave

    fmu = export_fmu(cell_fit[1], tmp_path / "cell.fmu")
    md = read_model_description(str(fmu))
    assert md.fmiVersion == "2.0" and md.coSimulation is not None
    vr = {v.name: v.valueReference for v in md.modelVariables}
    seg = to_dataset(coupled[1][:1], CELL_IN, CELL_OUT).segments[0]
    u, y = seg.u[:400], seg.y[:400]
    native = load(cell_fit[1]).predict(u, y[0])
    ins, outs = [vr[n] for n in CELL_IN], [vr[n] for n in CELL_OUT]
    slave = FMU2Slave(guid=md.guid, unzipDirectory=extract(str(fmu)),
                      modelIdentifier=md.coSimulation.modelIdentifier, instanceName="cell")
    slave.instantiate()
    slave.setupExperiment(startTime=0.0)
    slave.enterInitializationMode()
    slave.setReal([vr[f"y0_{n}"] for n in CELL_OUT], list(y[0]))
    slave.setReal(ins, list(u[0]))
    slave.exitInitializationMode()
    got = []
    for k in range(len(u)):
        slave.setReal(ins, list(u[k]))
        got.append(slave.getReal(outs))
        slave.doStep(currentCommunicationPoint=float(k), communicationStepSize=1.0)
    slave.terminate()
    slave.freeInstance()
    np.testing.assert_allclose(np.array(got), native, rtol=1e-6, atol=1e-9)
