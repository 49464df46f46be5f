"""Single-VIN requests go to the worker owning the VIN's partition, or get an honest 503.

Faust's ``table_route`` answers 500 when the owner it remembers has died, and lets a
worker that is still restoring a partition answer 404 for twins it has not read back
yet. :func:`owner_route` instead answers ``503`` with ``Retry-After`` and a JSON body
naming the partition and the cause whenever the partition is moving (rebalance,
recovery) or its owner does not answer, or the owner has not read its partition to the end
yet, so a 404 only ever comes from a settled, caught-up owner.
"""

from __future__ import annotations

import asyncio
from functools import wraps
from typing import Any

import aiohttp
from aiohttp import web as aioweb
from faust.types import TP

from streams import metrics
from streams.http_input import read_body
from streams.ingest import partition_of

RETRY_AFTER_S = 2
CAUSES = ("rebalancing", "recovering", "not_assigned", "owner_unreachable", "replaying")
for _cause in CAUSES:  # every series at 0 from start-up
    metrics.ROUTE_UNAVAILABLE.labels(_cause)
FORWARD_TIMEOUT_S = 5.0
#: set on a request one worker forwards to another; a worker never forwards such a request again
FORWARDED_BY = "X-Fleet-Forwarded-By"


def unavailable(cause: str, reason: str, partition: int | None, retry_after_s: int = RETRY_AFTER_S) -> Any:
    """A 503 answer saying why and when to retry."""
    metrics.ROUTE_UNAVAILABLE.labels(cause).inc()
    body = {"error": reason, "cause": cause, "partition": partition, "retry_after_s": retry_after_s}
    return aioweb.json_response(body, status=503, headers={"Retry-After": str(retry_after_s)})


def owner_of(app: Any, partition: int, table: Any = None) -> str | None:
    """Base URL of the worker the group assigned ``table``'s partition to (None while nobody has it).

    ``table``: the twin table unless given (the charging plans table for site routes)."""
    table = app.twins if table is None else table
    changelog = table.changelog_topic.get_topic_name()
    for host, topics in app.router.table_metadata(table.name).items():
        if partition in topics.get(changelog, ()):
            return str(host).rstrip("/")
    return None


def local_unavailable(app: Any, partition: int, source_topic: str | None = None) -> tuple[str, str] | None:
    """(cause, reason) when this worker, the owner, cannot answer for ``partition`` yet.

    ``source_topic``: the topic whose partition holds the state (telemetry unless given)."""
    moving = app.readiness.partitions_moving()
    if moving:
        return moving.split(":", 1)[0], f"partition {partition} is moving ({moving}); retry shortly"
    if TP(source_topic or app.fleet_settings.topic_telemetry, partition) not in app.assignor.assigned_actives():
        return "not_assigned", f"partition {partition} is not (yet) assigned to this worker; retry shortly"
    return None


async def _forward(app: Any, owner: str, partition: int, request: aioweb.Request, body: bytes | None) -> Any:
    me = str(app.conf.canonical_url).rstrip("/")
    headers = {k: v for k, v in request.headers.items()
               if k.lower() in ("content-type", "accept", "authorization")} | {FORWARDED_BY: me}
    if body is None and request.can_read_body:
        body = await read_body(request)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S)) as session:
            async with session.request(request.method, f"{owner}{request.rel_url}", headers=headers,
                                       data=body) as resp:
                passed = {k: v for k, v in resp.headers.items() if k.lower() == "retry-after"}
                return aioweb.Response(body=await resp.read(), status=resp.status, headers=passed,
                                       content_type=resp.content_type)
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return unavailable("owner_unreachable", f"the owner of partition {partition}, {owner}, did not answer "
                           f"({detail}); if it died the group reassigns its partitions within the session "
                           "timeout", partition)


async def route_to_owner(app: Any, vin: str, request: aioweb.Request, body: bytes | None = None, *,
                         table: Any = None, source_topic: str | None = None) -> Any:
    """None when this worker owns ``vin``'s settled partition (answer locally); else the owner's answer or a 503.

    ``body``: the request body if the caller has read it already (a body can be read once).
    ``table``/``source_topic``: another key's table and input topic (a site id's charging plans).
    """
    partition = partition_of(vin.encode(), app.fleet_settings.partitions)
    owner = owner_of(app, partition, table)
    if owner is None:
        return unavailable("rebalancing", f"partition {partition} has no owner right now: the worker group is "
                           "rebalancing; retry shortly", partition)
    if owner == str(app.conf.canonical_url).rstrip("/"):
        problem = local_unavailable(app, partition, source_topic)
        return None if problem is None else unavailable(problem[0], problem[1], partition)
    if request.headers.get(FORWARDED_BY):
        return unavailable("rebalancing", f"workers disagree about the owner of partition {partition} (a "
                           "rebalance is in progress); retry shortly", partition)
    return await _forward(app, owner, partition, request, body)


def owner_route(app: Any) -> Any:
    """Decorator for a view method taking ``vin`` from the path: run it on the VIN's owner, else 503."""

    def decorator(fun: Any) -> Any:
        @wraps(fun)
        async def routed(view: Any, request: aioweb.Request, *args: Any, **kwargs: Any) -> Any:
            vin = request.match_info["vin"]
            elsewhere = await route_to_owner(app, vin, request)
            if elsewhere is not None:
                return elsewhere
            answer = await fun(view, request, *args, **kwargs)
            if answer.status == 404:  # only true once the owner has read everything on the partition
                partition = partition_of(vin.encode(), app.fleet_settings.partitions)
                try:
                    lag = await app.readiness.behind(partition)
                except Exception as exc:  # offsets unknown right now (e.g. partition just revoked): say so
                    return unavailable("replaying", f"cannot tell whether partition {partition} is caught up "
                                       f"({type(exc).__name__}); retry shortly", partition)
                if lag:
                    return unavailable("replaying", f"no twin for {vin!r} yet, but this worker still has {lag} "
                                       f"records of partition {partition} to read; retry shortly", partition)
                # Caught up now, but the 404 came from before: a batch in flight then (e.g. the partition's
                # first after a takeover) may have made the twin while the end offset was fetched. Only a
                # lookup after everything up to the end was processed tells (a read: safe to repeat).
                if request.method in ("GET", "HEAD"):
                    answer = await fun(view, request, *args, **kwargs)
            return answer

        return routed

    return decorator
