"""Assemblies: inferred twins linked output → input by name, checked and simulated together.

An assembly file (TOML), paths relative to it::

    [twins.cell]
    artifact = "cell-twin"            # an artifact directory written by `fleet infer`
    [twins.loop]
    artifact = "loop-twin"

    [[links]]                          # twin output -> twin input, units must match
    from = "cell.heat_W"
    to = "loop.heat_W"

    [inputs]                           # twin input = scenario signal
    "cell.current_A" = "current_A"
    "cell.ambient_C" = "ambient_C"
    "loop.ambient_C" = "ambient_C"
    "loop.speed_mps" = "speed_mps"

Every twin input is fed exactly once. The twins all have direct feedthrough
(their outputs depend on the current input), so a cycle of links is an
algebraic loop and is rejected. A scenario file (TOML) drives the assembly::

    cycles = ["udds", "hwfet"]         # EPA cycles shipped in models/data, 1 Hz, 60 s stops
    vehicle = "Leaf"                   # EV model of models/data/ev_models.json for the road load
    ambient_C = [25.0, 35.0]           # linear ramp over the scenario
    [initial]                          # the first sample of every twin output
    "cell.voltage_V" = 3.9

Scenario signals: ``time_s``, ``speed_mps``, ``motor_kW``, ``current_A``
(one 5 Ah cell of the pack, positive charging) and ``ambient_C``.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.inference.engine import InferredTwin, runner
from models.inference.errors import InferenceError


@dataclass(frozen=True)
class Assembly:
    """Checked assembly: twins, links ``(from, to)``, external inputs ``{twin.input: signal}`` and run order."""

    twins: dict[str, InferredTwin]
    links: tuple[tuple[str, str], ...]
    inputs: dict[str, str]
    order: tuple[str, ...]


def _port(ref: object, where: str) -> tuple[str, str]:
    if not isinstance(ref, str) or ref.count(".") < 1:
        raise InferenceError(f"{where} {ref!r}: expected 'twin.port'")
    twin, port = ref.split(".", 1)
    return twin, port


def build(doc: dict[str, Any], twins: dict[str, InferredTwin]) -> Assembly:
    """Check links, units, feeds and loops of a parsed assembly over loaded twins."""
    links, feeds = [], {}
    for n, link in enumerate(doc.get("links", []), start=1):
        if not isinstance(link, dict) or set(link) != {"from", "to"}:
            raise InferenceError(f"link {n}: needs exactly the keys 'from' and 'to', got {link!r}")
        name = f"link {n} ({link['from']} -> {link['to']})"
        (src, out), (dst, inp) = _port(link["from"], f"{name}: from"), _port(link["to"], f"{name}: to")
        for twin in (src, dst):
            if twin not in twins:
                raise InferenceError(f"{name}: unknown twin {twin!r}; twins: {', '.join(twins)}")
        outs = {p.name: p for p in twins[src].outputs}
        ins = {p.name: p for p in twins[dst].inputs}
        if out not in outs:
            raise InferenceError(f"{name}: {src!r} has no output {out!r}; outputs: {', '.join(outs)}")
        if inp not in ins:
            raise InferenceError(f"{name}: {dst!r} has no input {inp!r}; inputs: {', '.join(ins)}")
        if outs[out].unit != ins[inp].unit:
            raise InferenceError(f"{name}: unit mismatch, {link['from']} is in {outs[out].unit or 'no unit'!r} "
                                 f"but {link['to']} expects {ins[inp].unit or 'no unit'!r}")
        if link["to"] in feeds:
            raise InferenceError(f"{name}: {link['to']} is already fed by {feeds[link['to']]}")
        feeds[link["to"]] = name
        links.append((link["from"], link["to"]))
    inputs = doc.get("inputs", {})
    if not isinstance(inputs, dict):
        raise InferenceError("[inputs]: expected a table of 'twin.input' = 'signal'")
    for ref, signal in inputs.items():
        twin, inp = _port(ref, "[inputs]")
        if twin not in twins or inp not in {p.name for p in twins[twin].inputs}:
            raise InferenceError(f"[inputs] {ref!r}: no such twin input")
        if ref in feeds:
            raise InferenceError(f"[inputs] {ref!r}: already fed by {feeds[ref]}")
        feeds[ref] = f"[inputs] {signal!r}"
    for twin_name, twin in twins.items():
        for p in twin.inputs:
            if f"{twin_name}.{p.name}" not in feeds:
                raise InferenceError(f"input {twin_name}.{p.name} is fed by no link and no [inputs] entry")
    return Assembly(twins, tuple(links), dict(inputs), _order(twins, links))


def _order(twins: dict[str, InferredTwin], links: list[tuple[str, str]]) -> tuple[str, ...]:
    """Topological order of the twins; a cycle (all twins have feedthrough) is an algebraic loop."""
    edges: dict[str, list[tuple[str, str]]] = {t: [] for t in twins}
    for src, dst in links:
        edges[src.split(".")[0]].append((dst.split(".")[0], f"{src} -> {dst}"))
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(t: str, path: list[str]) -> None:
        if state.get(t) == 2:
            return
        if state.get(t) == 1:
            raise InferenceError(f"algebraic loop through links {', '.join(path)}: every twin has direct "
                                 "feedthrough, so the loop has no delay to break it")
        state[t] = 1
        for nxt, label in edges[t]:
            visit(nxt, path + [label])
        state[t] = 2
        order.append(t)

    for t in twins:
        visit(t, [])
    return tuple(reversed(order))


def load_assembly(path: Path) -> Assembly:
    """Read, load the artifacts of and check an assembly file."""
    from models.inference.artifact import load

    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InferenceError(f"assembly {path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise InferenceError(f"assembly {path}: not valid TOML ({exc})") from None
    twins_doc = doc.get("twins")
    if not isinstance(twins_doc, dict) or not twins_doc:
        raise InferenceError(f"assembly {path}: needs a [twins.NAME] table with artifact = PATH per twin")
    twins = {}
    for name, spec in twins_doc.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("artifact"), str):
            raise InferenceError(f"[twins.{name}]: needs artifact = \"PATH\"")
        twins[name] = load(path.parent / spec["artifact"])
    dts = {round(t.dt, 9) for t in twins.values()}
    if len(dts) > 1:
        raise InferenceError(f"assembly {path}: twins sample at different steps {sorted(dts)} s; retrain on one step")
    return build(doc, twins)


def simulate(asm: Assembly, signals: dict[str, np.ndarray], initial: dict[str, float]) -> dict[str, np.ndarray]:
    """Run the linked twins in lockstep; returns every twin output as ``twin.output`` arrays."""
    n = len(next(iter(signals.values())))
    for ref, sig in asm.inputs.items():
        if sig not in signals:
            raise InferenceError(f"[inputs] {ref!r} = {sig!r}: the scenario has no signal {sig!r}; "
                                 f"signals: {', '.join(signals)}")
    feed = {dst: src for src, dst in asm.links}
    runners = {name: runner(t) for name, t in asm.twins.items()}
    out = {f"{name}.{p.name}": np.empty(n) for name, t in asm.twins.items() for p in t.outputs}
    for k in range(n):
        for name in asm.order:
            twin = asm.twins[name]
            u = np.array([signals[asm.inputs[f"{name}.{p.name}"]][k] if f"{name}.{p.name}" in asm.inputs
                          else out[feed[f"{name}.{p.name}"]][k] for p in twin.inputs])
            if k == 0:
                refs = [f"{name}.{p.name}" for p in twin.outputs]
                missing = [r for r in refs if r not in initial]
                if missing:
                    raise InferenceError(f"[initial] {missing[0]!r}: every twin output needs its first sample")
                runners[name].start(np.array([initial[r] for r in refs]), u)
            y = runners[name].output(u)
            for p, v in zip(twin.outputs, y):
                out[f"{name}.{p.name}"][k] = v
            runners[name].advance(u, y)
    return out


def scenario_signals(doc: dict[str, Any]) -> dict[str, np.ndarray]:
    """Scenario signals at 1 Hz from the EPA cycles, a road-load model and an ambient ramp."""
    from models.inference.generators import cell_current_a, traction_kw
    from models.simulation.drive_cycles import CYCLE_NAMES, load_cycle

    cycles = doc.get("cycles", ["udds"])
    if not isinstance(cycles, list) or not cycles or any(c not in CYCLE_NAMES for c in cycles):
        raise InferenceError(f"scenario cycles {cycles!r}: a non-empty list of {list(CYCLE_NAMES)}")
    vehicle = doc.get("vehicle", "Leaf")
    speed = np.concatenate([np.zeros(60)] + [np.r_[load_cycle(c).speed_mps, np.zeros(60)] for c in cycles])
    try:
        motor_kw, batt_kw = traction_kw(speed, 1.0, str(vehicle))
    except StopIteration:
        raise InferenceError(f"scenario vehicle {vehicle!r}: not a model of models/data/ev_models.json") from None
    amb = doc.get("ambient_C", [25.0, 25.0])
    if not (isinstance(amb, list) and len(amb) == 2 and all(isinstance(a, int | float) for a in amb)):
        raise InferenceError(f"scenario ambient_C {amb!r}: expected [start, end] in °C")
    return {"time_s": np.arange(len(speed), dtype=float), "speed_mps": speed, "motor_kW": motor_kw,
            "current_A": cell_current_a(batt_kw, str(vehicle)),
            "ambient_C": np.linspace(float(amb[0]), float(amb[1]), len(speed))}


def main(argv: list[str] | None = None) -> None:
    """``fleet assemble ASSEMBLY --check`` or ``--simulate SCENARIO --out CSV``."""
    p = argparse.ArgumentParser(prog="fleet assemble", description="check or simulate linked inferred twins")
    p.add_argument("assembly")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--check", action="store_true", help="validate names, units, feeds and loops")
    g.add_argument("--simulate", metavar="SCENARIO", help="scenario TOML (drive cycles, ambient, initial outputs)")
    p.add_argument("--out", help="CSV of the scenario signals and every twin output (with --simulate)")
    args = p.parse_args(argv)
    try:
        asm = load_assembly(Path(args.assembly))
        if args.check:
            print(f"{args.assembly}: ok ({len(asm.twins)} twins, {len(asm.links)} links, order {' -> '.join(asm.order)})")
            return
        if not args.out:
            raise InferenceError("--simulate needs --out CSV")
        try:
            scen = tomllib.loads(Path(args.simulate).read_text(encoding="utf-8"))
        except (FileNotFoundError, tomllib.TOMLDecodeError) as exc:
            raise InferenceError(f"scenario {args.simulate}: {exc}") from None
        signals = scenario_signals(scen)
        outputs = simulate(asm, signals, dict(scen.get("initial", {})))
        cols = signals | outputs
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(",".join(cols) + "\n")
            for row in zip(*cols.values()):
                fh.write(",".join(f"{v:.6g}" for v in row) + "\n")
        print(f"wrote {args.out} ({len(signals['time_s'])} steps)")
    except InferenceError as exc:
        print(f"fleet assemble: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
