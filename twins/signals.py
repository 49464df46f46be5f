"""The telemetry signal catalogue: COVESA VSS 6.0 paths plus our documented overlay.

Every signal the twin tracks has a fixed slot index, so a twin stores its
last-known values and event times in two flat lists instead of a dict per
signal (smaller and faster). Units are VSS units.

>>> SIGNALS[SLOT["Vehicle.Speed"]].unit
'km/h'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["float", "bool", "str", "str_list"]


@dataclass(frozen=True)
class Signal:
    """One tracked signal: VSS path, attribute name on the decoded message, unit and range."""

    path: str
    attr: str
    kind: Kind
    unit: str
    minimum: float | None = None
    maximum: float | None = None
    overlay: bool = False
    description: str = ""


TB = "Vehicle.Powertrain.TractionBattery"

SIGNALS: tuple[Signal, ...] = (
    Signal("Vehicle.Speed", "speed", "float", "km/h", -250, 400, description="Vehicle speed."),
    Signal("Vehicle.CurrentLocation.Latitude", "latitude", "float", "degrees", -90, 90,
           description="Current latitude (WGS 84)."),
    Signal("Vehicle.CurrentLocation.Longitude", "longitude", "float", "degrees", -180, 180,
           description="Current longitude (WGS 84)."),
    Signal("Vehicle.TraveledDistance", "traveled_distance", "float", "km", 0, 5_000_000,
           description="Odometer."),
    Signal("Vehicle.Acceleration.Longitudinal", "accel_longitudinal", "float", "m/s^2", -100, 100,
           description="Longitudinal acceleration, positive forward."),
    Signal(f"{TB}.StateOfCharge.Current", "soc", "float", "percent", 0, 100,
           description="Physical state of charge of the traction battery."),
    Signal(f"{TB}.StateOfHealth", "soh", "float", "percent", 0, 100,
           description="Traction battery state of health."),
    Signal(f"{TB}.CurrentVoltage", "pack_voltage", "float", "V", 0, 1500,
           description="Traction battery terminal voltage."),
    Signal(f"{TB}.CurrentCurrent", "pack_current", "float", "A", -3000, 3000,
           description="Battery current; positive flows into the battery (charging), VSS convention."),
    Signal(f"{TB}.Temperature.Average", "pack_temp_avg", "float", "celsius", -60, 120,
           description="Average cell temperature."),
    Signal(f"{TB}.Temperature.Max", "pack_temp_max", "float", "celsius", -60, 120,
           description="Hottest cell temperature."),
    Signal(f"{TB}.Charging.IsCharging", "is_charging", "bool", "",
           description="True while charging."),
    Signal(f"{TB}.Charging.ChargeCurrent.DC", "charge_current_dc", "float", "A", 0, 3000,
           description="DC charge current (DC fast charging)."),
    Signal("Vehicle.Powertrain.ElectricMotor.Temperature", "motor_temp", "float", "celsius", -60, 250,
           description="Drive motor temperature."),
    Signal("Vehicle.Powertrain.ElectricMotor.EngineCoolant.Temperature", "motor_coolant_temp", "float",
           "celsius", -60, 200, description="Drive motor coolant temperature."),
    Signal("Vehicle.Powertrain.ElectricMotor.Power", "motor_power", "float", "kW", -1000, 1000,
           description="Motor power; negative while regenerating."),
    Signal("Vehicle.Exterior.AirTemperature", "air_temp", "float", "celsius", -80, 70,
           description="Outside air temperature."),
    Signal("Vehicle.LowVoltageBattery.CurrentVoltage", "lv_voltage", "float", "V", 0, 60,
           description="12 V battery voltage."),
    Signal("Vehicle.LowVoltageSystemState", "lv_system_state", "str", "",
           description="Low-voltage system state: UNDEFINED, LOCK, OFF, ACC, ON, START."),
    Signal("Vehicle.Diagnostics.DTCList", "dtc_list", "str_list", "",
           description="Active diagnostic trouble codes (SAE J2012 style, e.g. P0A7F)."),
    # --- Overlay: what VSS 6.0 lacks (see twins/vss_overlay.vspec) ---
    Signal("Vehicle.Powertrain.TractionInverter.Temperature", "inverter_temp", "float", "celsius", -60, 250,
           overlay=True, description="Traction inverter power-module (junction-side) temperature."),
    Signal("Vehicle.Software.Version", "software_version", "str", "", overlay=True,
           description="Vehicle software release string."),
    Signal("Vehicle.VehicleIdentification.Model", "model", "str", "",
           description="Vehicle model, e.g. 'Bolt EV'."),
    Signal("Vehicle.VehicleIdentification.Variant", "variant", "str", "", overlay=True,
           description="Model variant / trim, e.g. '2020 66 kWh'."),
)

#: VSS path -> slot index in a twin's value/time lists.
SLOT: dict[str, int] = {s.path: i for i, s in enumerate(SIGNALS)}
#: Decoded attribute name -> slot index.
ATTR_SLOT: dict[str, int] = {s.attr: i for i, s in enumerate(SIGNALS)}
N_SIGNALS = len(SIGNALS)

ALLOWED_LV_STATES = ("UNDEFINED", "LOCK", "OFF", "ACC", "ON", "START")
