"""Weather exposure from the vehicle's local weather: hot and cold degree-hours, humid hours.

Fed by :func:`update_weather` when the twin is joined with weather (air temperature
°C, relative humidity %), on its own clock (``last_ms``), independent of the
telemetry readings. Each interval is held at the weather known at its start and
capped at 1 h (hourly observations are the usual cadence; a longer gap is unknown
weather, not a longer exposure). Updates at or before ``last_ms`` are ignored.

* degree-hours above 35 °C: Σ max(0, T − 35) · Δt_h (K·h) — heat stress;
* degree-hours below −10 °C: Σ max(0, −10 − T) · Δt_h (K·h) — cold stress;
* hours with RH ≥ 80 %: Σ Δt_h while RH ≥ 80 % — the humidity level used as
  "high humidity" in, e.g., the 85 °C / 85 % RH damp-heat tests (IEC 60068-2-78)
  and humidity-driven corrosion models for electronics.

Degree-hours are the standard exposure integral above/below a base temperature
(as heating/cooling degree-days, ASHRAE Handbook — Fundamentals, ch. 14).
"""

from __future__ import annotations

import msgspec

HOT_C = 35.0
COLD_C = -10.0
HUMID_RH = 80.0
MAX_STEP_S = 3_600.0


class WeatherExposure(msgspec.Struct, array_like=True, gc=False):
    """Weather-exposure accumulators (K·s and s internally)."""

    last_ms: int = 0
    air_c: float | None = None       # weather at the last update; None = unknown
    rh: float | None = None
    hot_ks: float = 0.0
    cold_ks: float = 0.0
    humid_s: float = 0.0
    observed_s: float = 0.0


def update_weather_exposure(w: WeatherExposure, ts_ms: int, air_c: float | None,
                            rel_humidity: float | None) -> None:
    """Integrate the interval since the last weather update at the weather known then; store the new weather."""
    last = w.last_ms
    if ts_ms <= last:
        return
    if last:
        dt = (ts_ms - last) * 0.001
        if dt > MAX_STEP_S:
            dt = MAX_STEP_S
        t = w.air_c
        if t is not None:
            w.observed_s += dt
            if t > HOT_C:
                w.hot_ks += (t - HOT_C) * dt
            elif t < COLD_C:
                w.cold_ks += (COLD_C - t) * dt
        rh = w.rh
        if rh is not None and rh >= HUMID_RH:
            w.humid_s += dt
    w.last_ms = ts_ms
    w.air_c = air_c
    w.rh = rel_humidity
