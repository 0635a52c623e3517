"""The critical-path bound: the least wall time a plan can take, computed from the plan alone.

Model (what the design promises the executor does, with every request costing exactly one
round trip of latency `L` and no CPU time anywhere):

1. **Reads.** A run first reads every node: 4 list requests per node, all nodes at once, so
   `read_rounds = ceil(4 / c)` round trips (1 at the default concurrency `c` = 8).

2. **Requests.** Each action is one request, except creations: the creations of one kind
   (`create-pipe` / `create-system`) on one node that become ready in the same round are
   sent as one bulk POST of up to 100 (``service.executor.BULK``), so they count as
   ``ceil(n / 100)`` requests.

3. **Rounds.** From the `after` DAG, each request gets
   - `est`: its earliest round, ``est(a) = max(est(d) + 1 for d in a.after)``, 0 without
     prerequisites (a bulk request: that of its members, which share one by construction);
   - `tail`: the rounds that must still follow it, ``tail(a) = max(tail(s) + 1 for s
     depending on a)``, 0 for a last step.
   The dependent rounds are ``D = max(est + 1 + tail)``: the longest chain.

4. **Per-node concurrency.** A node serves at most `c` requests at a time. Take the `k`
   requests on node `n` with ``est >= e`` and ``tail >= t``: none starts before round `e`,
   they need ``ceil(k / c)`` rounds among themselves, and the last of them is followed by
   `t` more. So the run needs at least ``e + ceil(k / c) + t`` rounds, for every `n`, `e`, `t`
   (with ``e = t = 0`` this is plain ``requests(n) / c``; for the longest chain it is `D`).

Bound::

    rounds = read_rounds + max(D, max over n, e, t of  e + ceil(k(n, e, t) / c) + t)
    bound  = rounds x L

It is a lower bound on the best possible schedule under that batching rule, not a
prediction: real requests also cost the orchestrator's and the node's CPU time.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from math import ceil
from typing import Sequence

from service.actions import Action
from service.executor import BULK

READS_PER_NODE = 4
CREATES = ("create-pipe", "create-system")


@dataclass(frozen=True)
class Request:
    """One request the plan makes: a single action or a bulk create."""
    node: str
    kind: str
    members: tuple[int, ...]     # indices into the plan's actions
    est: int
    tail: int


@dataclass
class Bound:
    latency_ms: float
    concurrency: int
    read_rounds: int
    dependent_rounds: int                    # D: the longest chain of writes
    rounds: int                              # read_rounds + the write rounds the bound needs
    requests: dict[str, int] = field(default_factory=dict)   # write requests per node
    reads: dict[str, int] = field(default_factory=dict)      # read requests per node
    limiting: str = ""                                       # what sets the bound

    @property
    def bound_ms(self) -> float:
        return self.rounds * self.latency_ms

    def as_json(self) -> dict:
        return {"bound_ms": round(self.bound_ms, 1), "rounds": self.rounds,
                "read_rounds": self.read_rounds, "dependent_rounds": self.dependent_rounds,
                "concurrency": self.concurrency, "latency_ms": self.latency_ms,
                "write_requests": dict(self.requests), "limiting": self.limiting}


def levels(actions: Sequence[Action]) -> tuple[list[int], list[int]]:
    """(est, tail) per action, from the `after` DAG (indices always point backwards)."""
    est = [0] * len(actions)
    for i, a in enumerate(actions):
        for d in a.after:
            if d >= i:
                raise ValueError(f"action {i} depends on {d}, which does not come before it")
            est[i] = max(est[i], est[d] + 1)
    tail = [0] * len(actions)
    for i in range(len(actions) - 1, -1, -1):
        for d in actions[i].after:
            tail[d] = max(tail[d], tail[i] + 1)
    return est, tail


def requests_of(actions: Sequence[Action], bulk: int = BULK) -> list[Request]:
    """The plan's actions as requests: creations ready in the same round go together."""
    est, tail = levels(actions)
    out: list[Request] = []
    groups: dict[tuple[str, str, int], list[int]] = defaultdict(list)
    for i, a in enumerate(actions):
        if a.kind in CREATES:
            groups[a.node, a.kind, est[i]].append(i)
        else:
            out.append(Request(a.node, a.kind, (i,), est[i], tail[i]))
    for (node, kind, level), members in groups.items():
        for start in range(0, len(members), bulk):
            chunk = tuple(members[start:start + bulk])
            out.append(Request(node, kind, chunk, level, max(tail[i] for i in chunk)))
    return out


def critical_path(actions: Sequence[Action], nodes: Sequence[str], *, concurrency: int,
                  latency_ms: float, bulk: int = BULK) -> Bound:
    """The bound for running `actions` (a Plan's) after reading every node in `nodes`."""
    reqs = requests_of(actions, bulk)
    read_rounds = ceil(READS_PER_NODE / concurrency)
    depth = max((r.est + 1 + r.tail for r in reqs), default=0)
    best, limiting = depth, f"dependent rounds ({depth})"
    by_node: dict[str, list[Request]] = defaultdict(list)
    for r in reqs:
        by_node[r.node].append(r)
    for node, mine in sorted(by_node.items()):
        for e in sorted({r.est for r in mine}):
            for t in sorted({r.tail for r in mine}):
                k = sum(1 for r in mine if r.est >= e and r.tail >= t)
                if k == 0:
                    continue
                rounds = e + ceil(k / concurrency) + t
                if rounds > best:
                    best = rounds
                    limiting = (f"{node}: {k} requests / {concurrency} in flight"
                                + (f" after {e} rounds" if e else "")
                                + (f", then {t} more" if t else ""))
    return Bound(latency_ms=latency_ms, concurrency=concurrency, read_rounds=read_rounds,
                 dependent_rounds=depth, rounds=read_rounds + best,
                 requests={n: len(v) for n, v in sorted(by_node.items())},
                 reads={n: READS_PER_NODE for n in nodes}, limiting=limiting)
