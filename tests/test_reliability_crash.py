"""Issue 5: the orchestrator process killed between two requests; the next run converges."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from service import orchestrator

from orchestration import writes
from scenarios import NEXT, build, end_state, holds_every_original, latest_originals

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _wait_for_writes(node, count: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while len(writes(node.requests())) < count:
        assert proc.poll() is None, "the run ended before reaching the crash point"
        assert time.monotonic() < deadline, "the run never reached the crash point"
        time.sleep(0.005)


def test_killed_mid_run_then_restarted_converges(nodes, capsys):
    sc = build(nodes)
    start = sc.save()
    sc.restore(start)   # also clears the request logs: count this run's writes only
    expected = latest_originals(sc.master)
    env = {**os.environ, **sc.environ(NEXT), "PYTHONPATH": ROOT, "LOG_LEVEL": "ERROR"}

    assert orchestrator.run(sc.config(NEXT)).outcome == "ok"
    target = end_state(sc)
    counts = {nid: len(writes(node.requests())) for nid, node in sc.nodes.items()}

    # Crash points spread over the run on every node: before write k+1 of that node.
    points = [(nid, k) for nid, count in counts.items() for k in range(0, count, 2)]
    assert len(points) >= 6
    for nid, k in points:
        sc.restore(start)
        node = sc.nodes[nid]
        # Write k+1 hangs, then is dropped unapplied: the process dies while it waits.
        node.add_fault(method="*", path="^/api/", writes_only=True, skip=k, times=1,
                       delay_ms=400, drop=True)
        proc = subprocess.Popen([sys.executable, "-m", "service", "--once"], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_for_writes(node, k, proc)
            time.sleep(0.05)   # let requests to other nodes that are already on their way land
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=10)
        time.sleep(0.4)        # the hung request has been dropped by now
        for n in sc.nodes.values():
            n.emulator("DELETE", "/faults")
        assert holds_every_original(sc.master, expected) == [], (nid, k)
        report = orchestrator.run(sc.config(NEXT))
        assert report.outcome == "ok", ((nid, k), report.as_json())
        assert end_state(sc) == target, (nid, k)
    with capsys.disabled():
        print(f"\n  crash points run: {len(points)} ({counts} writes per node)")
