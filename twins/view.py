"""JSON-ready views of twins for the HTTP API (pure: the caller passes ``now``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twins.signals import SIGNALS, SLOT
from twins.history import features
from twins.maintenance import COMPONENTS, utc_iso
from twins.residency import HourlyLookup, exposure
from twins.risk import risk_view
from twins.twin import Twin, is_stale
from twins.weather import CellWeather, context

_MODEL = SLOT["Vehicle.VehicleIdentification.Model"]
_VARIANT = SLOT["Vehicle.VehicleIdentification.Variant"]
_SOFTWARE = SLOT["Vehicle.Software.Version"]


def twin_view(twin: Twin, now_ms: int, stale_after_ms: int,
              cell_weather: Callable[[str], CellWeather | None] | None = None,
              hourly: HourlyLookup | None = None) -> dict[str, Any]:
    """Everything the API shows for one vehicle; the callables look up weather by cell and hour."""
    current = cell_weather(twin.residency.current) if cell_weather and twin.residency.current else None
    return {
        "vin": twin.vin,
        "status": "stale" if is_stale(twin, now_ms, stale_after_ms) else "online",
        "model": twin.values[_MODEL],
        "variant": twin.values[_VARIANT],
        "software_version": twin.values[_SOFTWARE],
        "first_seen_ms": twin.first_seen,
        "last_seen_ms": twin.last_seen,
        "messages": {
            "applied": twin.n_applied,
            "duplicate": twin.n_duplicate,
            "too_late": twin.n_too_late,
            "seq_resets": twin.n_seq_resets,
            "max_seq": twin.seq_max,
        },
        "signals": {
            sig.path: {"value": twin.values[i], "ts": twin.times[i], "unit": sig.unit}
            for i, sig in enumerate(SIGNALS)
            if twin.times[i]
        },
        "risk": risk_view(twin.risk),
        "history": history_features(twin),
        "maintenance": {
            c: {"last_failure": utc_iso(f) if f else None, "last_service": utc_iso(v) if v else None}
            for c, f, v in zip(COMPONENTS, twin.maintenance.failed_ms, twin.maintenance.serviced_ms)
        },
        "weather": {
            "cell": twin.residency.current or None,
            "context": context(current) if current is not None else None,
            "exposure_30d": exposure(twin.residency, hourly or (lambda cell, hour: None)),
        },
    }


def history_features(twin: Twin) -> dict[str, float | None]:
    """Operating-history features (``twins.history.FEATURES``); unknown values as ``None`` (JSON null)."""
    return {k: (None if v != v else v) for k, v in features(twin.history).items()}


def twin_brief(twin: Twin, now_ms: int, stale_after_ms: int) -> dict[str, Any]:
    """One line per vehicle for listings (``twin``: a twin or its brief, ``twins.brief``)."""
    return {
        "vin": twin.vin,
        "status": "stale" if is_stale(twin, now_ms, stale_after_ms) else "online",
        "model": twin.values[_MODEL],
        "last_seen_ms": twin.last_seen,
        "messages": twin.n_applied,
    }


class FleetSummary:
    """Running fleet counts over a set of twins (mergeable across workers)."""

    def __init__(self) -> None:
        self.vehicles = 0
        self.online = 0
        self.stale = 0
        self.messages_applied = 0
        self.messages_duplicate = 0
        self.messages_too_late = 0
        self.by_model: dict[str, int] = {}

    def add(self, twin: Twin, now_ms: int, stale_after_ms: int) -> None:
        """Count one twin (or its brief, ``twins.brief``)."""
        self.vehicles += 1
        if is_stale(twin, now_ms, stale_after_ms):
            self.stale += 1
        else:
            self.online += 1
        self.messages_applied += twin.n_applied
        self.messages_duplicate += twin.n_duplicate
        self.messages_too_late += twin.n_too_late
        model = twin.values[_MODEL] or "unknown"
        self.by_model[model] = self.by_model.get(model, 0) + 1

    def merge(self, other: dict[str, Any]) -> None:
        """Add another worker's :meth:`as_dict` output."""
        for key in ("vehicles", "online", "stale", "messages_applied", "messages_duplicate", "messages_too_late"):
            setattr(self, key, getattr(self, key) + int(other.get(key, 0)))
        for model, n in other.get("by_model", {}).items():
            self.by_model[model] = self.by_model.get(model, 0) + int(n)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready counts."""
        return {
            "vehicles": self.vehicles,
            "online": self.online,
            "stale": self.stale,
            "messages_applied": self.messages_applied,
            "messages_duplicate": self.messages_duplicate,
            "messages_too_late": self.messages_too_late,
            "by_model": dict(sorted(self.by_model.items())),
        }
