"""12 V (low-voltage) battery history: wake voltage, time below 12.0 V, low-voltage events, cold wakes.

Signals: ``Vehicle.LowVoltageBattery.CurrentVoltage`` (V), ``Vehicle.LowVoltageSystemState``
(UNDEFINED, LOCK, OFF, ACC, ON, START), ``Vehicle.Exterior.AirTemperature`` (°C).

* **Wake**: the system state goes from OFF/LOCK to ACC/ON/START (UNDEFINED or an
  unknown state leaves the last known sleep/awake state unchanged; the first state
  ever seen is not a wake). The *wake voltage* is the lowest 12 V reading from the
  wake reading through the next 10 s (the DC-DC converter takes over within
  seconds, so this is the battery's own voltage under the wake-up load). We keep
  the lowest wake voltage ever and the last one.
* **Time below 12.0 V** (h): a flooded/AGM lead-acid battery at rest reads about
  12.0-12.1 V at ~25 % state of charge and 12.6-12.7 V when full (typical BCI
  open-circuit-voltage tables), so time below 12.0 V is time deeply discharged.
* **Low-voltage events**: drops below 11.8 V, edge-triggered, re-armed once the
  voltage is back at or above 11.9 V (0.1 V hysteresis against sensor noise).
* **Cold wakes**: wakes with outside air below −10 °C (cold reduces the usable
  capacity and raises the internal resistance of lead-acid batteries).
"""

from __future__ import annotations

import math

import msgspec

LOW_V = 12.0
EVENT_V = 11.8
REARM_V = 11.9
COLD_WAKE_C = -10.0
WAKE_WINDOW_MS = 10_000
_ASLEEP = frozenset(("OFF", "LOCK"))
_AWAKE = frozenset(("ACC", "ON", "START"))
UNKNOWN, ASLEEP, AWAKE = 0, 1, 2


class LvState(msgspec.Struct, array_like=True, gc=False):
    """12 V accumulators (seconds internally)."""

    power: int = UNKNOWN             # last known sleep/awake state
    below: bool = False              # last voltage < 12.0 V
    below_s: float = 0.0
    latched: bool = False            # an 11.8 V event fired and has not re-armed
    events: int = 0
    min_v: float = math.inf
    wakes: int = 0
    cold_wakes: int = 0
    wake_until_ms: int = 0           # end of the current wake window
    wake_last_v: float = math.inf    # lowest voltage of the most recent wake
    wake_min_v: float = math.inf     # lowest wake voltage ever


def update_lv(lv: LvState, dt: float, ts_ms: int, voltage: float | None, state: str | None,
              air_c: float | None) -> None:
    """One reading: integrate the last interval, then detect wakes and voltage events."""
    if dt and lv.below:
        lv.below_s += dt
    if state is not None:
        if state in _AWAKE:
            if lv.power == ASLEEP:
                lv.wakes += 1
                lv.wake_until_ms = ts_ms + WAKE_WINDOW_MS
                lv.wake_last_v = math.inf
                if air_c is not None and air_c < COLD_WAKE_C:
                    lv.cold_wakes += 1
            if lv.power != AWAKE:
                lv.power = AWAKE
        elif state in _ASLEEP and lv.power != ASLEEP:
            lv.power = ASLEEP
    if voltage is None:
        return
    if ts_ms <= lv.wake_until_ms and voltage < lv.wake_last_v:
        lv.wake_last_v = voltage
        if voltage < lv.wake_min_v:
            lv.wake_min_v = voltage
    below = voltage < LOW_V
    if below is not lv.below:
        lv.below = below
    if voltage < lv.min_v:
        lv.min_v = voltage
    if lv.latched:
        if voltage >= REARM_V:
            lv.latched = False
    elif voltage < EVENT_V:
        lv.latched = True
        lv.events += 1
