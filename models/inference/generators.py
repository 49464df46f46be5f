"""Black-box data generators for developing and testing the inference engine (deterministic, 1 Hz).

* :func:`cell_segments` — an equivalent-circuit lithium-ion cell: OCV(SoC) of the
  LG M50 (NMC811/graphite-SiOx) cell from the published electrode
  open-circuit-potential fits of Chen et al., J. Electrochem. Soc. 167 (2020)
  080534; a series resistance and 2 RC branches with Arrhenius temperature
  dependence; a lumped thermal node with ohmic (I²R) heating and Newton cooling
  to a time-varying ambient. It is driven by the shipped EPA UDDS/HWFET cycles
  through the fleet simulator's road-load model (a 2016 Leaf 30 kWh pack
  scaled to one cell), plus AC and DC fast-charge segments.
* :func:`inverter_segments` — the fleet simulator's own coolant-loop and
  inverter power-module thermal model (``models.simulation.thermal``) driven by
  the same cycles.

Outputs carry Gaussian measurement noise; initial SoC, RC and temperature
states are drawn at random and never given to the learner. ``ood=True``
yields the out-of-distribution test segments (hotter ambient than any
training segment; a higher charge rate than any training segment).

>>> segs = cell_segments(2, seed=1)
>>> [s["kind"] for s in segs], sorted(segs[0]["columns"])
(['drive', 'ac'], ['ambient_C', 'current_A', 'heat_W', 'speed_mps', 'temperature_C', 'voltage_V'])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.simulation import thermal
from models.simulation.drive_cycles import load_cycle
from models.simulation.ev_models import load_ev_models
from models.simulation.powertrain import charge_taper, motor_and_battery_kw, wheel_power_kw

CAPACITY_AH = 5.0
R0_OHM, R1_OHM, R2_OHM = 0.020, 0.008, 0.010
TAU1_S, TAU2_S = 15.0, 400.0
ARRHENIUS_K = 3500.0             # Ea/R of the resistances (doubles them between 25 °C and ~8 °C)
HEAT_CAPACITY_J_PER_K = 70.0
COOLING_W_PER_K = 0.15
NOISE = {"voltage_V": 0.002, "temperature_C": 0.1, "heat_W": 0.01, "coolant_C": 0.1, "inverter_C": 0.2}
TRAIN_AMBIENT_C = (0.0, 30.0)    # drive segments; the hot OOD test is above this
TRAIN_DC_C_RATE = (0.7, 1.5)     # DC fast charge; the OOD test charges faster
OOD_AMBIENT_C, OOD_DC_C_RATE = 38.0, 2.0


def ocv_v(soc: np.ndarray | float) -> np.ndarray:
    """Open-circuit voltage (V) of the LG M50 cell at SoC fraction ``soc`` (Chen et al. 2020 fits)."""
    soc = np.clip(np.asarray(soc, dtype=float), 0.0, 1.0)
    x = 0.0279 + soc * (0.9014 - 0.0279)      # graphite stoichiometry
    y = 0.9077 - soc * (0.9077 - 0.2661)      # NMC811 stoichiometry
    u_p = (-0.8090 * y + 4.4875 - 0.0428 * np.tanh(18.5138 * (y - 0.5542))
           - 17.7326 * np.tanh(15.7890 * (y - 0.3117)) + 17.5842 * np.tanh(15.9308 * (y - 0.3120)))
    u_n = (1.9793 * np.exp(-39.3631 * x) + 0.2482 - 0.0909 * np.tanh(29.8538 * (x - 0.1234))
           - 0.04478 * np.tanh(14.9159 * (x - 0.2769)) - 0.0205 * np.tanh(30.4444 * (x - 0.6103)))
    return u_p - u_n


def arrhenius(temp_c: np.ndarray | float) -> np.ndarray:
    """Resistance factor relative to 25 °C: ``exp(Ea/R·(1/T − 1/298.15 K))``."""
    return np.exp(ARRHENIUS_K * (1.0 / (np.asarray(temp_c) + 273.15) - 1.0 / 298.15))


def simulate_cell(current_a: np.ndarray, ambient_c: np.ndarray, soc0: float, temp0_c: float
                  ) -> dict[str, np.ndarray]:
    """Noise-free cell response at 1 s steps (current positive into the cell, VSS convention)."""
    n = len(current_a)
    soc, v1, v2, temp = soc0, 0.0, 0.0, temp0_c
    out = {k: np.empty(n) for k in ("voltage_V", "temperature_C", "heat_W", "soc")}
    e1, e2 = np.exp(-1.0 / TAU1_S), np.exp(-1.0 / TAU2_S)
    for k in range(n):
        i, f = current_a[k], float(arrhenius(temp))
        heat = i * i * R0_OHM * f + v1 * v1 / (R1_OHM * f) + v2 * v2 / (R2_OHM * f)
        out["voltage_V"][k] = ocv_v(soc) + i * R0_OHM * f + v1 + v2
        out["temperature_C"][k], out["heat_W"][k], out["soc"][k] = temp, heat, soc
        soc = soc + i / (3600.0 * CAPACITY_AH)
        v1 = i * R1_OHM * f + (v1 - i * R1_OHM * f) * e1
        v2 = i * R2_OHM * f + (v2 - i * R2_OHM * f) * e2
        t_ss = ambient_c[k] + heat / COOLING_W_PER_K
        temp = t_ss + (temp - t_ss) * np.exp(-COOLING_W_PER_K / HEAT_CAPACITY_J_PER_K)
    return out


def _route(rng: np.random.Generator, n_cycles: int) -> np.ndarray:
    """1 Hz speed trace of random EPA cycles with short stops in between, 60 s at rest first."""
    parts = [np.zeros(60)]
    for _ in range(n_cycles):
        parts += [load_cycle(str(rng.choice(["udds", "hwfet"]))).speed_mps, np.zeros(int(rng.integers(20, 120)))]
    return np.concatenate(parts)


def _vehicle(name: str) -> Any:
    return next(m for m in load_ev_models() if name in m.name)


def traction_kw(speed: np.ndarray, mass_scale: float, vehicle: str) -> tuple[np.ndarray, np.ndarray]:
    """Motor shaft power and pack draw (kW, discharge positive) of an EV model along ``speed``."""
    ev = _vehicle(vehicle)
    accel = np.gradient(speed)
    p_wheel = wheel_power_kw(ev, speed, accel) * mass_scale
    p_motor, p_batt, _ = motor_and_battery_kw(ev, p_wheel, speed)
    return p_motor, p_batt + ev.aux_base_w / 1000.0


def _ambient(rng: np.random.Generator, n: int, base: float) -> np.ndarray:
    """A slowly drifting ambient temperature (°C) around ``base``."""
    period = rng.uniform(3000.0, 9000.0)
    return base + rng.uniform(1.0, 3.0) * np.sin(2 * np.pi * np.arange(n) / period + rng.uniform(0, 6.3))


def cell_current_a(p_batt_kw: np.ndarray, vehicle: str = "Leaf") -> np.ndarray:
    """Current (A, positive charging) of one 5 Ah cell when the pack of ``vehicle`` draws ``p_batt_kw``."""
    ev = _vehicle(vehicle)
    pack_ah = ev.battery_kwh * 1000.0 / (ev.cells_series * 3.7)
    return -p_batt_kw * 1000.0 / (ev.cells_series * 3.7) * CAPACITY_AH / pack_ah


def _charge_current(rng: np.random.Generator, c_rate: float, dc: bool, soc0: float, n: int) -> np.ndarray:
    """CC charge tapering with SoC (the simulator's taper), SoC tracked by coulomb counting."""
    cur, soc = np.empty(n), soc0
    for k in range(n):
        cur[k] = c_rate * CAPACITY_AH * float(charge_taper(np.array([soc]), dc)[0]) if k >= 60 else 0.0
        soc += cur[k] / (3600.0 * CAPACITY_AH)
    return cur


def cell_segments(n: int, seed: int = 0, ood: bool = False, scale: float = 1.0) -> list[dict[str, Any]]:
    """``n`` cell segments cycling drive, AC charge, drive, DC charge; each a dict with ``columns``.

    ``scale`` stretches the segment lengths (drive cycles repeated, charge durations).
    With ``ood`` the drive segments run at 38 °C ambient and the DC charges at 2C.
    """
    rng = np.random.default_rng(seed)
    out = []
    for j in range(n):
        kind = ("drive", "ac", "drive", "dc")[j % 4]
        if kind == "drive":
            speed = _route(rng, max(1, int(round(rng.integers(2, 5) * scale))))
            _, p_batt = traction_kw(speed, rng.uniform(0.85, 1.2), "Leaf")
            current = cell_current_a(p_batt)
            base = OOD_AMBIENT_C if ood else rng.uniform(*TRAIN_AMBIENT_C)
            soc0 = rng.uniform(0.5, 0.95)
        else:
            length = int(rng.uniform(1500, 3000) * scale)
            rate = (OOD_DC_C_RATE if ood else rng.uniform(*TRAIN_DC_C_RATE)) if kind == "dc" else rng.uniform(0.15, 0.4)
            soc0 = rng.uniform(0.1, 0.4)
            current = _charge_current(rng, rate, kind == "dc", soc0, length)
            speed = np.zeros(length)
            base = rng.uniform(*TRAIN_AMBIENT_C)
        ambient = _ambient(rng, len(current), base)
        sim = simulate_cell(current, ambient, soc0, base + rng.normal(0.0, 2.0))
        cols = {"current_A": current, "ambient_C": ambient, "speed_mps": speed}
        cols |= {k: sim[k] + rng.normal(0.0, NOISE[k], len(current)) for k in ("voltage_V", "temperature_C", "heat_W")}
        out.append({"name": f"{'ood-' if ood else ''}{kind}-{j}", "kind": kind, "columns": cols})
    return out


def inverter_segments(n: int, seed: int = 0, ood: bool = False, scale: float = 1.0) -> list[dict[str, Any]]:
    """``n`` drive segments of the simulator's coolant loop + inverter model (inputs: motor power, speed, ambient).

    With ``ood`` the ambient is 38 °C, above every training segment (0..30 °C).
    """
    rng = np.random.default_rng(seed)
    bolt = _vehicle("Bolt")
    out = []
    for j in range(n):
        speed = _route(rng, max(1, int(round(rng.integers(2, 5) * scale))))
        p_motor, _ = traction_kw(speed, rng.uniform(0.85, 1.3), "Bolt")
        nn = len(speed)
        ambient = _ambient(rng, nn, OOD_AMBIENT_C if ood else rng.uniform(*TRAIN_AMBIENT_C))
        on = np.ones(1, dtype=bool)
        motor_loss_w = np.abs(p_motor) * 1000.0 * (1.0 - bolt.motor_efficiency(p_motor / bolt.motor_max_power_kw))
        inv_loss_w = thermal.inverter_loss_w(np.abs(p_motor))
        t_cool = np.array([ambient[0] + rng.uniform(0.0, 3.0)])
        t_inv = t_cool + rng.uniform(0.0, 2.0)
        cool, inv = np.empty(nn), np.empty(nn)
        for k in range(nn):
            cool[k], inv[k] = t_cool[0], t_inv[0]
            t_cool = thermal.coolant_step(t_cool, ambient[k:k + 1], motor_loss_w[k:k + 1] + inv_loss_w[k:k + 1],
                                          speed[k:k + 1], on, 1.0)
            t_inv = thermal.inverter_step(t_inv, t_cool, inv_loss_w[k:k + 1], np.ones(1), on, 1.0)
        cols = {"motor_kW": p_motor, "speed_mps": speed, "ambient_C": ambient,
                "coolant_C": cool + rng.normal(0, NOISE["coolant_C"], nn),
                "inverter_C": inv + rng.normal(0, NOISE["inverter_C"], nn)}
        out.append({"name": f"{'ood-' if ood else ''}inv-{j}", "kind": "drive", "columns": cols})
    return out


CELLS_PER_PACK = 192  # 2016 Leaf 30 kWh: 96s2p


def coupled_segments(n: int, seed: int = 0, scale: float = 1.0) -> list[dict[str, Any]]:
    """Cell segments whose pack heat (cell ``heat_W`` × 192 cells, noise-free) warms the simulator's coolant loop.

    Adds the ``coolant_C`` output (pump on, radiator to ambient, ram air from
    ``speed_mps``): the coupled system a cell twin linked to a loop twin reproduces.
    """
    rng = np.random.default_rng(seed + 1000)
    out = []
    for seg in cell_segments(n, seed, scale=scale):
        c = seg["columns"]
        heat = np.maximum(c["heat_W"], 0.0) * CELLS_PER_PACK
        t_cool, on, cool = np.array([c["ambient_C"][0] + rng.uniform(0.0, 2.0)]), np.ones(1, dtype=bool), []
        for k in range(len(heat)):
            cool.append(t_cool[0])
            t_cool = thermal.coolant_step(t_cool, c["ambient_C"][k:k + 1], heat[k:k + 1], c["speed_mps"][k:k + 1],
                                          on, 1.0)
        c["coolant_C"] = np.array(cool) + rng.normal(0.0, NOISE["coolant_C"], len(heat))
        out.append(seg)
    return out


def to_table(segments: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Concatenate generated segments into one table (``segment`` and ``time_s`` columns first)."""
    table: dict[str, list[Any]] = {"segment": [], "time_s": []}
    for seg in segments:
        n = len(next(iter(seg["columns"].values())))
        table["segment"] += [seg["name"]] * n
        table["time_s"] += list(np.arange(n, dtype=float))
        for k, v in seg["columns"].items():
            table.setdefault(k, []).extend(np.round(v, 6).tolist())
    return table


def to_dataset(segments: list[dict[str, Any]], inputs: list[str], outputs: list[str]) -> Any:
    """Generated segments decoded exactly as ``fleet infer`` decodes a file."""
    from models.inference.data import decode_table

    return decode_table(to_table(segments), inputs, outputs, segment_column="segment")


def write_csv(path: Any, segments: list[dict[str, Any]]) -> None:
    """Write generated segments as one CSV (the format ``fleet infer`` reads)."""
    table = to_table(segments)
    cols = list(table)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(",".join(cols) + "\n")
        for row in zip(*(table[c] for c in cols)):
            fh.write(",".join(str(v) for v in row) + "\n")
