"""Arm a fault on a write a step is known to make: a probe run from the same state lists the
step's writes, the state is put back, and the fault targets one of those writes by method,
path and occurrence. So a fault step never sits on a step that writes nothing."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

from emulator import EmulatorNode
from service.nodes.client import SesamClient

from faultreport import Tally
from orchestration import writes

T = TypeVar("T")
# A PUT or DELETE is tried 1 + RETRIES times by the client; a POST once.
RETRIES: int = SesamClient.__init__.__kwdefaults__["retries"]
KINDS = {"500": {"status": 500}, "drop": {"drop": True}, "drop_after": {"drop_after": True},
         "400": {"status": 400}}


@dataclass
class Armed:
    node_id: str
    method: str
    path: str
    kind: str           # a KINDS key

    def settle(self, nodes: dict[str, EmulatorNode], report, tally: Tally) -> None:
        """After the run (`report` its Report): the fault fired and did what its kind says.
        Call before the rules are cleared."""
        (rule,) = nodes[self.node_id].faults()
        failed = any(a["status"] == "failed" and a["node"] == self.node_id
                     for a in report.actions)
        what = (self.kind, self.node_id, self.method, self.path, rule, report.outcome)
        assert rule["hits"] >= 1, f"the fault never fired: {what}"
        if self.kind == "drop_after":
            assert rule["landed"] >= 1, f"the write did not land: {what}"
        elif self.kind != "400":
            # (a 400 on a bulk create may be absorbed: the configs are sent again one by one)
            assert failed and report.outcome == "failed", f"the write did not fail: {what}"
        tally.rule(rule, failed=failed, absorbed=not failed and report.outcome == "ok")


def probe_writes(nodes: dict[str, EmulatorNode], run: Callable[[], object]
                 ) -> dict[str, list[tuple[str, str, int]]]:
    """The writes `run` makes on each node from the current state, which is then restored:
    (method, path, status) each."""
    saved = {nid: n.save_state() for nid, n in nodes.items()}
    for n in nodes.values():
        n.clear_requests()
    run()
    made = {nid: [(r["method"], r["path"], r["status"]) for r in writes(n.requests())]
            for nid, n in nodes.items()}
    for nid, n in nodes.items():
        n.restore_state(saved[nid])
    return made


def arm(nodes: dict[str, EmulatorNode], run: Callable[[], object], node_id: str, k: int,
        kind: str, tally: Tally) -> Armed | None:
    """Fault write k (mod the count) of the first node from `node_id` on that the step writes
    to; None (and nothing armed) when the step writes nothing at all."""
    made = probe_writes(nodes, run)
    # Only writes the node carried out: a 404 on a delete changes nothing to lose an answer of.
    landing = {nid: [at for at, w in enumerate(ws) if 200 <= w[2] < 300]
               for nid, ws in made.items()}
    order = list(nodes)
    start = order.index(node_id)
    for nid in order[start:] + order[:start]:
        if landing[nid]:
            break
    else:
        return None
    at = landing[nid][k % len(landing[nid])]
    method, path, _ = made[nid][at]
    retried = method in ("PUT", "DELETE") and kind != "drop_after"
    tally.armed += 1
    earlier = sum(1 for m, p, _ in made[nid][:at] if (m, p) == (method, path))
    nodes[nid].add_fault(method=method, path="^" + re.escape(path) + "$", skip=earlier,
                         times=1 + RETRIES if retried else 1, **KINDS[kind])
    return Armed(nid, method, path, kind)


def arm_first_writing(nodes: dict[str, EmulatorNode], candidates: Sequence[T],
                      run: Callable[[T], object], node_id: str, k: int, kind: str,
                      tally: Tally) -> tuple[T, Armed | None]:
    """`arm` on the first candidate step (e.g. placements) that writes; the candidate chosen
    (the last when none writes: then nothing is armed and `tally.unarmed` counts it)."""
    for candidate in candidates:
        armed = arm(nodes, lambda: run(candidate), node_id, k, kind, tally)
        if armed is not None:
            return candidate, armed
    tally.unarmed += 1
    return candidates[-1], None
