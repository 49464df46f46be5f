"""`fleet run` (what `make run` calls): twins show up in the API, and an interrupt leaves nothing behind."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from streams.auth import TokenVerifier
from streams.broker import free_port
from tests.conftest import ROOT, TEST_SECRET, http_get, wait_until

pytestmark = pytest.mark.integration


def children_of(pid: int) -> set[int]:
    kids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                kids.add(int(entry.name))
    return kids


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_run_shows_twins_and_interrupt_stops_everything(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")} | {"FLEET_AUTH_HS256_SECRET": TEST_SECRET}
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "run", "--vehicles", "12", "--web-port", str(port)],
                            cwd=tmp_path, env=env | {"PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        summary = wait_until(lambda: (lambda s: s if s[0] == 200 and s[1]["vehicles"] == 12 else None)(
            http_get(f"http://127.0.0.1:{port}/fleet/summary")), 60, what="12 simulated twins in the API")
        assert summary[1]["online"] == 12
        assert http_get(f"http://127.0.0.1:{port}/fleet/summary", token=None)[0] == 401  # no token, no data
        kids = children_of(proc.pid)
        assert len(kids) >= 4, kids  # broker, worker, simulator, weather replay
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Fleet Assurance is running" in out and f"http://127.0.0.1:{port}/fleet/summary" in out
    printed = re.search(r"curl -H 'Authorization: Bearer ([\w.-]+)' ", out)
    assert printed and TokenVerifier(TEST_SECRET).verify(printed.group(1)).allows("admin")  # a ready-to-paste token
    assert "stopped: simulator, weather replay, workers and broker are down" in out
    wait_until(lambda: not any(alive(k) for k in kids), 10, what="no orphaned child processes")
    with socket.socket() as s:  # nobody listens on the API port any more (TIME_WAIT is fine, as for any server)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()
