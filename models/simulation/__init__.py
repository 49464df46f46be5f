"""Deterministic, vectorised EV-fleet telemetry simulator (pure Python + numpy).

>>> sim = FleetSimulator(3, seed=1)
>>> [m["seq"] for m in sim.step(1.0)]
[0, 0, 0]

See ``fleet.py`` for the step, ``telemetry.py`` for the message contract.
"""

from models.simulation.fleet import FleetSimulator
from models.simulation.regions import REGIONS, Region
from models.simulation.telemetry import SIGNAL_PATHS

__all__ = ["FleetSimulator", "REGIONS", "Region", "SIGNAL_PATHS"]
