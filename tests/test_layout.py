"""Architecture guard: pure packages never import the I/O shell or its frameworks."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"streams", "faust", "kafka", "aiokafka", "prometheus_client", "mode", "aiohttp"}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module", "__import__"
        ) and node.args and isinstance(node.args[0], ast.Constant):
            roots.add(str(node.args[0].value).split(".")[0])
    return roots


def test_pure_packages_do_not_import_io_shell():
    offenders = []
    files = [p for pkg in ("twins", "models") for p in (ROOT / pkg).rglob("*.py")]
    assert len(files) >= 5, "expected the pure packages to exist"
    for path in files:
        bad = imported_roots(path) & FORBIDDEN
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offenders, "\n".join(offenders)


def test_guard_detects_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import json\nfrom faust import App\nimport importlib\nimportlib.import_module('kafka.admin')\n")
    assert imported_roots(bad) & FORBIDDEN == {"faust", "kafka"}
