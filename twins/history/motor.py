"""Drive-motor history: time above 120/150 °C, peak temperature and load hours.

Signals: ``Vehicle.Powertrain.ElectricMotor.Temperature`` (°C),
``Vehicle.Powertrain.ElectricMotor.Power`` (kW), ``Vehicle.Speed`` (km/h).

120 °C and 150 °C mark the upper part of a traction machine's winding range: the
insulation classes of IEC 60085 allow hot-spot temperatures of 155 °C (class F)
and 180 °C (class H), and insulation life roughly halves per +10 K (the Montsinger
rule, cf. IEC 60034-18), so time spent close to the class limit is what wears it.

The motor is *under load* while |Power| > 1 kW; if the power signal is unknown,
while the vehicle moves faster than 1 km/h.
"""

from __future__ import annotations

import math

import msgspec

HOT_120_C = 120.0
HOT_150_C = 150.0
LOAD_KW = 1.0
MOVING_KMH = 1.0


class MotorState(msgspec.Struct, array_like=True, gc=False):
    """Motor accumulators (seconds internally)."""

    t_prev: float = -math.inf        # last known motor temperature (°C)
    peak_c: float = -math.inf
    above120_s: float = 0.0
    above150_s: float = 0.0
    loaded: bool = False
    load_s: float = 0.0


def update_motor(m: MotorState, dt: float, temp: float | None, power_kw: float | None,
                 speed_kmh: float | None) -> None:
    """One reading: integrate the last interval at the previous state, then take the new values."""
    if dt:
        t_prev = m.t_prev
        if t_prev > HOT_120_C:
            m.above120_s += dt
            if t_prev > HOT_150_C:
                m.above150_s += dt
        if m.loaded:
            m.load_s += dt
    if temp is not None and temp != m.t_prev:
        m.t_prev = temp
        if temp > m.peak_c:
            m.peak_c = temp
    if power_kw is not None:
        loaded = power_kw > LOAD_KW or power_kw < -LOAD_KW
    else:
        loaded = speed_kmh is not None and speed_kmh > MOVING_KMH
    if loaded is not m.loaded:  # skip the (costlier) attribute write when unchanged
        m.loaded = loaded
