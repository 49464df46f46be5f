"""The telematics producer: publishes the simulated fleet (``models.simulation``) to Kafka."""

from __future__ import annotations

import math
import signal
from datetime import datetime, timezone
import time
from typing import Any

import msgspec
from kafka import KafkaProducer

from streams.settings import Settings
from streams.signing_keys import read_keyring
from streams.topology import client_security


def make_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    """A kafka-python producer for telemetry (default partitioner: murmur2 of the VIN key)."""
    options: dict[str, Any] = dict(bootstrap_servers=settings.bootstrap_servers, linger_ms=20, acks=1,
                                   batch_size=256 * 1024, client_id="fleet-simulator")
    options.update(client_security(settings))
    options.update(overrides)
    return KafkaProducer(**options)


def simulate(settings: Settings, vehicles: int, rate_hz: float, duration_s: float, seed: int,
             realtime: bool = True) -> int:
    """Publish ``rate_hz`` messages per vehicle per second; returns the number of records sent.

    With ``FLEET_SIGNING_KEYS`` set every telemetry record is signed (``fleet-kid`` / ``fleet-sig``
    headers, :mod:`twins.signing`) with the key the keys file gives its VIN.

    ``duration_s`` is simulated time (0 = until SIGINT/SIGTERM). In real-time mode the
    simulated clock starts now and ticks with the wall clock; otherwise it runs as fast
    as the producer allows from the simulator's default start (2026-01-01).
    """
    from models.simulation import FleetSimulator

    if rate_hz <= 0 or not math.isfinite(rate_hz):
        raise ValueError(f"rate must be a positive number of messages per vehicle per second, got {rate_hz!r}")
    start_ms = int(time.time() * 1000) if realtime else None
    sim = FleetSimulator(vehicles, seed=seed, **({"start_ms": start_ms} if start_ms else {}))
    producer = make_producer(settings)
    keyring = read_keyring(settings.signing_keys) if settings.signing_keys is not None else None
    encode = msgspec.json.Encoder().encode
    topic = settings.topic_telemetry
    dt = 1.0 / rate_hz
    steps = math.inf if duration_s <= 0 else round(duration_s * rate_hz)
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    previous = signal.signal(signal.SIGTERM, _stop)  # restored on return: callers keep their own handling
    depot = None
    if settings.charging_sites is not None:
        from streams.charging_sites import load_sites
        from streams.depot_feed import DepotFeed

        depot = DepotFeed(load_sites(settings.charging_sites))
    depot_topics = {"grid": settings.topic_grid, "requests": settings.topic_charging_requests}
    sent = 0
    tick = time.monotonic()
    n = 0
    try:
        while n < steps and not stop:
            batch = sim.step(dt)
            now_ms = int(time.time() * 1000)
            for msg in batch:
                key, value = msg["vin"].encode(), encode(msg)
                producer.send(topic, key=key, value=value,
                              headers=keyring.sign(key, value, now_ms) if keyring is not None else None)
                sent += 1
            if depot is not None:
                now = datetime.fromtimestamp(sim.now_ms / 1000, tz=timezone.utc)
                events = depot.grid_messages(now) + [e for msg in batch for e in depot.observe(msg)]
                for kind, site, doc in events:
                    producer.send(depot_topics[kind], key=site.encode(), value=encode(doc))
            n += 1
            if realtime:
                tick += dt
                delay = tick - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        producer.flush()
        producer.close()
    return sent
