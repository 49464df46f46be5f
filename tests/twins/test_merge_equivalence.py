"""The optimised merge + history fast path gives the results the straightforward version gave.

A seeded simulated stream (4 vehicles, ~2.5 days at 1/min, so days roll and the ring fills)
is perturbed with duplicates, swapped (out-of-order) readings, too-late replays and a
producer restart, merged, and the resulting twin state digested. ``GOLDEN`` was produced
by the implementation before the fast-path changes (commit 6c040d3) and changed once since, on
purpose, by the sequence-epoch fix (issue 14): five replays of the restarted vehicle's readings
from before its restart were applied a second time (each also counted a spurious restart); they
are now ``too_late`` (``test_replays_from_before_a_restart_are_not_applied_again`` checks the
counts). Floats are rounded to 12 significant digits so a last-bit difference of a platform's
``exp``/``pow`` does not count as a change of results.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from models.simulation import FleetSimulator
from twins.reading import reading_from_dict
from twins.twin import merge_into, new_twin

GOLDEN = "b5fe2349e1c3466f23809e180f6c0ccec7e279f18b776a874e1a2fc3d4fbc072"
STATE_FIELDS = ("values", "times", "first_seen", "last_seen", "seq_max", "seq_mask", "n_applied", "n_duplicate",
                "n_too_late", "n_seq_resets")
#: History parts compared by name, so a component added later does not change the digest.
HISTORY_FIELDS = ("last_ms", "n_updates", "n_ignored", "observed_s", "inverter", "battery", "motor", "lv", "usage",
                  "daily")


def perturbed_stream(vehicles: int = 4, steps: int = 3600, dt_s: float = 60.0, seed: int = 11) -> list[dict[str, Any]]:
    """Simulated messages with duplicates, swaps, too-late replays and one sequence restart."""
    sim = FleetSimulator(vehicles, seed=seed)
    msgs: list[dict[str, Any]] = []
    for _ in range(steps):
        msgs.extend(sim.step(dt_s))
    out: list[dict[str, Any]] = []
    restarted = sim.vins[0]
    base = None
    for i, m in enumerate(msgs):
        if m["vin"] == restarted and i > len(msgs) // 2:
            base = m["seq"] if base is None else base
            m = dict(m, seq=m["seq"] - base)    # producer restart: seq starts again at 0, time goes on
        out.append(m)
        if i % 53 == 0:
            out.append(m)                       # duplicate
        if i % 211 == 0 and i > 2_000:
            out.append(msgs[i - 1_500])         # replay far below the anti-replay window
    for i in range(100, len(out) - 1, 97):
        out[i], out[i + 1] = out[i + 1], out[i]  # neighbours out of order (same vehicle or not)
    return out


def _rounded(obj: Any) -> Any:
    if isinstance(obj, float):
        return float(f"{obj:.12g}")
    if isinstance(obj, (list, tuple)):
        return [_rounded(x) for x in obj]
    if isinstance(obj, msgspec.Struct):
        return [_rounded(x) for x in msgspec.structs.astuple(obj)]
    return obj


def stream_digest(merge: Any = merge_into, make: Any = new_twin, parse: Any = reading_from_dict) -> str:
    """sha256 of every twin's merge state and operating history after the perturbed stream."""
    twins: dict[str, Any] = {}
    stream = perturbed_stream()
    for k in range(0, len(stream), 7):          # groups of several readings, as a batch delivers them
        groups: dict[str, list[Any]] = {}
        for m in stream[k:k + 7]:
            groups.setdefault(m["vin"], []).append(parse(m))
        for vin, readings in groups.items():
            twin = twins.get(vin) or make(vin)
            merge(twin, readings)
            twins[vin] = twin
    h = hashlib.sha256()
    for vin in sorted(twins):
        t = twins[vin]
        state = [_rounded(getattr(t, name)) for name in STATE_FIELDS]
        history = [_rounded(getattr(t.history, name)) for name in HISTORY_FIELDS]
        h.update(msgspec.msgpack.encode([vin, state, history]))
    return h.hexdigest()


def test_merge_and_history_results_are_unchanged():
    assert stream_digest() == GOLDEN


def test_replays_from_before_a_restart_are_not_applied_again():
    stream = perturbed_stream()
    restarted = stream[0]["vin"]
    twin = new_twin(restarted)
    merge_into(twin, [reading_from_dict(m) for m in stream if m["vin"] == restarted])
    # before the fix: (3609, 6, 10) -- five replays of pre-restart readings applied a second time
    assert (twin.n_applied, twin.n_too_late, twin.n_seq_resets) == (3604, 11, 5)
