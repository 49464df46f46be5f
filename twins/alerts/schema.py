"""Write ``alert.schema.json``, the JSON Schema of a ``fleet.alerts`` record: ``python -m twins.alerts.schema``."""

from __future__ import annotations

import json
from pathlib import Path

from twins.alerts.state import alert_schema

PATH = Path(__file__).with_name("alert.schema.json")

if __name__ == "__main__":
    PATH.write_text(json.dumps(alert_schema(), indent=2) + "\n")
    print(f"wrote {PATH}")
