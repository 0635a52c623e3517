"""The budget (issues 6 and 17), checked against a scenario's figures.

- initial, steady, move: the latency part, wall(latency) - wall(0 ms) measured in the same
  invocation, <= 1.25 x the critical-path bound (bench/bound.py). The CPU part, wall(0 ms),
  is reported per pipe, not budgeted: it depends on the machine.
- steady also: at most 4 reads per node and 0 writes.
- served-3000*: the served process's peak RSS <= 80 MB; served-10000*: <= 100 MB; both
  runs ok, every concurrent GET /plan answered, no write in the steady run.
- scale: plan time < 2 s (the planner alone, 10,000 pipes).
- cold: `python -m service --plan` (median of several) <= 500 ms wall.
- every scenario: the run's outcome is "ok".
"""
from __future__ import annotations

STEADY_READS_PER_NODE = 4
LATENCY_FACTOR = 1.25
SERVED_PEAK_RSS_MB = {3000: 80, 10_000: 100}
SCALE_PLAN_MS = 2000
COLD_WALL_MS = 500
LATENCY_NAMES = ("initial", "steady", "move")


def budget_text(name: str, r: dict) -> str:
    if name in LATENCY_NAMES:
        text = (f"wall - wall(0) <= {LATENCY_FACTOR} x bound = "
                f"{LATENCY_FACTOR * r['bound']['bound_ms']:.0f} ms")
        return f"<= {STEADY_READS_PER_NODE} reads/node, 0 writes, {text}" \
            if name == "steady" else text
    if name.startswith("served-"):
        return f"peak RSS <= {SERVED_PEAK_RSS_MB[r['pipes']]} MB, /sync and /plan ok"
    if name == "scale":
        return f"plan < {SCALE_PLAN_MS} ms"
    if name == "cold":
        return f"median wall <= {COLD_WALL_MS} ms"
    return ""


def _served(r: dict) -> list[str]:
    misses: list[str] = []
    limit = SERVED_PEAK_RSS_MB[r["pipes"]]
    if r["peak_rss_mb"] > limit:
        misses.append(f"peak RSS {r['peak_rss_mb']:.1f} MB > {limit} MB")
    for run in ("first", "steady"):
        bad = [p for p in r[run]["plans"] if p["status"] != 200 or p["outcome"] != "ok"]
        if bad:
            misses.append(f"{len(bad)} GET /plan during the {run} run not ok: {bad[:2]}")
    if r["steady"].get("writes"):
        misses.append(f"{r['steady']['writes']} writes in the steady run > 0")
    return misses


def check(name: str, r: dict) -> list[str]:
    """The figures that miss, one line each (empty: within budget). Also sets r["budget"]."""
    r["budget"] = budget_text(name, r)
    misses: list[str] = []
    if r.get("outcome") != "ok":
        misses.append(f"outcome {r.get('outcome')!r}, expected 'ok' ({r.get('errors')})")
    if name in LATENCY_NAMES:
        if name == "steady":
            misses += [f"{n} reads on {node} > {STEADY_READS_PER_NODE}"
                       for node, n in r["reads"].items() if n > STEADY_READS_PER_NODE]
            misses += [f"{n} writes on {node} > 0" for node, n in r["writes"].items() if n]
        limit = LATENCY_FACTOR * r["bound"]["bound_ms"]
        if r["latency_part_ms"] > limit:
            misses.append(f"latency part {r['latency_part_ms']:.1f} ms (wall {r['wall_ms']:.1f}"
                          f" - wall(0) {r['wall_ms_0']:.1f}) > {LATENCY_FACTOR} x bound "
                          f"{r['bound']['bound_ms']:.1f} ms = {limit:.1f} ms")
    elif name.startswith("served-"):
        misses += _served(r)
    elif name == "scale":
        if r["plan_ms"] >= SCALE_PLAN_MS:
            misses.append(f"plan {r['plan_ms']:.1f} ms >= {SCALE_PLAN_MS} ms")
    elif name == "cold":
        if r["wall_ms"] > COLD_WALL_MS:
            misses.append(f"cold --plan {r['wall_ms']:.1f} ms > {COLD_WALL_MS} ms")
    return misses
