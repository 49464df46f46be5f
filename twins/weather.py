"""Weather per region cell: the ``fleet.weather`` contract and the pure cell state.

A record (key = cell)::

    {"schema": 1, "cell": "dhwf", "ts": 1767225600000, "issued": 1767225600000,
     "air_temp_c": 24.4, "rel_humidity_pct": 78.0, "precip_mm": 0.0, "wind_mps": 3.1,
     "source": "NREL TMY3 12839 Miami"}

``ts`` is the valid time, ``issued`` when it was produced (epoch ms, UTC). ``ts ==
issued`` is an observation; ``ts > issued`` a forecast with horizon ``ts - issued``.
A cell keeps the newest observation and the newest forecast per valid hour for the
next 48 h; observations are also kept per cell and UTC day (for exposure integrals).
Newest-wins per slot makes the result independent of the order records arrive in.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from twins.errors import InvalidReading
from twins.geohash import VALID_CHARS
from twins.reading import TS_MAX_MS, TS_MIN_MS, strict_decode, whole

HOUR_MS = 3_600_000
FORECAST_HOURS = 48
MISSING = -999.0


class WeatherRecord(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One observation or forecast for one cell."""

    schema: Literal[1]  # type: ignore[valid-type]
    cell: Annotated[str, msgspec.Meta(pattern=whole("[0-9b-hjkmnp-z]{1,12}"))]
    ts: Annotated[int, msgspec.Meta(ge=TS_MIN_MS, le=TS_MAX_MS)]
    issued: Annotated[int, msgspec.Meta(ge=TS_MIN_MS, le=TS_MAX_MS)]
    air_temp_c: Annotated[float, msgspec.Meta(ge=-90, le=60)]
    rel_humidity_pct: Annotated[float, msgspec.Meta(ge=0, le=100)] | None = None
    precip_mm: Annotated[float, msgspec.Meta(ge=0, le=500)] | None = None
    wind_mps: Annotated[float, msgspec.Meta(ge=0, le=120)] | None = None
    source: Annotated[str, msgspec.Meta(max_length=120)] = ""

    @property
    def is_forecast(self) -> bool:
        """True for a forecast (valid time after issue time)."""
        return self.ts > self.issued


_decoder = msgspec.json.Decoder(WeatherRecord)


def decode_weather(raw: bytes) -> WeatherRecord:
    """Decode and validate a weather record; :class:`InvalidReading` names field and value."""
    rec = strict_decode(_decoder, raw)
    if rec.ts < rec.issued:
        raise InvalidReading(f"ts {rec.ts} is before issued {rec.issued}; a record cannot be valid before it exists",
                             "$.ts", rec.ts)
    if not set(rec.cell) <= VALID_CHARS:
        raise InvalidReading(f"cell {rec.cell!r} is not a geohash", "$.cell", rec.cell)
    return rec


class Obs(msgspec.Struct, array_like=True, gc=False):
    """Values of one record, compact."""

    ts: int
    issued: int
    air_temp_c: float
    rel_humidity_pct: float | None
    precip_mm: float | None
    wind_mps: float | None


class CellWeather(msgspec.Struct, array_like=True, gc=False):
    """Current weather of one cell: newest observation and forecasts for the next hours."""

    cell: str
    latest: Obs | None = None
    forecasts: list[Obs] = []
    source: str = ""


class DayWeather(msgspec.Struct, array_like=True, gc=False):
    """Hourly observations of one cell on one UTC day (index = hour of day; MISSING = none)."""

    cell: str
    day: int
    temp: list[float]
    rh: list[float]
    obs_ts: list[int]


def new_cell(cell: str) -> CellWeather:
    """Empty state for ``cell``."""
    return CellWeather(cell=cell)


def new_day(cell: str, day: int) -> DayWeather:
    """Empty hourly record for ``cell`` on ``day`` (days since epoch, UTC)."""
    return DayWeather(cell=cell, day=day, temp=[MISSING] * 24, rh=[MISSING] * 24, obs_ts=[-1] * 24)


def day_key(cell: str, day: int) -> str:
    """Table key of a cell-day."""
    return f"{cell}@{day}"


def _obs(rec: WeatherRecord) -> Obs:
    return Obs(rec.ts, rec.issued, rec.air_temp_c, rec.rel_humidity_pct, rec.precip_mm, rec.wind_mps)


def apply_weather(state: CellWeather, rec: WeatherRecord) -> CellWeather:
    """Return ``state`` with ``rec`` merged in: newest observation, newest forecast per hour."""
    out = msgspec.structs.replace(state, forecasts=list(state.forecasts))
    if rec.source:
        out.source = rec.source
    obs = _obs(rec)
    if rec.is_forecast:
        if out.latest is not None and rec.ts <= out.latest.ts:
            return out  # that hour is already observed
        hour = rec.ts // HOUR_MS
        same = [f for f in out.forecasts if f.ts // HOUR_MS == hour]
        if any(f.issued > rec.issued for f in same):
            return out  # a newer forecast for that hour is already held
        out.forecasts = sorted([f for f in out.forecasts if f.ts // HOUR_MS != hour] + [obs], key=lambda f: f.ts)
        out.forecasts = out.forecasts[-FORECAST_HOURS:]
        return out
    if out.latest is None or rec.ts > out.latest.ts:
        out.latest = obs
        out.forecasts = [f for f in out.forecasts if f.ts > rec.ts]  # observed hours need no forecast
    return out


def apply_hourly(day: DayWeather, rec: WeatherRecord) -> DayWeather:
    """Return ``day`` with observation ``rec`` stored in its hour (the newest observation in the hour wins)."""
    hour = (rec.ts // HOUR_MS) % 24
    if rec.is_forecast or rec.ts // 86_400_000 != day.day or rec.ts < day.obs_ts[hour]:
        return day
    out = msgspec.structs.replace(day, temp=list(day.temp), rh=list(day.rh), obs_ts=list(day.obs_ts))
    out.temp[hour] = rec.air_temp_c
    out.rh[hour] = rec.rel_humidity_pct if rec.rel_humidity_pct is not None else MISSING
    out.obs_ts[hour] = rec.ts
    return out


def hourly_from_day(day: DayWeather | None, hour: int) -> tuple[float, float] | None:
    """(air °C, RH %) observed in ``hour`` (hours since epoch) from that day's record, if any."""
    if day is None or day.obs_ts[hour % 24] < 0:
        return None
    return day.temp[hour % 24], day.rh[hour % 24]


def context(state: CellWeather) -> dict[str, Any]:
    """The weather context shown with a twin: newest observation and the next forecasts."""
    latest = state.latest
    return {
        "cell": state.cell,
        "source": state.source,
        "observation": None if latest is None else _obs_dict(latest),
        "forecast": [_obs_dict(f) | {"horizon_s": (f.ts - f.issued) // 1000} for f in state.forecasts[:24]],
    }


def _obs_dict(o: Obs) -> dict[str, Any]:
    return {"ts": o.ts, "issued": o.issued, "air_temp_c": o.air_temp_c, "rel_humidity_pct": o.rel_humidity_pct,
            "precip_mm": o.precip_mm, "wind_mps": o.wind_mps}


_enc = msgspec.msgpack.Encoder()
_dec_cell = msgspec.msgpack.Decoder(CellWeather)
_dec_day = msgspec.msgpack.Decoder(DayWeather)


def encode_weather(state: CellWeather | DayWeather) -> bytes:
    """Binary form for the table and its changelog."""
    return _enc.encode(state)


def decode_cell(data: bytes) -> CellWeather:
    """Inverse of :func:`encode_weather` for a cell."""
    return _dec_cell.decode(data)


def decode_day(data: bytes) -> DayWeather:
    """Inverse of :func:`encode_weather` for a cell-day."""
    return _dec_day.decode(data)
