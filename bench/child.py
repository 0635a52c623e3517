"""The orchestrator under measurement, alone in its own process (`python -m bench.child`).

The service runs in its own container and the nodes are elsewhere; here the emulator nodes
live in the benchmark's main process, so running the orchestrator in this child keeps their
CPU time out of its wall time and its peak memory its own.

Reads its configuration from the environment like the service (MASTER_NODE, SLAVE_NODES,
PER_NODE_CONCURRENCY). With `--plan-first` it first reads every node and times the planner
alone on those snapshots, then drops them. Then it times one full run (read, plan, execute).
Prints one JSON line with the figures, including this process's peak resident memory
(VmHWM from /proc/self/status, else getrusage's ru_maxrss).
"""
from __future__ import annotations

import gc
import json
import os
import resource
import sys
import time
from collections import Counter
from datetime import datetime, timezone


def proc_memory(pid: int | str = "self") -> dict[str, float]:
    """`VmRSS` and `VmHWM` (current and peak resident memory) of a process, in MiB; empty
    where /proc cannot tell."""
    out: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return out


def rss_mb() -> dict[str, float]:
    """Current and peak resident memory of this process, in MiB."""
    out = proc_memory()
    if "VmHWM" not in out:   # ru_maxrss is in KiB on Linux
        out["VmHWM"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rss_mb": round(out.get("VmRSS", 0.0), 1), "peak_rss_mb": round(out["VmHWM"], 1)}


def measure_plan(config) -> dict:
    """Read every node, then time `plan` alone (no I/O inside the timing)."""
    from service.nodes.client import SesamClient
    from service.core.planner import plan
    from service.nodes.reading import read_node

    clients = {n.id: SesamClient(node_id=n.id, api_url=n.api_url,
                                 token=n.jwt_token.get_secret_value()) for n in config.nodes}
    t0 = time.perf_counter()
    snaps = {nid: read_node(c, nid) for nid, c in clients.items()}
    read_s = time.perf_counter() - t0
    master = snaps.pop(config.master.id)
    t0 = time.perf_counter()
    the_plan = plan(config, master, snaps, now=datetime.now(timezone.utc))
    plan_s = time.perf_counter() - t0
    return {"read_ms": round(read_s * 1000, 1), "plan_ms": round(plan_s * 1000, 1),
            "actions": dict(sorted(Counter(a.kind for a in the_plan.actions).items())),
            "peak_rss_after_plan_mb": rss_mb()["peak_rss_mb"]}


def time_phases(orchestrator) -> dict[str, float]:
    """Wrap the run's three phases (read every node, plan, execute) with timers: where a
    run's wall time goes, beside the bound that counts round trips only."""
    phases: dict[str, float] = {}

    def timed(name: str, fn):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                phases[name] = round((time.perf_counter() - t0) * 1000, 1)
        return wrapper
    orchestrator._read_all = timed("read", orchestrator._read_all)
    orchestrator.make_plan = timed("plan", orchestrator.make_plan)
    orchestrator.execute = timed("execute", orchestrator.execute)
    return phases


def main(argv: list[str]) -> int:
    at_start = rss_mb()
    from service import orchestrator
    from service.config import load_config

    config = load_config(os.environ)
    figures: dict = {"rss_at_start_mb": at_start["rss_mb"],
                     "rss_after_imports_mb": rss_mb()["rss_mb"]}
    if "--plan-first" in argv:
        figures.update(measure_plan(config))
        gc.collect()
    phases = time_phases(orchestrator)
    t0 = time.perf_counter()
    report = orchestrator.run(config)
    wall = time.perf_counter() - t0
    figures.update({
        "wall_ms": round(wall * 1000, 1),
        "phases_ms": phases,
        "outcome": report.outcome,
        "errors": list(report.errors)[:5],
        "done": sum(1 for a in report.actions if a["status"] == "done"),
        "not_done": sum(1 for a in report.actions if a["status"] != "done"),
        "peak_rss_mb": rss_mb()["peak_rss_mb"],
    })
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
