"""The telemetry contract as JSON Schema, generated from the decoder so the two cannot drift.

``python -m twins.schema`` rewrites ``twins/telemetry.schema.json``; a test fails
when the committed file differs from what the decoder enforces.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from twins.reading import Reading
from twins.signals import SIGNALS

SCHEMA_PATH = Path(__file__).with_name("telemetry.schema.json")


def telemetry_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of one telemetry record."""
    schema = msgspec.json.schema(Reading)
    defs = schema["$defs"]
    reading = defs["Reading"]
    reading["description"] = "One telemetry record on topic fleet.telemetry; Kafka key = vin (UTF-8)."
    props = reading["properties"]
    props["schema"]["description"] = "Contract version; this document describes version 1."
    props["vin"]["description"] = "Vehicle identification number (ISO 3779: 17 characters, no I, O, Q)."
    props["ts"]["description"] = "Event time: integer milliseconds since the Unix epoch, UTC."
    props["seq"]["description"] = "Per-vehicle sequence number, +1 per message; restarts are detected by event time."
    signals = defs["Signals"]
    signals["description"] = "Only the signals that changed; the twin merges per signal by event time."
    for sig in SIGNALS:
        prop = signals["properties"][sig.path]
        unit = f" Unit: {sig.unit}." if sig.unit else ""
        overlay = " Overlay signal (not in VSS 6.0), see twins/vss_overlay.vspec." if sig.overlay else ""
        prop["description"] = f"{sig.description}{unit}{overlay}"
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://fleet-assurance.example/schemas/telemetry/v1.json",
        "title": "Fleet Assurance telemetry record v1",
        **schema,
    }


def render() -> str:
    """The schema as the committed text."""
    return json.dumps(telemetry_schema(), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    SCHEMA_PATH.write_text(render())
    print(f"wrote {SCHEMA_PATH}")
