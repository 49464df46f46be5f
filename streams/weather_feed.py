"""The weather feed: ``fleet.weather`` -> a changelog-backed global table.

Keys: ``<cell>`` holds the newest observation and forecasts (``CellWeather``);
``<cell>@<day>`` holds that UTC day's hourly observations (``DayWeather``) for
exposure integrals. Every worker holds every key (a Faust GlobalTable), so any
worker can join any vehicle to its local weather. Volume is small (cells × hours).
"""

from __future__ import annotations

import time
from typing import Any

from streams import metrics
from streams.dead_letter import DeadLetters, Rejection
from streams.settings import Settings
from twins.decoding import check_key, check_not_future, decode_input
from twins.errors import InvalidReading
from twins.weather import (
    CellWeather,
    WeatherRecord,
    apply_hourly,
    apply_weather,
    day_key,
    decode_cell,
    decode_day,
    decode_weather,
    encode_weather,
    hourly_from_day,
    new_cell,
    new_day,
)


def register_weather(app: Any, settings: Settings) -> None:
    """Create the weather table, its agent, ``app.cell_weather(cell)``, ``app.hourly_weather(cell, hour)`` and
    ``app.weather_day_version(cell, day)`` (the stored day record: it changes whenever that day's observations do)."""
    table = app.GlobalTable(
        "weather", default=None, partitions=1, key_type=bytes, value_type=bytes,
        help="Weather per geohash cell and per cell-day (msgpack, twins.weather).",
    )
    source = app.topic(settings.topic_weather, key_type=bytes, value_type=bytes, key_serializer="raw",
                       value_serializer="raw", partitions=1)
    dead_letters = DeadLetters(
        app.topic(settings.topic_weather_dlq, key_type=bytes, value_type=bytes, key_serializer="raw",
                  value_serializer="raw", partitions=1),
        settings.topic_weather, 1, settings.dlq_max_value_bytes)
    limits = settings.input_limits

    def cell_weather(cell: str) -> CellWeather | None:
        raw = table.data.get(cell.encode())
        return decode_cell(raw) if raw is not None else None

    def hourly_weather(cell: str, hour: int) -> tuple[float, float] | None:
        raw = table.data.get(day_key(cell, hour // 24).encode())
        return hourly_from_day(decode_day(raw) if raw is not None else None, hour)

    def weather_day_version(cell: str, day: int) -> bytes | None:
        return table.data.get(day_key(cell, day).encode())

    def admit(msg: Any) -> WeatherRecord:
        """The decoding boundary of ``fleet.weather``."""
        rec = decode_input(msg.value, decode_weather, limits)
        check_key(msg.key, rec.cell, "$.cell", "cell")
        check_not_future(rec.issued, int(time.time() * 1000), limits, "$.issued")
        return rec

    @app.agent(source, name="weather-feed")
    async def weather_feed(stream: Any) -> None:
        async for event in stream.events():
            msg = event.message
            try:
                rec = admit(msg)
            except InvalidReading as exc:
                await dead_letters.send([Rejection(msg.key, msg.value, exc, msg.partition, msg.offset,
                                                   int(msg.timestamp * 1000) if msg.timestamp else None)])
                continue
            key = rec.cell.encode()
            raw = table.get(key)
            state = decode_cell(raw) if raw is not None else new_cell(rec.cell)
            table[key] = encode_weather(apply_weather(state, rec))
            if not rec.is_forecast:
                day = rec.ts // 86_400_000
                dkey = day_key(rec.cell, day).encode()
                raw_day = table.get(dkey)
                day_state = decode_day(raw_day) if raw_day is not None else new_day(rec.cell, day)
                table[dkey] = encode_weather(apply_hourly(day_state, rec))
            metrics.WEATHER_IN.inc()

    app.weather = table
    app.cell_weather = cell_weather
    app.hourly_weather = hourly_weather
    app.weather_day_version = weather_day_version
