"""Helpers for the history tests: build a twin-style values list from attribute names."""

from __future__ import annotations

from typing import Any

from twins.history import HistoryState, update_history
from twins.history.daily import N_COLS, N_DAYS, DailyState
from twins.signals import ATTR_SLOT, N_SIGNALS

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY_MS = 86_400_000


def vals(**signals: Any) -> list[Any]:
    """A merged-values list with the given signals (by decoded attribute name) and None elsewhere."""
    out: list[Any] = [None] * N_SIGNALS
    for attr, v in signals.items():
        out[ATTR_SLOT[attr]] = v
    return out


def feed(state: HistoryState, rows: list[tuple[float, dict[str, Any]]], t0: int = T0) -> HistoryState:
    """Apply ``(t_seconds, {attr: value})`` rows as readings at ``t0 + t`` (merged like a twin)."""
    merged: dict[str, Any] = {}
    for t_s, sig in rows:
        merged.update(sig)
        update_history(state, t0 + round(t_s * 1000), vals(**merged))
    return state


def synthetic_stream(n: int, step_s: float = 30.0, seed: int = 0, t0: int = T0):
    """``n`` readings ``(ts_ms, values)`` of a plausible vehicle: drives, DC charges, parks; every signal set."""
    import random

    rnd = random.Random(seed)
    odo, soc, soh, t_inv, t_mot, t_pack, lv_v = 12_000.0, 80.0, 97.0, 25.0, 25.0, 22.0, 12.6
    mode, left = "park", 0
    for i in range(n):
        if left <= 0:
            mode = rnd.choice(("drive", "drive", "park", "dc"))
            left = rnd.randint(5, 120)
        left -= 1
        drive, dc = mode == "drive", mode == "dc"
        speed = max(0.0, rnd.gauss(60.0, 25.0)) if drive else 0.0
        odo += speed * step_s / 3600.0
        current = -rnd.uniform(20, 250) if drive else (rnd.uniform(100, 300) if dc else 0.0)
        soc = min(100.0, max(0.0, soc + current * step_s / 3600.0 / 1.8))
        soh -= 1e-5
        t_inv += (rnd.gauss(0.4, 3.0) if drive else -0.3 * (t_inv - 25.0)) + rnd.gauss(0.0, 0.7)
        t_mot += (rnd.gauss(0.5, 2.0) if drive else -0.2 * (t_mot - 25.0))
        t_pack += 0.05 * ((40.0 if (drive or dc) else 20.0) - t_pack)
        lv_v = 14.1 if (drive or dc) else max(11.5, lv_v - rnd.uniform(0.0, 0.01)) if lv_v < 13 else 12.6
        yield t0 + round(i * step_s * 1000), vals(
            speed=round(speed, 1), traveled_distance=round(odo, 2), accel_longitudinal=round(rnd.gauss(0, 1.8), 2),
            soc=round(soc, 1), soh=round(soh, 2), pack_voltage=round(330 + soc * 0.8, 1),
            pack_current=round(current, 1), pack_temp_avg=round(t_pack, 1), pack_temp_max=round(t_pack + 2, 1),
            charge_current_dc=round(current, 1) if dc else 0.0, motor_temp=round(t_mot, 1),
            motor_power=round(-current * 0.35, 1), air_temp=round(rnd.uniform(-20, 40), 1),
            lv_voltage=round(lv_v, 2), lv_system_state="ON" if drive else ("ACC" if dc else "LOCK"),
            inverter_temp=round(min(max(t_inv, -40.0), 200.0), 1), is_charging=dc)


def row(d: DailyState, day: int) -> list[int] | None:
    """The stored ring row of an earlier ``day`` within the window, or ``None`` if outside / before the first day."""
    if not (d.day - N_DAYS < day < d.day) or day < d.first_day:
        return None
    i = (day % N_DAYS) * N_COLS
    return d.ring[i:i + N_COLS]
