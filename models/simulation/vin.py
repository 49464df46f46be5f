"""Deterministic, unique, check-digit-valid 17-character VINs (ISO 3779 / 49 CFR 565).

Layout: WMI (3, the make's real world manufacturer identifier) + VDS (5,
pseudo-random) + check digit + model-year code + plant code + 6-digit serial.
The serial is the vehicle index shifted by a seeded offset, so VINs are
unique for up to one million vehicles per simulator.

>>> make_vin("1G1", "FZ6S0", 2020, "4", 12345)
'1G1FZ6S07L4012345'
"""

from __future__ import annotations

import numpy as np

VIN_ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"  # no I, O, Q
MAX_SERIAL = 1_000_000
_TRANSLIT = {**{str(d): d for d in range(10)},
             **dict(zip("ABCDEFGH", range(1, 9))), **dict(zip("JKLMN", range(1, 6))), "P": 7, "R": 9,
             **dict(zip("STUVWXYZ", range(2, 10)))}
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY123456789"  # 2010 ... 2039


def check_digit(vin: str) -> str:
    """The position-9 check digit of a 17-character VIN (the current 9th character is ignored)."""
    total = sum(_TRANSLIT[c] * w for c, w in zip(vin, _WEIGHTS))
    rem = total % 11
    return "X" if rem == 10 else str(rem)


def year_code(year: int) -> str:
    """Model-year character (position 10) for 2010-2039."""
    if not 2010 <= year <= 2039:
        raise ValueError(f"model year must be in 2010..2039, got {year}")
    return _YEAR_CODES[year - 2010]


def make_vin(wmi: str, vds: str, year: int, plant: str, serial: int) -> str:
    """Assemble a VIN and fill in its check digit."""
    body = f"{wmi}{vds}0{year_code(year)}{plant}{serial % MAX_SERIAL:06d}"
    return body[:8] + check_digit(body) + body[9:]


def make_vins(rng: np.random.Generator, wmis: list[str], years: list[int]) -> list[str]:
    """One unique VIN per vehicle, from per-vehicle WMI and model year."""
    n = len(wmis)
    if n > MAX_SERIAL:
        raise ValueError(f"at most {MAX_SERIAL} vehicles get unique VINs, got {n}")
    letters = np.array(list(VIN_ALPHABET))
    vds = ["".join(row) for row in letters[rng.integers(0, len(VIN_ALPHABET), size=(n, 5))]]
    plants = letters[rng.integers(0, len(VIN_ALPHABET), size=n)]
    offset = int(rng.integers(0, MAX_SERIAL))
    return [make_vin(w, v, y, str(p), offset + i) for i, (w, v, y, p) in enumerate(zip(wmis, vds, years, plants))]
