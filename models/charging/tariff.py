"""Time-of-use tariffs (acnportal's JSON format) to per-slot prices, peak windows and demand charges.

The tariff files in ``models/data/charging/tariffs/`` are copied verbatim from
the acnportal 0.3.3 wheel (see the README there); acnportal is not imported.
A schedule applies on the days of its ``dow_mask`` (WEEKDAYS, WEEKENDS or ALL)
between ``effective_start`` and ``effective_end`` (MM-DD, may wrap the year);
``times`` are local wall-clock hours at which ``tariffs`` ($/kWh) start.
Holidays are not modelled. Days are local calendar days, so DST days have 23 or
25 hours (92 or 100 quarter-hour slots).

>>> from datetime import date
>>> t = load_tariff("sce_tou_ev_4_march_2019")
>>> t.name, t.price_at_hour(date(2019, 3, 5), 13.0), t.price_at_hour(date(2019, 3, 5), 2.0)
('SCE TOU-EV-4', 0.0869, 0.06087)
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import msgspec

from models.charging.types import GridSignals, Window

__all__ = ["TariffSchedule", "Tariff", "load_tariff", "available_tariffs", "tariff_signals"]

_PKG = "models.data.charging.tariffs"
_MASKS = {"WEEKDAYS": (True,) * 5 + (False,) * 2, "WEEKENDS": (False,) * 5 + (True,) * 2, "ALL": (True,) * 7}


def _month_day(text: str, field: str) -> tuple[int, int]:
    try:
        m, d = (int(x) for x in text.split("-"))
        date(2000, m, d)
    except ValueError:
        raise ValueError(f"TariffSchedule.{field} must be MM-DD, got {text!r}") from None
    return m, d


class TariffSchedule(msgspec.Struct, frozen=True):
    """One season x day-type block of a tariff (acnportal field names)."""

    id: str
    effective_start: str
    effective_end: str
    dow_mask: str
    times: list[float]
    tariffs: list[float]
    demand_charge: float

    def __post_init__(self) -> None:
        _month_day(self.effective_start, "effective_start")
        _month_day(self.effective_end, "effective_end")
        if self.dow_mask not in _MASKS:
            raise ValueError(f"TariffSchedule.dow_mask must be one of {sorted(_MASKS)}, got {self.dow_mask!r}")
        if len(self.times) != len(self.tariffs) or not self.times:
            raise ValueError(f"TariffSchedule.times and tariffs must be non-empty and equally long ({self.id})")
        if self.times[0] != 0 or any(b <= a for a, b in zip(self.times, self.times[1:])) or self.times[-1] >= 24:
            raise ValueError(f"TariffSchedule.times must start at 0 and increase below 24, got {self.times}")

    def applies(self, day: date) -> bool:
        """Whether this block is in effect on local calendar day ``day``."""
        if not _MASKS[self.dow_mask][day.weekday()]:
            return False
        start, end, md = (_month_day(self.effective_start, "effective_start"),
                          _month_day(self.effective_end, "effective_end"), (day.month, day.day))
        return start <= md <= end if start <= end else (md >= start or md <= end)

    def price(self, hour: float) -> float:
        """$/kWh at local wall-clock ``hour`` (0 <= hour < 24)."""
        price = self.tariffs[0]
        for t, p in zip(self.times, self.tariffs):
            if hour >= t:
                price = p
        return price


class Tariff(msgspec.Struct, frozen=True):
    """A TOU tariff: name, effective date, source link and its schedule blocks."""

    name: str
    effective: str
    link: str
    schedule: list[TariffSchedule]
    comment: str | None = None

    def schedule_for(self, day: date) -> TariffSchedule:
        """The one block in effect on ``day`` (ValueError if none or several)."""
        hits = [s for s in self.schedule if s.applies(day)]
        if len(hits) != 1:
            raise ValueError(f"tariff {self.name!r} has {len(hits)} schedules for {day.isoformat()} "
                             f"({[s.id for s in hits]}), expected exactly one")
        return hits[0]

    def price_at_hour(self, day: date, hour: float) -> float:
        """$/kWh on local ``day`` at local wall-clock ``hour``."""
        return self.schedule_for(day).price(hour)

    def demand_charge(self, day: date) -> float:
        """$/kW demand charge of the block in effect on ``day`` (billed on the period's max demand)."""
        return float(self.schedule_for(day).demand_charge)

    def day_prices(self, day: date, tz: str, slot_minutes: int = 15) -> tuple[datetime, list[float]]:
        """(local midnight, per-slot prices) for local calendar ``day``; price at each slot's start."""
        zone = ZoneInfo(tz)
        start = datetime.combine(day, time(0), zone)
        end = datetime.combine(day + timedelta(days=1), time(0), zone)
        block = self.schedule_for(day)
        n = int((end.timestamp() - start.timestamp()) // (slot_minutes * 60))  # absolute: DST days differ
        t0 = start.astimezone(timezone.utc)
        step = timedelta(minutes=slot_minutes)
        prices = []
        for i in range(n):
            local = (t0 + i * step).astimezone(zone)
            prices.append(block.price(local.hour + local.minute / 60 + local.second / 3600))
        return start, prices

    def peak_windows(self, day: date, tz: str, slot_minutes: int = 15) -> list[Window]:
        """Runs of slots at the day's highest price (none on a flat-price day)."""
        start, prices = self.day_prices(day, tz, slot_minutes)
        hi, lo = max(prices), min(prices)
        if hi <= lo:
            return []
        t0 = start.astimezone(timezone.utc)
        step = timedelta(minutes=slot_minutes)
        windows, run = [], None
        for i, p in enumerate(prices + [None]):  # type: ignore[operator]
            if p == hi and run is None:
                run = i
            elif p != hi and run is not None:
                windows.append(Window((t0 + run * step).astimezone(start.tzinfo),
                                      (t0 + i * step).astimezone(start.tzinfo)))
                run = None
        return windows


def available_tariffs() -> list[str]:
    """Names of the shipped tariff files."""
    return sorted(p.name[:-5] for p in resources.files(_PKG).iterdir() if p.name.endswith(".json"))


def load_tariff(name_or_path: str | Path) -> Tariff:
    """Load a shipped tariff by name (e.g. ``sce_tou_ev_4_march_2019``) or a JSON file path."""
    path = Path(name_or_path)
    if path.suffix == ".json" and path.exists():
        raw = path.read_bytes()
    else:
        res = resources.files(_PKG).joinpath(f"{name_or_path}.json")
        if not res.is_file():
            raise ValueError(f"tariff {name_or_path!r} not found; shipped tariffs: {available_tariffs()}")
        raw = res.read_bytes()
    return msgspec.json.decode(raw, type=Tariff)


def tariff_signals(site_id: str, tariff: Tariff, tz: str, first_day: date, days: int = 1, *,
                   slot_minutes: int = 15, demand_charge_scope: Literal["peak_windows", "all"] = "peak_windows",
                   demand_charge_per_kw: float | None = None) -> GridSignals:
    """GridSignals for ``days`` local days from ``first_day``: prices, peak windows, demand charge.

    ``demand_charge_per_kw`` defaults to the tariff's charge on ``first_day`` (a
    monthly $/kW: use it as is with a month-long horizon or a Planner's realised
    peak floor, or prorate it for a stand-alone daily plan).
    """
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    prices: list[float] = []
    windows: list[Window] = []
    start = None
    for k in range(days):
        day = first_day + timedelta(days=k)
        s, p = tariff.day_prices(day, tz, slot_minutes)
        start = start or s
        prices.extend(p)
        windows.extend(tariff.peak_windows(day, tz, slot_minutes))
    assert start is not None
    dc = tariff.demand_charge(first_day) if demand_charge_per_kw is None else demand_charge_per_kw
    return GridSignals(site_id=site_id, start=start, prices_per_kwh=tuple(prices), slot_minutes=slot_minutes,
                       peak_windows=tuple(windows), demand_charge_per_kw=dc, demand_charge_scope=demand_charge_scope)
