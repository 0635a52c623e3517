"""Issue 12.4 under kill -9: the orchestrator process is killed before each write of a run
that owes a sync pipe a reset; the next run still resets it (its offset is foreign)."""
from __future__ import annotations

import os
import signal
import time

import pytest

from contract_helpers import Cluster, pipe_runtime, start_pipe
from orchestration import writes
from repo_root import ROOT
from service import orchestrator


HELD_MS = 60_000      # how long a node holds the write; released once the process is dead


def _first_move_of_a_pipe_that_ran(c: Cluster) -> None:
    for version in range(8):          # the source's offsets grow far beyond a new copy's
        c.src.api("PUT", "/pipes/people/config", {"_id": "people", "type": "pipe", "source": {
            "type": "embedded", "entities": [{"_id": "a", "v": version}]}})
        start_pipe(c.src, "people")
    start_pipe(c.master, "crm-person")


def _copy_deleted_by_hand(c: Cluster) -> None:
    c.placed()
    c.sync(c.slaves["s1"])
    c.slaves["s1"].api("DELETE", "/pipes/crm-person")
    c.slaves["s1"].api("DELETE", "/datasets/crm-person")


def _wait(what: str, ready, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


@pytest.mark.long
@pytest.mark.parametrize("setup", [_first_move_of_a_pipe_that_ran, _copy_deleted_by_hand],
                         ids=["first move", "copy made again"])
def test_killed_anywhere_the_owed_reset_still_happens(nodes, setup, fault_tally, service_forks):
    c = Cluster(nodes)
    setup(c)
    assert pipe_runtime(c.master, "crm-person")["last-seen"] not in (None, "")
    named = c.named()
    start = {name: node.save_state() for name, node in named.items()}
    env = {**os.environ, **c.environ({"s1": ["crm"], "s2": ["erp"]}), "PYTHONPATH": str(ROOT),
           "LOG_LEVEL": "ERROR"}
    config = c.config()

    def restore() -> None:
        for name, node in named.items():
            node.restore_state(start[name])

    restore()
    assert orchestrator.run(config).outcome == "ok"
    counts = {name: len(writes(node.requests())) for name, node in named.items()}
    points = [(name, k) for name, count in counts.items() if name != "src"
              for k in range(count)]
    assert len(points) >= 4
    for name, k in points:
        restore()
        node = named[name]
        # Held far longer than the test takes: the kill lands while the node holds it.
        node.add_fault(method="*", path="^/api/", writes_only=True, skip=k, times=1,
                       delay_ms=HELD_MS, drop=True)
        proc = service_forks.once(env)
        fault_tally.armed += 1
        try:
            # The node holds write k+1, whole: the process dies while it waits for the answer.
            _wait(f"write {k + 1} on {name}",
                  lambda: node.faults()[0]["hits"] == 1 or proc.poll() is not None)
            assert proc.poll() is None, f"the run ended before write {k + 1} on {name}"
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL, (name, k)
        fault_tally.fired += 1
        fault_tally.crashed += 1
        # The node still held the write when the process died; let go now, it is dropped
        # unapplied: wait until the node has let it go.
        assert node.release_held() == 1, (name, k)
        _wait(f"write {k + 1} on {name} to be dropped",
              lambda: any(r["status"] == 0 for r in node.requests()))
        fault_tally.failed_write += 1
        for n in named.values():
            n.emulator("DELETE", "/faults")
        report = orchestrator.run(config)
        assert report.outcome == "ok", ((name, k), report.as_json())
        assert pipe_runtime(c.master, "crm-person")["last-seen"] in (None, ""), (name, k)
