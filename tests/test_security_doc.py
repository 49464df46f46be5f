"""docs/security.md stays auditable: every test it names exists, every threat row names a control and a test."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "security.md").read_text()
#: written by the API-authentication half of issue 16
ELSEWHERE = {"tests/test_api_auth.py", "tests/integration/test_audit.py"}


def test_every_named_test_exists():
    refs = re.findall(r"`(tests/[\w/]+\.py)((?:::\w+)?)`((?:, `::\w+`)*)", DOC)
    assert len(refs) >= 20
    for path, first, more in refs:
        names = [n for n in [first] + re.findall(r"::\w+", more) if n]
        if path in ELSEWHERE:
            continue
        source = (ROOT / path).read_text()
        for name in names:
            assert re.search(rf"^def {name[2:]}\b", source, re.M), f"{path}{name}"


def _matrix() -> dict[tuple[str, str], int]:
    """The risk matrix of the doc: (impact, feasibility) -> risk value."""
    head = next(line for line in DOC.splitlines() if line.startswith("| impact \\ feasibility"))
    feasibilities = [c.strip() for c in head.strip("|").split("|")][1:]
    out = {}
    for impact in ("severe", "major", "moderate", "negligible"):
        row = next(line for line in DOC.splitlines() if line.startswith(f"| {impact} |"))
        for feas, value in zip(feasibilities, [c.strip() for c in row.strip("|").split("|")][1:]):
            out[(impact, feas)] = int(value)
    return out


def test_every_threat_has_ratings_a_control_and_a_test_and_its_risk_follows_the_matrix():
    matrix = _matrix()
    rows = [line for line in DOC.splitlines() if re.match(r"\| T\d+ \|", line)]
    assert [r.split("|")[1].strip() for r in rows] == [f"T{i}" for i in range(1, 15)]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 8, row[:40]
        impact = re.fullmatch(r"[a-z/–]+ → (severe|major|moderate|negligible)", cells[3])
        feas = re.fullmatch(r"(high|medium|low|very low) → (high|medium|low|very low)", cells[4])
        risk = re.match(r"([1-5]) → ([1-5])", cells[5])
        assert impact and feas and risk, cells[0]
        assert int(risk[1]) == matrix[(impact[1], feas[1])], (cells[0], "before")
        assert int(risk[2]) == matrix[(impact[1], feas[2])], (cells[0], "after")
        assert cells[6] and ("tests/" in cells[7] or "bench/" in cells[7]), cells[0]
    for threat in ("Spoofed telemetry", "Replay", "Poison records", "Unauthorised acknowledgement",
                   "Model tampering", "Data exfiltration via the API", "Denial of service by flood"):
        assert threat in DOC
