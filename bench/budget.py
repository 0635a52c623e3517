"""The budget of issue 6, checked against a scenario's figures.

- steady: at most 4 reads per node and 0 writes; wall <= 3 x latency + 100 ms.
- initial, move: wall <= 1.5 x the critical-path bound (bench/bound.py).
- scale: peak resident memory < 100 MB, plan time < 2 s.
- every scenario: the run's outcome is "ok".
"""
from __future__ import annotations

STEADY_READS_PER_NODE = 4
STEADY_ROUND_TRIPS = 3
STEADY_SLACK_MS = 100
BOUND_FACTOR = 1.5
SCALE_PEAK_RSS_MB = 100
SCALE_PLAN_MS = 2000


def budget_text(name: str, r: dict) -> str:
    if name == "steady":
        limit = STEADY_ROUND_TRIPS * r["latency_ms"] + STEADY_SLACK_MS
        return (f"<= {STEADY_READS_PER_NODE} reads/node, 0 writes, wall <= {limit} ms")
    if name in ("initial", "move"):
        return f"wall <= {BOUND_FACTOR} x bound = {BOUND_FACTOR * r['bound']['bound_ms']:.0f} ms"
    if name == "scale":
        return f"peak RSS < {SCALE_PEAK_RSS_MB} MB, plan < {SCALE_PLAN_MS} ms"
    return ""


def check(name: str, r: dict) -> list[str]:
    """The figures that miss, one line each (empty: within budget). Also sets r["budget"]."""
    r["budget"] = budget_text(name, r)
    misses: list[str] = []
    if r.get("outcome") != "ok":
        misses.append(f"outcome {r.get('outcome')!r}, expected 'ok' ({r.get('errors')})")
    if name == "steady":
        for node, n in r["reads"].items():
            if n > STEADY_READS_PER_NODE:
                misses.append(f"{n} reads on {node} > {STEADY_READS_PER_NODE}")
        for node, n in r["writes"].items():
            if n:
                misses.append(f"{n} writes on {node} > 0")
        limit = STEADY_ROUND_TRIPS * r["latency_ms"] + STEADY_SLACK_MS
        if r["wall_ms"] > limit:
            misses.append(f"wall {r['wall_ms']:.1f} ms > {limit} ms")
    elif name in ("initial", "move"):
        limit = BOUND_FACTOR * r["bound"]["bound_ms"]
        if r["wall_ms"] > limit:
            misses.append(f"wall {r['wall_ms']:.1f} ms > {BOUND_FACTOR} x bound "
                          f"{r['bound']['bound_ms']:.1f} ms = {limit:.1f} ms")
    elif name == "scale":
        if r["peak_rss_mb"] >= SCALE_PEAK_RSS_MB:
            misses.append(f"peak RSS {r['peak_rss_mb']:.1f} MB >= {SCALE_PEAK_RSS_MB} MB")
        if r["plan_ms"] >= SCALE_PLAN_MS:
            misses.append(f"plan {r['plan_ms']:.1f} ms >= {SCALE_PLAN_MS} ms")
    return misses
