"""Traction-battery history: Ah throughput, equivalent full cycles, DC fast charging, SoC and thermal exposure.

Signals (``Vehicle.Powertrain.TractionBattery.*``): ``CurrentCurrent`` (A, + = charging),
``StateOfCharge.Current`` (%), ``CurrentVoltage`` (V), ``Charging.ChargeCurrent.DC`` (A),
``Temperature.Average`` / ``Temperature.Max`` (°C), ``StateOfHealth`` (%).

* **Ah throughput** = ∫|I| dt (A·s stored, Ah reported), charge and discharge alike.
* **Equivalent full cycles** come from SoC, not from Ah: EFC = Σ|ΔSoC| / 200 %, i.e.
  one EFC is a full discharge plus a full charge (equal to "discharged Ah / capacity"
  when charge and discharge balance). This needs no pack capacity (which the
  catalogue does not carry) and is not inflated as capacity fades. ΔSoC is taken
  between consecutive known values, also across gaps (a SoC change is real
  throughput even if the interval is not integrated).
* **DC fast-charge sessions**: rising edges of ``ChargeCurrent.DC > 5 A``; DC energy
  ∫ I_dc · V_pack dt while active (not counted while the pack voltage is unknown).
* **SoC exposure**: hours with SoC > 90 % and SoC < 10 %.
* **Calendar-ageing proxy**: Arrhenius-weighted time at the average cell
  temperature (``Temperature.Max`` if the average is unknown),
  w(T) = exp(Ea/R · (1/T_ref − 1/T)), T_ref = 298.15 K, accumulated as
  *equivalent hours at 25 °C*. Ea = 45 kJ/mol gives w(35 °C)/w(25 °C) =
  exp(45000/8.314462618 · (1/298.15 − 1/308.15)) = 1.802 (≈1.8× per +10 K; 1.74× from
  35 to 45 °C). Calendar-fade activation energies reported for graphite-anode cells lie
  around 20-60 kJ/mol, e.g. Schmalstieg et al., J. Power Sources 257 (2014) 325-334
  (NMC, exp(−6976 K / T), ≈58 kJ/mol); 45 kJ/mol is a mid-range choice.
* **Peak** ``Temperature.Max`` (hottest cell), and the last known SoH (the SoH trend
  is computed from the daily ring in :mod:`twins.history.daily`).

Time integrals hold each interval at the values known at its start (see
:mod:`twins.history.state` for the dt cap).
"""

from __future__ import annotations

import math

import msgspec

EA_J_PER_MOL = 45_000.0
R_J_PER_MOL_K = 8.314462618
T_REF_K = 298.15
_EA_R = EA_J_PER_MOL / R_J_PER_MOL_K
_INV_TREF = 1.0 / T_REF_K
SOC_HIGH_PCT = 90.0
SOC_LOW_PCT = 10.0
DC_ACTIVE_A = 5.0
EFC_PCT = 200.0           # |ΔSoC| percent points per equivalent full cycle


class BatteryState(msgspec.Struct, array_like=True, gc=False):
    """Battery accumulators (seconds and A·s / kW·s internally; hours, Ah, kWh in features)."""

    abs_i: float = 0.0               # |current| at the last reading (A)
    ah_as: float = 0.0               # ∫|I| dt (A·s)
    soc_prev: float = -1.0           # last known SoC (%); -1 = unknown
    soc_swing_pct: float = 0.0       # Σ|ΔSoC| (percent points)
    soc_hi: bool = False
    soc_lo: bool = False
    soc_hi_s: float = 0.0
    soc_lo_s: float = 0.0
    dc_active: bool = False
    dc_kw: float = 0.0               # DC charge power at the last reading (kW)
    dc_sessions: int = 0
    dc_kws: float = 0.0              # ∫ P_dc dt (kW·s)
    arr_t: float = -math.inf         # temperature the cached weight belongs to (°C)
    arr_w: float = 0.0               # Arrhenius weight at the last reading; 0 = temperature unknown
    arr_eq_s: float = 0.0            # Σ w·dt (equivalent seconds at 25 °C)
    arr_obs_s: float = 0.0           # Σ dt with a known temperature
    cell_peak_c: float = -math.inf
    soh: float = -1.0                # last known SoH (%); -1 = unknown


def arrhenius_factor(temp_c: float) -> float:
    """Ageing acceleration relative to 25 °C: exp(Ea/R · (1/298.15 K − 1/T))."""
    return math.exp(_EA_R * (_INV_TREF - 1.0 / (temp_c + 273.15)))


def update_battery(b: BatteryState, dt: float, current: float | None, soc: float | None,
                   voltage: float | None, dc_current: float | None, t_avg: float | None,
                   t_max: float | None, soh: float | None) -> None:
    """One reading: integrate the last interval at the previous values, then take the new ones."""
    if dt:
        b.ah_as += b.abs_i * dt
        if b.soc_hi:
            b.soc_hi_s += dt
        elif b.soc_lo:
            b.soc_lo_s += dt
        w = b.arr_w
        if w:
            b.arr_eq_s += w * dt
            b.arr_obs_s += dt
        if b.dc_active:
            b.dc_kws += b.dc_kw * dt
    # Merged values mostly repeat the last reading's: writes are skipped when nothing changes
    # (a msgspec attribute write costs ~3x a read).
    if current is not None:
        abs_i = current if current >= 0.0 else -current
        if abs_i != b.abs_i:
            b.abs_i = abs_i
    if soc is not None and soc != b.soc_prev:
        prev = b.soc_prev
        if prev >= 0.0:
            b.soc_swing_pct += soc - prev if soc >= prev else prev - soc
        b.soc_prev = soc
        b.soc_hi = soc > SOC_HIGH_PCT
        b.soc_lo = soc < SOC_LOW_PCT
    if dc_current is not None and dc_current > DC_ACTIVE_A:
        if not b.dc_active:
            b.dc_active = True
            b.dc_sessions += 1
        b.dc_kw = dc_current * voltage * 0.001 if voltage is not None else 0.0
    elif b.dc_active:
        b.dc_active = False
    temp = t_avg if t_avg is not None else t_max
    if temp is not None and temp != b.arr_t:
        b.arr_t = temp
        b.arr_w = math.exp(_EA_R * (_INV_TREF - 1.0 / (temp + 273.15)))
    if t_max is not None and t_max > b.cell_peak_c:
        b.cell_peak_c = t_max
    if soh is not None and soh != b.soh:
        b.soh = soh
