"""`make bench`: run the scenarios, check the budget, write bench/results.json, print a table.

    .venv/bin/python -m bench [--latency-ms 20] [--concurrency 8] [--repeat 5]
                              [--only initial,steady,move,served-3000,...,scale,cold]
                              [--output bench/results.json]

Exits 1 when a figure misses the budget (each miss is printed), 0 otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from . import scenarios
from .budget import check
from .cold import cold
from .served import served

LATENCY_NAMES = ("initial", "steady", "move")
# name -> (pipes, slaves, systems, realistic)
SERVED = {"served-3000": (3000, 15, 150, True), "served-10000": (10_000, 50, 500, True),
          "served-3000-minimal": (3000, 15, 150, False),
          "served-10000-minimal": (10_000, 50, 500, False)}
ALL = (*LATENCY_NAMES, *SERVED, "scale", "cold")


def _fmt_requests(by_node: dict[str, dict[str, int]]) -> str:
    parts = []
    for node, methods in by_node.items():
        if methods:
            parts.append(f"{node} " + " ".join(f"{m}={n}" for m, n in methods.items()))
    return "; ".join(parts)


def table(results: dict[str, dict], misses: dict[str, list[str]]) -> str:
    lines = []
    head = (f"{'scenario':<9} {'wall ms':>8} {'at 0 ms':>8} {'latency':>8} {'bound ms':>9} "
            f"{'ratio':>6} {'cpu ms/pipe':>11} {'reads':>6} {'writes':>7}  budget")
    lines += [head, "-" * len(head)]
    for name in LATENCY_NAMES:
        r = results.get(name)
        if r is None:
            continue
        b = r["bound"]
        ratio = r["latency_part_ms"] / b["bound_ms"] if b["bound_ms"] else float("nan")
        verdict = "ok" if not misses.get(name) else "MISS"
        lines.append(f"{name:<9} {r['wall_ms']:>8.1f} {r['wall_ms_0']:>8.1f} "
                     f"{r['latency_part_ms']:>8.1f} {b['bound_ms']:>9.1f} {ratio:>6.2f} "
                     f"{r['cpu_ms_per_pipe']:>11.3f} {sum(r['reads'].values()):>6} "
                     f"{sum(r['writes'].values()):>7}  {verdict}: {r['budget']}")
    lines += _served_table(results, misses)
    s = results.get("scale")
    if s is not None:
        verdict = "ok" if not misses.get("scale") else "MISS"
        lines += ["", f"{'scenario':<9} {'plan ms':>9} {'run ms':>9} {'core peak RSS MB':>17}  budget",
                  f"{'scale':<9} {s['plan_ms']:>9.1f} {s['wall_ms']:>9.1f} "
                  f"{s['peak_rss_mb']:>17.1f}  {verdict}: {s['budget']}"]
    c = results.get("cold")
    if c is not None:
        verdict = "ok" if not misses.get("cold") else "MISS"
        lines += ["", f"cold: python -m service --plan {c['wall_ms']:.1f} ms (median of "
                      f"{c['repeat']}), python -c pass {c['python_pass_ms']:.1f} ms, ratio "
                      f"{c['ratio_to_python']}  {verdict}: {c['budget']}"]
    lines.append("")
    for name in ("initial", "move"):
        r = results.get(name)
        if r is not None:
            lines.append(f"{name} bound: {r['bound']['rounds']} rounds x {r['latency_ms']} ms "
                         f"(reads {r['bound']['read_rounds']}, dependent rounds "
                         f"{r['bound']['dependent_rounds']}; set by {r['bound']['limiting']})")
            lines.append(f"{name} requests: {_fmt_requests(r['requests'])}")
    for name in LATENCY_NAMES:
        r = results.get(name)
        if r is not None and len(r.get("wall_ms_runs", [])) > 1:
            lines.append(f"{name} wall ms per repetition: {r['wall_ms_runs']} (median shown)")
    if s is not None:
        lines.append(f"scale: {s['pipes']} {s['shape']} pipes, {s['systems']} systems, "
                     f"{s['slaves']} slaves; requests {s['requests_total']} (incl. the plan "
                     "timing's own reads)")
    return "\n".join(lines)


def _served_table(results: dict[str, dict], misses: dict[str, list[str]]) -> list[str]:
    rows = [r for name, r in results.items() if name in SERVED]
    if not rows:
        return []
    lines = ["", f"{'served':<21} {'start MB':>8} {'first MB':>8} {'steady MB':>9} "
                 f"{'first ms':>9} {'steady ms':>9} {'plan ms':>8}  budget"]
    for r in rows:
        verdict = "ok" if not misses.get(r["scenario"]) else "MISS"
        plan = max((p["wall_ms"] for p in r["steady"]["plans"]), default=0.0)
        lines.append(f"{r['scenario']:<21} {r['rss_started_mb']:>8.1f} "
                     f"{r['first']['peak_rss_mb']:>8.1f} {r['steady']['peak_rss_mb']:>9.1f} "
                     f"{r['first']['wall_ms']:>9.0f} {r['steady']['wall_ms']:>9.0f} "
                     f"{plan:>8.0f}  {verdict}: {r['budget']}")
    lines.append("served: python -m service with its HTTP server; peak RSS during each POST "
                 "/sync with 4 concurrent GET /plan (plan ms: slowest GET /plan, steady run)")
    return lines


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def git_state() -> dict[str, object]:
    """Which code was measured: the commit, and whether service/ differs from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "service", "emulator"],
                               cwd=root, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "service_modified": None}
    return {"commit": commit or None, "service_modified": bool(dirty.strip())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=8,
                        help="per-node concurrency (PER_NODE_CONCURRENCY)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="repetitions of initial/steady/move (median wall time)")
    parser.add_argument("--only", default=",".join(ALL))
    parser.add_argument("--in-process", action="store_true",
                        help="run the orchestrator in this process, beside the emulators")
    parser.add_argument("--output", default=str(Path(__file__).with_name("results.json")))
    args = parser.parse_args(argv)
    wanted = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(wanted) - set(ALL)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")

    started = time.perf_counter()
    load_before = _loadavg()
    results: dict[str, dict] = {}
    if set(wanted) & set(LATENCY_NAMES):
        print(f"initial/steady/move: latency {args.latency_ms} ms, concurrency "
              f"{args.concurrency}, {args.repeat} repetition(s), steady "
              f"{max(args.repeat, scenarios.STEADY_SAMPLES)} times ...", flush=True)
        got = scenarios.latency_scenarios(latency_ms=args.latency_ms,
                                          concurrency=args.concurrency, repeat=args.repeat,
                                          in_process=args.in_process)
        results.update({k: v for k, v in got.items() if k in wanted})
    for name, (pipes, slaves, systems, realistic) in SERVED.items():
        if name in wanted:
            print(f"{name}: python -m service, {pipes:,} pipes on {slaves} slaves, first and "
                  "steady run with concurrent GET /plan ...", flush=True)
            results[name] = served(pipes=pipes, slaves=slaves, systems=systems,
                                   realistic=realistic, concurrency=args.concurrency,
                                   name=name)
    if "scale" in wanted:
        print("scale: 10,000 realistic pipes, 500 systems, 50 slaves, no latency ...", flush=True)
        results["scale"] = scenarios.scale(concurrency=args.concurrency)
    if "cold" in wanted:
        print("cold: python -m service --plan against the demo's nodes ...", flush=True)
        results["cold"] = cold()

    misses = {name: check(name, r) for name, r in results.items()}
    for name, r in results.items():
        r["budget_misses"] = misses[name]
    out = {
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "code": git_state(),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "settings": {"latency_ms": args.latency_ms, "concurrency": args.concurrency,
                     "repeat": args.repeat, "orchestrator": "in-process" if args.in_process
                     else "child process (bench/child.py)"},
        "seconds": round(time.perf_counter() - started, 1),
        # Other processes share the CPUs; wall times are only comparable at similar load.
        "load_average_1min": {"before": load_before, "after": _loadavg()},
        "scenarios": [results[n] for n in ALL if n in results],
    }
    Path(args.output).write_text(json.dumps(out, indent=2) + "\n")
    print()
    print(table(results, misses))
    code = out["code"]
    print(f"\nwrote {args.output} (commit {str(code['commit'])[:12]}"
          f"{', service/ or emulator/ modified' if code['service_modified'] else ''}; "
          f"load average {out['load_average_1min']['before']} -> "
          f"{out['load_average_1min']['after']} on {os.cpu_count()} CPUs)")
    failed = False
    for name, problems in misses.items():
        for problem in problems:
            print(f"BUDGET MISS {name}: {problem}")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
