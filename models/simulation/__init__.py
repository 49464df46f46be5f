"""Deterministic, vectorised EV-fleet telemetry simulator (pure Python + numpy).

>>> sim = FleetSimulator(3, seed=1)
>>> [m["seq"] for m in sim.step(1.0)]
[0, 0, 0]

See ``fleet.py`` for the step, ``telemetry.py`` for the message contract,
``reliability.py`` for component wear, failures and the workshop log
(``FleetSimulator.maintenance_events``) and ``history.py`` for writing a whole
operating history to disk (``python -m models.simulation.history OUT_DIR``).
"""

from models.simulation.fleet import FleetSimulator
from models.simulation.regions import REGIONS, Region
from models.simulation.telemetry import SIGNAL_PATHS

__all__ = ["FleetSimulator", "REGIONS", "Region", "SIGNAL_PATHS"]
