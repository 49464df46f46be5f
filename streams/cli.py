"""The ``fleet`` command: run the whole stack, a worker, the simulated fleet, or topic set-up."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from typing import Any

from twins.errors import FleetAssuranceError


def _cmd_worker(args: argparse.Namespace) -> None:
    from streams.settings import load_settings
    from streams.worker import run_worker

    overrides = {} if args.web_port is None else {"web_port": args.web_port}
    run_worker(load_settings(**overrides))


def _cmd_topics(args: argparse.Namespace) -> None:
    from streams.settings import load_settings
    from streams.topology import ensure_topics

    settings = load_settings()
    if not settings.kafka_bootstrap:
        raise FleetAssuranceError("set FLEET_KAFKA_BOOTSTRAP to the cluster whose topics should be created")
    for spec in ensure_topics(settings, settings.kafka_bootstrap):
        print(f"{spec.name:45s} partitions={spec.partitions:<4d} {spec.purpose}")


def _cmd_simulate(args: argparse.Namespace) -> None:
    if args.history:
        from pathlib import Path

        from models.simulation.history import write_history

        if not args.out:
            raise FleetAssuranceError("--history needs --out DIR for the dataset")
        days = int(args.history.rstrip("d"))
        summary = write_history(Path(args.out), args.vehicles, days, args.seed, dt_s=args.dt, progress=True)
        print(f"wrote {args.out}: {summary}")
        return
    from streams.settings import load_settings
    from streams.simulate import simulate

    settings = load_settings()
    if not settings.kafka_bootstrap:
        raise FleetAssuranceError("set FLEET_KAFKA_BOOTSTRAP (or use `fleet run`, which starts a broker)")
    sent = simulate(settings, vehicles=args.vehicles, rate_hz=args.rate, duration_s=args.duration,
                    seed=args.seed, realtime=not args.fast)
    print(f"sent {sent} records to {settings.topic_telemetry}")


def _cmd_weather_replay(args: argparse.Namespace) -> None:
    from streams.settings import load_settings
    from streams.weather_replay import replay

    settings = load_settings()
    if not settings.kafka_bootstrap:
        raise FleetAssuranceError("set FLEET_KAFKA_BOOTSTRAP (or use `fleet run`, which starts a broker)")
    sent = replay(settings, regions=args.regions.split(","), backfill_hours=args.backfill_hours, hours=args.hours,
                  speedup=args.speedup, forecast_hours=args.forecast_hours)
    print(f"sent {sent} weather records to {settings.topic_weather}")


def _cmd_maintenance_import(args: argparse.Namespace) -> None:
    import csv
    import json
    import time
    from pathlib import Path

    from streams.settings import load_settings
    from streams.simulate import make_producer
    from twins.decoding import decode_input
    from twins.maintenance import check_maintenance_time, decode_maintenance, records_from_csv

    settings = load_settings()
    if not settings.kafka_bootstrap:
        raise FleetAssuranceError("set FLEET_KAFKA_BOOTSTRAP to the cluster to publish to")
    path = Path(args.file)
    is_csv = path.suffix.lower() == ".csv"
    try:  # the file is one decoding boundary: every problem names the line, and nothing is published
        text = path.read_bytes().decode("utf-8")
        rows = [json.dumps(r).encode() for r in records_from_csv(text)] if is_csv else [
            line.encode() for line in text.splitlines()]
    except (OSError, UnicodeDecodeError, csv.Error, KeyError, ValueError) as exc:
        raise FleetAssuranceError(f"{path}: cannot read the repair log ({type(exc).__name__}: {exc}); "
                                  "nothing was published") from None
    encoded = []
    now_ms = int(time.time() * 1000)
    for n, raw in enumerate(rows, start=2 if is_csv else 1):
        if not raw.strip():
            continue
        try:
            rec = decode_input(raw, decode_maintenance, settings.input_limits)
            check_maintenance_time(rec, now_ms, None, settings.input_limits)
        except FleetAssuranceError as exc:
            raise FleetAssuranceError(f"{path} line {n}: {exc}; nothing was published") from None
        encoded.append((rec.vin.encode(), raw))
    from streams.signing_keys import read_keyring

    keyring = read_keyring(settings.signing_keys) if settings.signing_keys is not None else None
    now_ms = int(time.time() * 1000)
    headers = [keyring.sign(key, raw, now_ms) if keyring is not None else None for key, raw in encoded]
    producer = make_producer(settings, client_id="fleet-maintenance-import")
    for (key, raw), signature in zip(encoded, headers):
        producer.send(settings.topic_maintenance, key=key, value=raw, headers=signature)
    producer.flush()
    producer.close()
    print(f"published {len(encoded)} maintenance records to {settings.topic_maintenance}")


def parse_ttl(text: str) -> float:
    """``30m``, ``8h``, ``7d`` or seconds as seconds (ValueError naming the value)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    if not (number.isascii() and number.isdigit()):
        raise ValueError(f"--ttl {text!r} must look like 30m, 8h or 7d")
    return int(number) * units[unit]


def _cmd_token(args: argparse.Namespace) -> None:
    from streams.auth import mint
    from streams.settings import load_settings

    settings = load_settings()
    if settings.auth_hs256_secret is None:
        raise FleetAssuranceError("FLEET_AUTH_HS256_SECRET is not set: `fleet token` mints HS256 tokens only "
                                  "(with an identity provider, get tokens from it)")
    try:
        scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
        token = mint(settings.auth_hs256_secret.get_secret_value(), check_sub(args.sub), scopes, parse_ttl(args.ttl),
                     settings.auth_issuer, settings.auth_audience)
    except ValueError as exc:
        raise FleetAssuranceError(str(exc)) from None
    print(token)


def check_sub(sub: str) -> str:
    """A user name for a token: 1 to 128 printable characters."""
    if not (0 < len(sub) <= 128 and sub.isprintable()):
        raise ValueError(f"--sub {sub[:40]!r} must be 1 to 128 printable characters")
    return sub


def _cmd_run(args: argparse.Namespace) -> None:
    from streams.run import run_stack

    run_stack(vehicles=args.vehicles, rate_hz=args.rate, seed=args.seed, web_port=args.web_port, workers=args.workers)


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of the ``fleet`` command."""
    p = argparse.ArgumentParser(prog="fleet", description="Fleet Assurance: streaming digital twins for EV fleets.")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="embedded broker + worker(s) + simulated fleet + API on loopback")
    run.add_argument("--vehicles", type=int, default=200)
    run.add_argument("--rate", type=float, default=1.0, help="messages per vehicle per second")
    run.add_argument("--seed", type=int, default=7)
    run.add_argument("--web-port", type=int, default=6066)
    run.add_argument("--workers", type=int, default=1)
    run.set_defaults(func=_cmd_run)

    worker = sub.add_parser("worker", help="one Faust worker (settings from FLEET_* env)")
    worker.add_argument("--web-port", type=int, default=None)
    worker.set_defaults(func=_cmd_worker)

    sim = sub.add_parser("simulate", help="produce simulated fleet telemetry to Kafka")
    sim.add_argument("--vehicles", type=int, default=200)
    sim.add_argument("--rate", type=float, default=1.0, help="messages per vehicle per second")
    sim.add_argument("--duration", type=float, default=60.0, help="simulated seconds (0 = forever)")
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--fast", action="store_true", help="as fast as possible instead of real time")
    sim.add_argument("--history", default=None, metavar="DAYSd",
                     help="write a history dataset of this many days (e.g. 365d) to --out instead of publishing")
    sim.add_argument("--out", default=None, help="dataset directory for --history")
    sim.add_argument("--dt", type=float, default=3600.0, help="simulation step in seconds for --history")
    sim.set_defaults(func=_cmd_simulate)

    wx = sub.add_parser("weather-replay", help="publish real typical-year weather (NREL TMY) to the weather topic")
    wx.add_argument("--regions", default="miami,greensboro,sand-point")
    wx.add_argument("--backfill-hours", type=int, default=48, help="past hours published at once")
    wx.add_argument("--hours", type=int, default=24 * 365, help="hours after now, paced by --speedup")
    wx.add_argument("--speedup", type=float, default=1.0, help="simulated hours per real hour")
    wx.add_argument("--forecast-hours", type=int, default=6)
    wx.set_defaults(func=_cmd_weather_replay)

    mi = sub.add_parser("maintenance-import", help="publish a repair log (CSV or JSON Lines) to fleet.maintenance")
    mi.add_argument("file")
    mi.set_defaults(func=_cmd_maintenance_import)

    tok = sub.add_parser("token", help="mint an API token (HS256, FLEET_AUTH_HS256_SECRET)")
    tok.add_argument("--sub", required=True, help="the user, e.g. ops.jane (recorded on acks and in the audit trail)")
    tok.add_argument("--scopes", required=True, help="comma-separated, e.g. alerts:read,alerts:ack (README: Security)")
    tok.add_argument("--ttl", default="8h", help="lifetime: 30m, 8h, 7d (default 8h)")
    tok.set_defaults(func=_cmd_token)

    topics = sub.add_parser("topics", help="create the topics on FLEET_KAFKA_BOOTSTRAP")
    topics.set_defaults(func=_cmd_topics)

    # risk models and inferred twins: the arguments go unparsed to the module's main (its --help lists them)
    def risk_cli(module: str) -> Callable[[argparse.Namespace], Any]:
        return lambda a: importlib.import_module(module).main(a.args)

    for name, module, text in (
            ("train", "models.risk.train", "train the component-failure risk models from a history dataset: "
             "--telemetry PATH --maintenance PATH --out DIR [--fleet PATH --weather PATH ...]"),
            ("evaluate", "models.risk.evaluate", "evaluate a risk-model artifact on its held-out vehicles "
             "(Markdown report + PNG plots): --artifact DIR --data DIR --out DIR"),
            ("infer", "models.inference.cli", "infer a twin of a black-box component from its inputs and outputs: "
             "--data PATH --inputs A,B --outputs C,D --out DIR [...]; or --predict ARTIFACT --data PATH --out CSV"),
            ("assemble", "models.inference.assembly", "check or simulate linked inferred twins: "
             "ASSEMBLY.toml --check | --simulate SCENARIO.toml --out CSV")):
        cmd = sub.add_parser(name, help=text, description=text, prefix_chars="+", add_help=False)
        cmd.add_argument("args", nargs="*", help=f"arguments of python -m {module}")
        cmd.set_defaults(func=risk_cli(module))
    return p


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``fleet``."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except FleetAssuranceError as exc:
        print(f"fleet: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
