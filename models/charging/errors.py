"""Errors of the charging package, under the project root ``FleetAssuranceError``.

>>> issubclass(UnknownSession, ChargingError) and issubclass(InfeasibleNetwork, ValueError)
True
"""

from __future__ import annotations

from twins.errors import FleetAssuranceError

__all__ = ["ChargingError", "InfeasibleNetwork", "UnknownSession"]


class ChargingError(FleetAssuranceError):
    """Root of the charging package's errors."""


class InfeasibleNetwork(ChargingError, ValueError):
    """A site's electrical tree that cannot exist (missing parent/panel, a cycle, a phase the panel lacks)."""


class UnknownSession(ChargingError, KeyError):
    """A planner call names a vehicle that has no session at the site."""

    def __init__(self, vin: str, site_id: str, call: str) -> None:
        self.vin, self.site_id = vin, site_id
        super().__init__(f"{call}: vehicle {vin!r} has no session at site {site_id!r}")

    def __str__(self) -> str:  # KeyError would quote the message like a key
        return str(self.args[0])
