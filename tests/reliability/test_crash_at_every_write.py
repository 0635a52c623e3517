"""Issue 5 and 18: the orchestrator dies at any write of a multi-node move, after that write
was sent and landed and before its answer was read; nothing is lost and the next run
converges to the state a crash-free run reaches.

Every write of the run is a crash point, on every node. Most are simulated in process (the
client carries the write out, then every request from then on fails before it is sent, as
if the process were gone: quick); one point per node kills the real process with SIGKILL
while the node holds the write, proven by the fault rule's report.
"""
from __future__ import annotations

import os
import re
import signal
import threading
import time

import pytest

from service import orchestrator
from service.nodes.client import SesamClient

from orchestration import writes
from repo_root import ROOT
from scenarios import (EVERY_WRITE_KIND, NEXT, build_with_edits, end_state,
                       holds_every_original, latest_originals, write_kind)



class Crashed(BaseException):
    """The simulated death of the process: nothing it sends after this reaches a node."""


class CrashAt:
    """A stand-in for SesamClient._request that dies right after the chosen write landed."""

    def __init__(self, real, node_id: str, method: str, path: str, earlier: int) -> None:
        self.real, self.target, self.left = real, (node_id, method, path), earlier
        self.lock = threading.Lock()
        self.dead = False
        self.answered: object = "never sent"
        self.sent_after = 0      # requests that reached the wire after the crash (must be 0)

    def __call__(self, client: SesamClient, method: str, path: str, **kwargs):
        with self.lock:
            if self.dead:
                raise Crashed()
            mine = (client.node_id, method, "/api" + path.split("?")[0]) == self.target
            if mine and self.left:
                self.left, mine = self.left - 1, False
        if not mine:
            return self.real(client, method, path, **kwargs)
        try:
            self.answered = self.real(client, method, path, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the answer is what the crash loses
            self.answered = exc
        with self.lock:
            self.dead = True
        raise Crashed()


def _wait(what: str, ready, timeout: float = 10.0, node=None) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            seen = (node.faults(), node.requests()[-4:]) if node else ()
            raise AssertionError(f"timed out waiting for {what} {seen}")
        time.sleep(0.005)


@pytest.fixture
def scenario(nodes):
    sc = build_with_edits(nodes)
    start = sc.save()
    sc.restore(start)   # also clears the request logs: count this run's writes only
    expected = latest_originals(sc.master)
    assert orchestrator.run(sc.config(NEXT)).outcome == "ok"
    target = end_state(sc)
    run_writes = {nid: [(r["method"], r["path"]) for r in writes(node.requests())]
                  for nid, node in sc.nodes.items()}
    assert {write_kind(nid, m, p) for nid, ws in run_writes.items() for m, p in ws} \
        == EVERY_WRITE_KIND
    return sc, start, expected, target, run_writes


def _converges(sc, expected, target, what) -> None:
    assert holds_every_original(sc.master, expected) == [], what
    report = orchestrator.run(sc.config(NEXT))
    assert report.outcome == "ok", (what, report.as_json())
    assert end_state(sc) == target, what


def test_a_crash_right_after_any_write_landed_converges(scenario, monkeypatch, fault_tally):
    sc, start, expected, target, run_writes = scenario
    real = SesamClient._request
    for nid, ws in run_writes.items():
        for at, (method, path) in enumerate(ws):
            what = f"crash after {method} {path} (write {at + 1} on {nid}) landed"
            sc.restore(start)
            crash = CrashAt(real, nid, method, path, ws[:at].count((method, path)))
            monkeypatch.setattr(SesamClient, "_request",
                                lambda client, *args, **kwargs: crash(client, *args, **kwargs))
            orchestrator.run(sc.config(NEXT))
            monkeypatch.setattr(SesamClient, "_request", real)
            fault_tally.armed += 1
            assert crash.dead, f"never reached: {what}"
            fault_tally.fired += 1
            # The write reached the node and was carried out there, its answer unread.
            logged = [r for r in sc.nodes[nid].requests() if (r["method"], r["path"]) == (method, path)]
            assert logged and 200 <= logged[-1]["status"] < 300, (what, logged)
            assert sc.nodes[nid].save_state() != start[nid], f"nothing changed: {what}"
            fault_tally.crashed += 1
            fault_tally.landed += 1
            _converges(sc, expected, target, what)
    assert fault_tally.crashed == sum(map(len, run_writes.values()))


def _middle(ws: list[tuple[str, str]]) -> int:
    return len(ws) // 2


def test_killed_while_a_node_holds_a_write_then_restarted_converges(scenario, fault_tally,
                                                                   service_forks):
    sc, start, expected, target, run_writes = scenario
    env = {**os.environ, **sc.environ(NEXT), "PYTHONPATH": str(ROOT), "LOG_LEVEL": "ERROR"}
    for nid, ws in run_writes.items():
        at = _middle(ws)
        method, path = ws[at]
        what = f"SIGKILL while {nid} holds {method} {path} (write {at + 1})"
        sc.restore(start)
        node = sc.nodes[nid]
        # The node holds the write (far longer than the test takes, until it is released),
        # then carries it out and cuts the connection: the process is killed while it waits
        # for the answer.
        node.add_fault(method=method, path="^" + re.escape(path) + "$",
                       skip=ws[:at].count((method, path)), times=1, delay_ms=60_000,
                       drop_after=True)
        proc = service_forks.once(env)
        fault_tally.armed += 1
        try:
            _wait(f"the write to reach the node ({what})",
                  lambda: proc.poll() is None and node.faults()[0]["hits"] == 1
                  or proc.poll() is not None)
            assert proc.poll() is None, f"the run ended before the crash point: {what}"
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL, what
        fault_tally.fired += 1
        fault_tally.crashed += 1
        assert node.release_held() == 1, f"the node no longer held the write: {what}"
        _wait(f"the held write to land ({what})", lambda: node.faults()[0]["landed"] == 1,
              node=node)
        fault_tally.landed += 1
        assert node.save_state() != start[nid], f"nothing changed: {what}"
        for n in sc.nodes.values():
            n.emulator("DELETE", "/faults")
        _converges(sc, expected, target, what)
    assert fault_tally.crashed == len(run_writes)
