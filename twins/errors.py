"""The project's single exception root and its direct descendants.

Every error we raise on purpose derives from :class:`FleetAssuranceError`, and its
message says what was wrong, the offending value, and what the operator can do.
"""


class FleetAssuranceError(Exception):
    """Root of all Fleet Assurance errors."""


class InvalidReading(FleetAssuranceError):
    """A telemetry record that does not satisfy the contract (``schemas/telemetry.schema.json``).

    ``field`` is a JSON path such as ``$.signals.Vehicle.Speed`` and ``value`` the
    offending value when it could be recovered from the record. ``code`` is the short,
    bounded reason a dead letter and its counter carry (see :data:`twins.decoding.REASONS`).
    """

    def __init__(self, reason: str, field: str = "$", value: object = None, code: str = "invalid") -> None:
        self.reason = reason
        self.field = field
        self.value = value
        self.code = code
        super().__init__(reason)


class ConfigurationError(FleetAssuranceError):
    """Settings or configuration files that cannot be used; the message names the setting."""


class UnknownVehicle(FleetAssuranceError):
    """A VIN that no twin exists for."""
