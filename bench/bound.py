"""The critical-path bound: the least wall time a plan can take, computed from the plan alone.

Model (what the design promises the executor does, with every request costing exactly one
round trip of latency `L` and no CPU time anywhere):

1. **Reads.** A run first reads every node: 4 list requests per node, up to 8 nodes at once
   (``service.orchestrator.READ_AT_ONCE``), so `read_rounds = ceil(nodes / 8) * ceil(4 / c)`
   round trips (1 for up to 8 nodes at the default concurrency `c` = 8).

2. **Requests.** Each action is one request, except creations: the creations of one kind
   (`create-pipe` / `create-system`) on one node that become ready in the same round are
   sent as one bulk POST of up to 100 (``service.nodes.executor.BULK``), so they count as
   ``ceil(n / 100)`` requests.

   An overwrite in the master (an action carrying `expect`) is preceded by a re-read of
   that component (``GET .../config``, issue 12.6): one more request, and one more round on
   its chain. The bound counts it like any request (it is not a write).

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

5. **Concurrency inside the chains.** The same argument sharpens `est` and `tail` before
   step 4 uses them: a request starts only after *all* its ancestors, so, ancestors on node
   `n` with ``est >= e`` being `k`, ``est(a) >= e + ceil(k / c)``; symmetrically
   ``tail(a) >= ceil(k / c) + t`` over its descendants on `n` with ``tail >= t``. (A slave's
   deletes that wait for the whole master part thus start after the master's 30 PUTs have
   had their ceil(30 / 8) rounds, not after the longest single chain through them.) Plans of
   more than 5,000 requests skip this step (quadratic); their bound is then looser.

Bound::

    rounds = read_rounds + max over n, e, t of  e + ceil(k(n, e, t) / c) + t
                           (est, tail from steps 3 and 5; the longest chain is one case)
    bound  = rounds x L

Every step only states what any schedule must satisfy, so this is a lower bound on the
least wall time of the plan under that batching rule (the optimum itself can be a round or
so more), not a prediction: real requests also cost the orchestrator's and the nodes' CPU
time, which the bound leaves out on purpose.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from math import ceil
from typing import Sequence

from service.core.actions import Action
from service.nodes.executor import BULK
from service.orchestrator import READ_AT_ONCE

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
    rereads: dict[str, int] = field(default_factory=dict)    # re-reads before overwrites

    @property
    def bound_ms(self) -> float:
        return self.rounds * self.latency_ms

    def as_json(self) -> dict:
        return {"bound_ms": round(self.bound_ms, 1), "rounds": self.rounds,
                "read_rounds": self.read_rounds, "dependent_rounds": self.dependent_rounds,
                "concurrency": self.concurrency, "latency_ms": self.latency_ms,
                "write_requests": dict(self.requests), "rereads": dict(self.rereads),
                "limiting": self.limiting}


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


REFINE_LIMIT = 5_000


def _with_concurrency(reqs: list[Request], actions: Sequence[Action],
                      concurrency: int) -> list[Request]:
    """Step 5: est and tail raised by the per-node load of each request's ancestors and
    descendants. Requests are in a topological order once sorted by est."""
    order = sorted(range(len(reqs)), key=lambda u: reqs[u].est)
    reqs = [reqs[u] for u in order]
    unit_of = {i: u for u, r in enumerate(reqs) for i in r.members}
    deps = [sorted({unit_of[d] for i in r.members for d in actions[i].after}) for r in reqs]
    children: list[list[int]] = [[] for _ in reqs]
    for u, ds in enumerate(deps):
        for d in ds:
            children[d].append(u)
    node_mask: dict[str, int] = defaultdict(int)
    for u, r in enumerate(reqs):
        node_mask[r.node] |= 1 << u

    def members(mask: int) -> list[int]:
        out = []
        while mask:
            low = mask & -mask
            out.append(low.bit_length() - 1)
            mask ^= low
        return out

    def load(mask: int, level: list[int]) -> int:
        """max over nodes and thresholds of  threshold + ceil(count / c)."""
        best = 0
        for nmask in node_mask.values():
            values = sorted((level[v] for v in members(mask & nmask)), reverse=True)
            for k, value in enumerate(values, start=1):
                best = max(best, value + ceil(k / concurrency))
        return best

    est = [0] * len(reqs)
    anc = [0] * len(reqs)
    for u in range(len(reqs)):
        for d in deps[u]:
            anc[u] |= anc[d] | (1 << d)
            est[u] = max(est[u], est[d] + 1)
        est[u] = max(est[u], load(anc[u], est))
    tail = [0] * len(reqs)
    desc = [0] * len(reqs)
    for u in range(len(reqs) - 1, -1, -1):
        for ch in children[u]:
            desc[u] |= desc[ch] | (1 << ch)
            tail[u] = max(tail[u], tail[ch] + 1)
        tail[u] = max(tail[u], load(desc[u], tail))
    return [Request(r.node, r.kind, r.members, est[u], tail[u]) for u, r in enumerate(reqs)]


REREAD = "re-read"


def with_rereads(actions: Sequence[Action]) -> list[Action]:
    """The plan with each master overwrite's re-read made a step of its own, just before it."""
    out: list[Action] = []
    index: dict[int, int] = {}
    for i, a in enumerate(actions):
        after = tuple(index[d] for d in a.after)
        if a.expect is not None:
            out.append(Action(REREAD, a.node, a.id, after=after))
            after = (len(out) - 1,)
        out.append(Action(a.kind, a.node, a.id, after=after))
        index[i] = len(out) - 1
    return out


def critical_path(actions: Sequence[Action], nodes: Sequence[str], *, concurrency: int,
                  latency_ms: float, bulk: int = BULK) -> Bound:
    """The bound for running `actions` (a Plan's) after reading every node in `nodes`."""
    actions = with_rereads(actions)
    reqs = requests_of(actions, bulk)
    read_rounds = ceil(len(nodes) / READ_AT_ONCE) * ceil(READS_PER_NODE / concurrency)
    depth = max((r.est + 1 + r.tail for r in reqs), default=0)   # the longest chain alone
    best, limiting = depth, f"dependent rounds ({depth})"
    if len(reqs) <= REFINE_LIMIT:
        reqs = _with_concurrency(reqs, actions, concurrency)
        chains = max((r.est + 1 + r.tail for r in reqs), default=0)
        if chains > best:
            best, limiting = chains, (f"dependent rounds ({depth}) stretched by per-node "
                                      f"concurrency inside the chains ({chains})")
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
                 requests={n: sum(r.kind != REREAD for r in v) for n, v in sorted(by_node.items())},
                 reads={n: READS_PER_NODE for n in nodes}, limiting=limiting,
                 rereads={n: sum(r.kind == REREAD for r in v) for n, v in sorted(by_node.items())})
