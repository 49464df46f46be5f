"""`make bench`: every benchmark in one run on the embedded broker; writes bench/results.json and .md.

`make bench` first runs ``bench.risk`` (scoring) and ``bench.charging`` (the 10,000-vehicle plan);
their results are folded into the same table.

Environment: BENCH_VEHICLES (5000), BENCH_STEPS (80), BENCH_STATE_TWINS (100000).
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import latency, state, throughput
from bench.harness import PARTITIONS, fleet_messages
from streams.broker import EmbeddedBroker

OUT = Path(__file__).resolve().parent


def _round(obj: Any) -> Any:
    if isinstance(obj, float):
        return round(obj, 4)
    if isinstance(obj, dict):
        return {k: _round(v) for k, v in obj.items()}
    return obj


def main() -> None:
    vehicles = int(os.environ.get("BENCH_VEHICLES", "5000"))
    steps = int(os.environ.get("BENCH_STEPS", "80"))
    state_twins = int(os.environ.get("BENCH_STATE_TWINS", "100000"))
    tmp = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    messages = fleet_messages(vehicles, steps)
    results: dict[str, Any] = {"setup": {
        "vehicles": vehicles, "steps_s": steps, "records": len(messages),
        "mean_record_bytes": sum(len(v) for _, v in messages) / len(messages), "partitions": PARTITIONS,
        "broker": "Tansu (embedded, memory)", "python": platform.python_version(), "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}
    with EmbeddedBroker(log_path=tmp / "broker.log") as broker:
        results["throughput"] = throughput.run(broker, messages, tmp)
        half = 0.5 * results["throughput"]["service"]["records_per_s"]
        results["latency"] = latency.run(broker, messages[: int(half * 20)], half, tmp)
        results["state"] = state.run(broker, state_twins, tmp)
    scoring, charging = OUT / "risk_report" / "scoring.json", OUT / "charging_report" / "results.json"
    if scoring.exists():
        results["scoring"] = json.loads(scoring.read_text())
    if charging.exists():
        results["charging"] = json.loads(charging.read_text())["scale"]
    results = _round(results)
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (OUT / "results.md").write_text(render(results))
    print(render(results))


def _secs(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f} s"


def render(r: dict[str, Any]) -> str:
    s, t, lat, st = r["setup"], r["throughput"], r["latency"], r["state"]
    mem, rocks = st["memory"], st["rocksdb"]
    return "\n".join([
        "# Benchmark results",
        "",
        f"{s['records']:,} simulated telemetry records ({s['vehicles']:,} vehicles × {s['steps_s']} s, mean "
        f"{s['mean_record_bytes']:.0f} B), {s['partitions']} partitions, {s['broker']}, Python {s['python']}, "
        f"{s['cpus']} CPUs, {s['when']}. All figures from one run of `make bench`.",
        "",
        "## Throughput (one worker process)",
        "",
        "| path | records/s | ratio to ceiling |",
        "|---|---:|---:|",
        f"| ceiling: raw aiokafka `getmany` + strict decode, no state | {t['ceiling']['records_per_s']:,.0f} | 1.00 |",
        f"| service: worker, decode → twin merge + history → weather residency → alert rules → batched risk "
        f"scoring (demo model) → changelog → commit | "
        f"{t['service']['records_per_s']:,.0f} | {t['ratio_service_to_ceiling']:.2f} |",
        f"| core: decode + merge in-process, no Kafka | {t['core']['records_per_s']:,.0f} | – |",
        *_signed_rows(t),
        "",
        f"## Latency at {lat['offered_records_per_s']:,.0f} records/s offered (50 % of the service maximum)",
        "",
        f"Event → twin update: p50 {lat['p50_s'] * 1000:.0f} ms, p99 {lat['p99_s'] * 1000:.0f} ms "
        f"({lat['observations']:.0f} batches; {lat['note']}). Achieved send rate "
        f"{lat['achieved_records_per_s']:,.0f} records/s.",
        "",
        _alert_line(lat.get("alert")),
        "",
        f"## State with {st['twins']:,} twins",
        "",
        "| store | RSS empty | RSS with twins | bytes per twin | projected RSS at 1M twins | restart → first record "
        "| `GET /fleet/summary` |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| memory | {mem['rss_start_mb']:.0f} MB | {mem['rss_with_twins_mb']:.0f} MB | {mem['bytes_per_twin']:.0f} | "
        f"{mem['projected_rss_1m_twins_gb']:.2f} GB | – | {_secs(mem.get('fleet_summary_s'))} |",
        f"| RocksDB | {rocks['rss_start_mb']:.0f} MB | {rocks['rss_with_twins_mb']:.0f} MB | "
        f"{rocks['bytes_per_twin']:.0f} | {rocks['projected_rss_1m_twins_gb']:.2f} GB | "
        f"{rocks['restart_to_first_record_s']:.1f} s | {_secs(rocks.get('fleet_summary_s'))} |",
        "",
        "Restart time includes the embedded broker's group join (it answers JoinGroup only after the",
        "3 s rebalance timeout used here). `GET /fleet/summary` (one worker, every twin read as a brief,",
        "`twins.brief`): median of 3 requests.",
        "",
        *_scoring_and_charging(r),
    ])


def _signed_rows(t: dict[str, Any]) -> list[str]:
    sg = t.get("signed")
    if not sg:
        return []
    return [
        f"| ceiling on the same records signed (`fleet-kid`/`fleet-sig` headers, one key per vehicle) | "
        f"{sg['ceiling']['records_per_s']:,.0f} | 1.00 |",
        f"| service with `FLEET_SIGNING_MODE=require` (HMAC-SHA256 of every record checked) | "
        f"{sg['service']['records_per_s']:,.0f} | {sg['ratio_service_to_ceiling']:.2f} |",
        "",
        f"Signature verification changes the service/ceiling ratio by {t['signed_ratio_change']:+.1%} "
        f"(by {t['signed_cpu_ratio_change']:+.1%} counted in CPU time; measured side by side in this run; the "
        "budget is −10 %).",
    ]


def _alert_line(a: dict[str, Any] | None) -> str:
    if not a or not a.get("observations"):
        return "Event → alert: no alert opened during the run."
    return (f"Event → alert published: p50 {a['p50_s'] * 1000:.0f} ms, p99 {a['p99_s'] * 1000:.0f} ms "
            f"({a['observations']:.0f} alerts opened by the shipped rules plus a benchmark overspeed rule; "
            f"{a['note']}).")


def _scoring_and_charging(r: dict[str, Any]) -> list[str]:
    out = ["## Risk scoring and charging", "", "| benchmark | figure | setup |", "|---|---:|---|"]
    sc = r.get("scoring")
    if sc:
        e2e = sc.get("end_to_end_twins_per_s")
        setup = (f"batches of {sc.get('batch_twins', 0):,} twins (distinct vehicles and residency lists, weather "
                 f"days already looked up), {sc.get('threads', 1)} thread, model "
                 f"{sc.get('artifact_version')} (`python -m bench.risk`)")
        out.append(f"| risk scoring of stored twins, twins/s end to end (records read, feature rows, probabilities, "
                   f"top features, each record written again with its new `RiskState`) | {e2e:,.0f} | {setup} |")
        if "end_to_end_objects_twins_per_s" in sc:
            out.append(f"| risk scoring of twin objects (unflushed changes), twins/s end to end (feature rows, "
                       f"probabilities, top features, the `RiskState` objects) | "
                       f"{sc['end_to_end_objects_twins_per_s']:,.0f} | same |")
        if "feature_matrix_twins_per_s" in sc:
            out.append(f"| of which: feature rows only, twins/s | {sc['feature_matrix_twins_per_s']:,.0f} | same |")
            out.append(f"| of which: probabilities + top features + `RiskState`s on ready rows, rows/s | "
                       f"{sc['score_rows_per_s']:,.0f} | {sc.get('rows', 0):,} rows |")
        out.append(f"| risk scoring, rows/s (`predict_proba`, 4 components) | {sc['rows_per_s']:,.0f} | same |")
        if "decode_brief_twins_per_s" in sc:
            out.append(f"| stored twins read, twins/s: in full (`decode_twin`) / as briefs (`twins.brief`: fleet "
                       f"listings, staleness sweep) | {sc['decode_full_twins_per_s']:,.0f} / "
                       f"{sc['decode_brief_twins_per_s']:,.0f} | same records "
                       f"({sc.get('record_bytes_mean', 0):,.0f} B mean), side by side |")
    ch = r.get("charging")
    if ch:
        out.append(f"| charging plan, {ch['vehicles']:,} vehicles × {ch['slots']} slots, {ch['sites']} sites | "
                   f"{ch['wall_s_median']:.2f} s | median of {len(ch['wall_s_runs'])} runs, HiGHS LP on one core, "
                   f"{ch['share_met']:.1%} of the energy needed delivered (`python -m bench.charging`) |")
        if "tree" in ch:
            t = ch["tree"]
            out.append(f"| same, every site wired (transformer, panels, per-line limits, EVSE pilots) | "
                       f"{t['wall_s_median']:.2f} s | median of {len(t['wall_s_runs'])} runs, one core, "
                       f"{t['share_met']:.1%} delivered |")
    return out + [""] if len(out) > 4 else []


if __name__ == "__main__":
    main()
