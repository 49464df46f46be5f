"""Usage history: distance, driving hours, harsh accelerations and harsh braking.

Signals: ``Vehicle.TraveledDistance`` (km, odometer), ``Vehicle.Speed`` (km/h),
``Vehicle.Acceleration.Longitudinal`` (m/s², + forward).

* **Distance** is the sum of odometer increases between consecutive known values
  (not time-integrated, so it is complete across telemetry gaps). A decrease
  (odometer replaced or reset) or a jump above 2,000 km between two readings is
  treated as a discontinuity: not counted, the new value becomes the reference.
* **Driving hours**: time with speed > 1 km/h.
* **Harsh events** (edge-triggered, one per excursion): acceleration > 3 m/s²,
  braking < −4 m/s². Telematics scoring commonly places harsh thresholds around
  0.3-0.45 g (≈3-4.4 m/s²); braking uses the larger magnitude because ordinary
  stops reach ~3 m/s².
"""

from __future__ import annotations

import msgspec

MOVING_KMH = 1.0
HARSH_ACCEL_MS2 = 3.0
HARSH_BRAKE_MS2 = -4.0
MAX_ODO_STEP_KM = 2_000.0


class UsageState(msgspec.Struct, array_like=True, gc=False):
    """Usage accumulators (seconds internally)."""

    odo_prev: float = -1.0           # last known odometer (km); -1 = unknown
    distance_km: float = 0.0
    moving: bool = False
    driving_s: float = 0.0
    in_accel: bool = False
    in_brake: bool = False
    harsh_accel: int = 0
    harsh_brake: int = 0


def update_usage(u: UsageState, dt: float, odo_km: float | None, speed_kmh: float | None,
                 accel_ms2: float | None) -> None:
    """One reading: integrate driving time at the previous state, then take the new values."""
    if dt and u.moving:
        u.driving_s += dt
    if odo_km is not None and odo_km != u.odo_prev:  # unchanged: no step, nothing to write
        prev = u.odo_prev
        if prev >= 0.0:
            step = odo_km - prev
            if 0.0 < step <= MAX_ODO_STEP_KM:
                u.distance_km += step
        u.odo_prev = odo_km
    if speed_kmh is not None:
        moving = speed_kmh > MOVING_KMH
        if moving is not u.moving:
            u.moving = moving
    if accel_ms2 is not None:
        if accel_ms2 > HARSH_ACCEL_MS2:
            if not u.in_accel:
                u.in_accel = True
                u.harsh_accel += 1
        elif u.in_accel:
            u.in_accel = False
        if accel_ms2 < HARSH_BRAKE_MS2:
            if not u.in_brake:
                u.in_brake = True
                u.harsh_brake += 1
        elif u.in_brake:
            u.in_brake = False
