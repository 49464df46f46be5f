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
    import json
    from pathlib import Path

    from streams.settings import load_settings
    from streams.simulate import make_producer
    from twins.maintenance import decode_maintenance, records_from_csv

    settings = load_settings()
    if not settings.kafka_bootstrap:
        raise FleetAssuranceError("set FLEET_KAFKA_BOOTSTRAP to the cluster to publish to")
    path = Path(args.file)
    text = path.read_text()
    rows = records_from_csv(text) if path.suffix.lower() == ".csv" else [
        json.loads(line) for line in text.splitlines() if line.strip()]
    encoded = []
    for n, row in enumerate(rows, start=2 if path.suffix.lower() == ".csv" else 1):
        raw = json.dumps(row).encode()
        try:
            decode_maintenance(raw)
        except FleetAssuranceError as exc:
            raise FleetAssuranceError(f"{path} line {n}: {exc}; nothing was published") from None
        encoded.append((row["vin"].encode(), raw))
    producer = make_producer(settings, client_id="fleet-maintenance-import")
    for key, raw in encoded:
        producer.send(settings.topic_maintenance, key=key, value=raw)
    producer.flush()
    producer.close()
    print(f"published {len(encoded)} maintenance records to {settings.topic_maintenance}")


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
