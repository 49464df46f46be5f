"""Errors of the inference engine (sub-root of :class:`FleetAssuranceError`)."""

from twins.errors import FleetAssuranceError


class InferenceError(FleetAssuranceError):
    """Data, artifacts, assemblies or arguments the inference engine cannot use; the message names them."""
