"""``python -m twins.history.doc`` writes FEATURES.md, the feature table (a test keeps it current)."""

from __future__ import annotations

from pathlib import Path

from twins.history.features import FEATURES

DOC_PATH = Path(__file__).with_name("FEATURES.md")


def render() -> str:
    """Markdown table of every operating-history feature."""
    rows = ["# Operating-history features", "",
            "Computed by `twins.history.features(state)`; shown under `history` in `GET /twins/{vin}`.",
            "Unknown values are NaN (JSON `null`). Time integrals cap each step at 3,900 s (65 min).", "",
            "| name | unit | meaning |", "|---|---|---|"]
    rows += [f"| `{f.name}` | {f.unit} | {f.meaning} |" for f in FEATURES]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    DOC_PATH.write_text(render())
    print(f"wrote {DOC_PATH}")
