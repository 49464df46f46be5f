"""`fleet run`'s supervision of one child, and the reasons /readyz gives, without a broker."""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace

from faust.types import TP

from streams import run
from streams.readiness import Readiness
from tests.conftest import ROOT


def test_a_dead_child_is_restarted_with_doubling_back_off_and_its_last_words(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    child = run.Child("worker :1", ["no-such-command"], dict(os.environ, PYTHONPATH=str(ROOT)), tmp_path / "w.log")
    child.start()
    assert child.proc is not None and child.proc.wait(30) == 2
    t = time.monotonic()
    child.check(t)
    line = capsys.readouterr().out
    assert "worker :1 (pid" in line and "exited with code 2" in line and "invalid choice: 'no-such-command'" in line
    assert "restarting in 1 s" in line and child.restart_at == t + 1.0
    child.check(t + 0.5)  # still backing off
    assert child.restarts == 0
    child.check(t + 1.0)
    assert child.restarts == 1 and "restarting worker :1 (restart #1)" in capsys.readouterr().out
    assert child.proc.wait(30) == 2
    child.check(t + 2.0)
    assert "restarting in 2 s" in capsys.readouterr().out  # doubled
    assert child.history == ["exited with code 2", "exited with code 2"]


def test_describe_exit_and_last_words(tmp_path: Path):
    assert run.describe_exit(-9) == "killed by SIGKILL" and run.describe_exit(3) == "exited with code 3"
    log = tmp_path / "w.log"
    log.write_text("[x] [ERROR] [^---Recovery]: Crashed reason=ConsistencyError(\"The persisted offset for changelog "
                   "topic partition TP(topic='t', partition=0) is higher\\nthan the last offset in that topic "
                   "(highwater) (10975 > -1).\")\n[x] [INFO] Closing event loop\n")
    words = run.last_words(log)
    assert words.startswith("[x] [ERROR]") and "(10975 > -1)" in words and "it lost its data" in words
    assert run.last_words(tmp_path / "missing.log") == ""


def fake_app(rebalancing: bool = False, in_recovery: bool = False, actives: set[TP] | None = None) -> SimpleNamespace:
    assignor = SimpleNamespace(assigned_actives=lambda: actives if actives is not None else {TP("t", 0)})
    return SimpleNamespace(rebalancing=rebalancing, in_recovery=in_recovery, assignor=assignor)


def test_readiness_names_every_reason():
    r = Readiness(fake_app())
    assert r.reasons() == ["broker unreachable: not probed yet",
                           "recovering: partitions are being restored from their changelogs"]
    r.broker_ok_at, r.broker_error = time.monotonic(), None
    r.on_rebalance_complete()
    assert r.reasons() == []
    r.on_revoked()
    assert r.reasons() == ["recovering: partitions are being restored from their changelogs"]
    r.on_rebalance_complete()
    r.app = fake_app(rebalancing=True)
    assert r.reasons() == ["rebalancing: the worker group is reassigning partitions"]
    r.app = fake_app(actives=set())
    assert r.reasons() == ["no partitions assigned to this worker"]
    r.app = fake_app()
    r.broker_ok_at, r.broker_error = time.monotonic() - 10, "KafkaError: Unable to get cluster metadata"
    assert r.reasons() == ["broker unreachable for 10 s: KafkaError: Unable to get cluster metadata"]
