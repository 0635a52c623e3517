"""Issue 5 and 18, faults at every write: each write of a run with every kind of move, made
to fail (500, or the connection cut before the node acts) or to land unanswered (cut after
the node acted), on every node. Each case proves its fault fired and what it did: the write
failed after the client's retries, or landed with its answer lost, or (separate cases) a
retry absorbed it. Nothing is lost on the way, and the next run converges to exactly the
state a fault-free run reaches.
"""
from __future__ import annotations

import re

import pytest

from service import orchestrator
from service.nodes.client import SesamClient

from orchestration import writes
from scenarios import (EVERY_WRITE_KIND, NEXT, build_with_edits, end_state,
                       holds_every_original, latest_originals, write_kind)

# SesamClient's defaults: a PUT or DELETE is tried 1 + RETRIES times; a POST once.
RETRIES = SesamClient.__init__.__kwdefaults__["retries"]
FAILING = ({"status": 500}, {"drop": True}, {"drop_after": True})


@pytest.mark.long
def test_a_fault_at_any_write_fails_it_or_lands_it_and_the_next_run_converges(nodes, fault_tally):
    sc = build_with_edits(nodes)
    start = sc.save()
    sc.restore(start)   # also clears the request logs: count this run's writes only
    expected = latest_originals(sc.master)
    config = sc.config(NEXT)

    clean = orchestrator.run(config)
    assert clean.outcome == "ok", clean.as_json()
    target = end_state(sc)
    run_writes = {nid: [(r["method"], r["path"]) for r in writes(node.requests())]
                  for nid, node in sc.nodes.items()}
    kinds = {write_kind(nid, m, p) for nid, ws in run_writes.items() for m, p in ws}
    assert kinds == EVERY_WRITE_KIND, kinds

    violations: list[str] = []
    for node in sc.nodes.values():
        node.add_observer(lambda *_: violations.extend(holds_every_original(sc.master, expected)))

    def case(nid: str, at: int, fault: dict, *, times: int) -> tuple[dict, object]:
        method, path = run_writes[nid][at]
        earlier = run_writes[nid][:at].count((method, path))
        sc.restore(start)
        sc.nodes[nid].add_fault(method=method, path="^" + re.escape(path) + "$", skip=earlier,
                                times=times, **fault)
        fault_tally.armed += 1
        first = orchestrator.run(config)
        (rule,) = sc.nodes[nid].faults()
        what = f"{method} {path} (write {at + 1} on {nid}) with {fault} x{times}"
        assert rule["hits"] > 0, f"never fired: {what}"
        for node in sc.nodes.values():
            node.emulator("DELETE", "/faults")
        again = orchestrator.run(config)
        assert again.outcome == "ok", (what, again.as_json())
        assert end_state(sc) == target, what
        assert not violations, (what, violations[:3])
        return rule, first

    for nid, ws in run_writes.items():
        for at, (method, path) in enumerate(ws):
            retried = method in ("PUT", "DELETE")
            hard = 1 + RETRIES if retried else 1
            for fault in FAILING:
                rule, first = case(nid, at, fault, times=hard)
                # Hard enough to outlast the retries: every attempt met the fault, the write
                # failed, and the run says so.
                assert rule["hits"] == hard, (nid, method, path, fault, rule)
                failed = [a for a in first.actions if a["status"] == "failed" and a["node"] == nid]
                assert first.outcome == "failed" and failed, (nid, method, path, fault)
                if fault.get("drop_after"):
                    assert rule["landed"] >= 1, (nid, method, path, rule)
                fault_tally.rule(rule, failed=True)
            if retried:
                # One failed attempt: the client's retry absorbs it and the run is clean.
                for fault in ({"status": 500}, {"drop_after": True}):
                    rule, first = case(nid, at, fault, times=1)
                    assert rule["hits"] == 1, (nid, method, path, fault, rule)
                    assert first.outcome == "ok", (nid, method, path, fault, first.as_json())
                    fault_tally.rule(rule, absorbed=True)
    assert fault_tally.fired == fault_tally.armed
    assert fault_tally.failed_write == 3 * sum(map(len, run_writes.values()))
