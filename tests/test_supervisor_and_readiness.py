"""`fleet run`'s supervision of one child, and the reasons /readyz gives, without a broker."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

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


def routing_app(behind: Any) -> SimpleNamespace:
    """This worker owns every partition of a settled group; ``behind(partition)`` is its lag."""
    me = "http://127.0.0.1:6066"
    settings = SimpleNamespace(partitions=4, topic_telemetry="t")
    changelog = SimpleNamespace(get_topic_name=lambda: "twins-changelog")
    actives = {TP("t", p) for p in range(4)}
    return SimpleNamespace(
        fleet_settings=settings, conf=SimpleNamespace(canonical_url=me),
        twins=SimpleNamespace(name="twins", changelog_topic=changelog),
        router=SimpleNamespace(table_metadata=lambda name: {me: {"twins-changelog": set(range(4))}}),
        assignor=SimpleNamespace(assigned_actives=lambda: actives),
        readiness=SimpleNamespace(partitions_moving=lambda: None, behind=behind))


def test_a_404_is_only_given_when_a_lookup_after_catching_up_finds_nothing():
    """The lookup said 404 while the partition's first batch was in flight; that batch made the twin while
    the end offset was fetched, so the lag is 0 by then: the answer must come from a second lookup (this
    was the rare false 404 after a takeover)."""
    from aiohttp import web as aioweb
    from aiohttp.test_utils import make_mocked_request

    from streams.routing import owner_route

    twins: dict[str, dict[str, Any]] = {}
    vin = "1FA6P8CF0L5100001"

    async def batch_lands_while_offsets_are_fetched(partition: int) -> int:
        twins[vin] = {"vin": vin}
        return 0

    async def no_lag(partition: int) -> int:
        return 0

    async def lag_of_7(partition: int) -> int:
        return 7

    def view_of(app: SimpleNamespace) -> Any:
        @owner_route(app)
        async def get(view: Any, request: Any, vin: str) -> Any:
            twin = twins.get(vin)
            return aioweb.json_response(twin or {"error": "no twin"}, status=200 if twin else 404)
        return get

    def ask(behind: Any) -> Any:
        request = make_mocked_request("GET", f"/twins/{vin}", match_info={"vin": vin})
        return asyncio.run(view_of(routing_app(behind))(None, request, vin=vin))

    assert ask(batch_lands_while_offsets_are_fetched).status == 200
    twins.clear()
    assert ask(no_lag).status == 404  # caught up and still nothing: the twin really does not exist
    answer = ask(lag_of_7)
    assert answer.status == 503 and answer.headers["Retry-After"] == "2"
    assert json.loads(answer.body)["cause"] == "replaying"
