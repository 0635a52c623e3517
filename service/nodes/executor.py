"""Applies a Plan through one SesamClient per node.

An action starts as soon as every action in its `after` has succeeded; one whose
prerequisite failed (or was skipped) is skipped, so a failure never lets a later, dependent
step (a delete, say) run on a false premise. Creations on one node that become ready
together go out as one bulk POST. At most `client.concurrency` requests are in flight per
node (the clients' own semaphores enforce the same cap for every other caller).
"""
from __future__ import annotations

import heapq
import queue
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from service.core.actions import Action, Kind, Plan, Status
from service.core.generated import built
from service.core.names import ComponentKind
from service.core.opaque import Digest
from service.nodes import pumps
from service.nodes.client import SesamClient, SesamError, SesamForbidden, SesamInvalid

BULK = 100   # components per bulk POST: big enough to save round trips, small enough to send
_CREATES: tuple[Kind, ...] = ("create-pipe", "create-system")


@dataclass(frozen=True, slots=True)   # slots: a first run holds one per action, 10,000s
class Result:
    index: int
    action: Action
    status: Status              # never "planned": that is a dry run's, which runs nothing
    error: str | None = None    # one line, from SesamError: never a token
    forbidden: bool = False     # the node answered 403 (the token lacks a permission)
    changed: bool = False       # skipped: someone changed the component since the run read it


class Changed(Exception):
    """The component is not what the plan was based on: someone wrote it meanwhile."""


def _unchanged(client: SesamClient, action: Action) -> None:
    """Re-read a master component right before overwriting it: an upload that landed since
    the run read the master is never overwritten (the window left is one round trip)."""
    if action.expect is None:
        return
    kind: ComponentKind = "pipes" if action.kind == "update-pipe" else "systems"
    if client.get_config(kind, action.id) != built(action.expect):
        raise Changed(f"{action.node}: {kind[:-1]} changed since the run read it (an upload?); "
                      "not overwritten, the next run takes it from there")


Progress = Callable[[Result], None]


def _payload(action: Action) -> dict[str, Any]:
    """What a write sends: the action's payload as the dict the client takes (itself when it
    is one: a copy per config of each bulk of 100, all bulks at once, is memory for nothing;
    the client only reads it)."""
    if action.payload is None:   # a planner's bug: never send a null config
        raise ValueError(f"{action.kind} without a payload")
    if isinstance(action.payload, Digest):   # likewise: a digest is no config to send
        raise ValueError(f"{action.kind} of a config kept by its digest")
    payload = built(action.payload)
    return payload if isinstance(payload, dict) else dict(payload)


def _apply(client: SesamClient, batch: Sequence[Action]) -> None:
    first = batch[0]
    kind = first.kind
    if kind == "create-pipe":
        client.create_pipes([_payload(a) for a in batch])
    elif kind == "create-system":
        client.create_systems([_payload(a) for a in batch])
    elif kind == "update-pipe":
        _unchanged(client, first)
        client.put_pipe(first.id, _payload(first))
    elif kind == "update-system":
        _unchanged(client, first)
        client.put_system(first.id, _payload(first))
    elif kind == "delete-pipe":
        client.delete_pipe(first.id)
    elif kind == "delete-system":
        client.delete_system(first.id)
    elif kind == "delete-dataset":
        client.delete_dataset(first.id)
    elif kind == "reset-pipe":
        # An empty last-seen makes the pump read its source from the start again.
        pumps.reset(client, first.id)
    elif kind in ("disable-pipe", "enable-pipe"):
        pumps.operate(client, first.id, "disable" if kind == "disable-pipe" else "enable")
    elif kind == "quiesce-pipe":
        pumps.quiesce(client, first.id)
    elif kind == "set-env":
        client.post_env(_payload(first))
    else:  # pragma: no cover - every Kind in actions.py has a branch above
        raise ValueError(f"unknown action kind {kind}")


Outcomes = dict[int, BaseException | None]   # plan index -> its error, None when it succeeded


def _apply_isolated(client: SesamClient, actions: Sequence[Action],
                    batch: list[int]) -> Outcomes:
    """Apply a batch; when the node refuses a bulk create (400), only the configs it names
    fail, with its messages, and the rest are sent again (one POST each when it names none):
    one bad config blocks only itself. The normal case stays one request."""
    try:
        _apply(client, [actions[i] for i in batch])
        return dict.fromkeys(batch)
    except SesamInvalid as exc:
        if len(batch) == 1:
            return {batch[0]: exc}
        named = {i: exc.messages[actions[i].id] for i in batch if actions[i].id in exc.messages}
        outcomes: Outcomes = {i: SesamInvalid(exc.where, {actions[i].id: msg})
                              for i, msg in named.items()}
        rest = [i for i in batch if i not in named]
        groups = [rest] if named else [[i] for i in rest]
        for group in groups:
            if group:
                outcomes.update(_apply_isolated(client, actions, group))
        return outcomes
    except BaseException as exc:  # noqa: BLE001 - reported as the batch's failure
        return dict.fromkeys(batch, exc)


def execute(plan: Plan, clients: Mapping[str, SesamClient], *, workers: int = 32,
            progress: Progress | None = None) -> list[Result]:
    """Run the plan; results in plan order. Never raises for a node's error.

    Each node gets at most its client's `concurrency` requests handed to the thread pool at
    once; the rest wait in that node's ready queue, longest chain of dependent steps still
    to follow first (then plan order): the step that holds up most goes out first, so a
    move's first PUTs are not queued behind other pipes' resets. A node with thousands of
    ready actions neither holds every worker (starving the other nodes) nor costs a future
    apiece. Completions arrive on a queue and only the dependents of a finished action are
    looked at again, so the bookkeeping is linear in the size of the plan.
    """
    actions = plan.actions
    results: list[Result | None] = [None] * len(actions)
    dependents: list[list[int]] = [[] for _ in actions]
    missing = [0] * len(actions)          # prerequisites not yet done
    for i, a in enumerate(actions):
        deps = set(a.after)
        missing[i] = len(deps)
        for d in deps:
            dependents[d].append(i)
    # Steps that must still follow each action (its longest chain of dependents).
    tail = [0] * len(actions)
    for i in range(len(actions) - 1, -1, -1):
        for j in dependents[i]:
            if j > i:   # `after` points backwards in a well-formed plan
                tail[i] = max(tail[i], tail[j] + 1)
    limit = {node: client.concurrency for node, client in clients.items()}
    in_flight: dict[str, int] = {}
    ready_single: dict[str, list[tuple[int, int]]] = {}      # node -> heap of (-tail, index)
    ready_create: dict[tuple[str, Kind], list[int]] = {}     # (node, kind) -> indices
    completed: queue.SimpleQueue[tuple[list[int], Outcomes]] = queue.SimpleQueue()

    def make_ready(i: int) -> None:
        a = actions[i]
        if a.kind in _CREATES:
            ready_create.setdefault((a.node, a.kind), []).append(i)
        else:
            heapq.heappush(ready_single.setdefault(a.node, []), (-tail[i], i))

    def finish(result: Result) -> None:
        results[result.index] = result
        if progress is not None:
            progress(result)

    def settle(result: Result) -> None:
        """Record a result; release its dependents, or skip them (and theirs) if it failed."""
        finish(result)
        if result.status == "done":
            for j in dependents[result.index]:
                missing[j] -= 1
                if missing[j] == 0 and results[j] is None:
                    make_ready(j)
            return
        stack = list(dependents[result.index])
        while stack:
            j = stack.pop()
            if results[j] is None:
                finish(Result(j, actions[j], "skipped", "a step it depends on did not succeed"))
                stack.extend(dependents[j])

    def run(batch: list[int]) -> None:
        completed.put((batch, _apply_isolated(clients[actions[batch[0]].node], actions, batch)))

    def dispatch(pool: ThreadPoolExecutor) -> int:
        """Hand ready work to the pool, up to each node's limit; returns batches sent."""
        sent = 0
        nodes = sorted({n for n, h in ready_single.items() if h}
                       | {n for (n, _), g in ready_create.items() if g})
        for node in nodes:
            cap = limit.get(node, 1)
            # Creations first: they are what other steps wait for; one bulk POST per 100.
            for kind in _CREATES:
                group = ready_create.get((node, kind))
                while group and in_flight.get(node, 0) < cap:
                    chunk, group[:] = group[:BULK], group[BULK:]
                    in_flight[node] = in_flight.get(node, 0) + 1
                    pool.submit(run, chunk)
                    sent += 1
            heap = ready_single.get(node)
            while heap and in_flight.get(node, 0) < cap:
                in_flight[node] = in_flight.get(node, 0) + 1
                pool.submit(run, [heapq.heappop(heap)[1]])
                sent += 1
        return sent

    for i in range(len(actions)):
        if missing[i] == 0:
            make_ready(i)
    running = 0
    pool_size = max(1, min(workers, sum(limit.values()) or 1))
    with ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="sesam") as pool:
        running += dispatch(pool)
        while running:
            batch, outcomes = completed.get()
            while True:
                running -= 1
                node = actions[batch[0]].node
                in_flight[node] -= 1
                for i in batch:
                    exc = outcomes[i]
                    if exc is None:
                        settle(Result(i, actions[i], "done"))
                    elif isinstance(exc, Changed):
                        settle(Result(i, actions[i], "skipped", str(exc), changed=True))
                    elif isinstance(exc, SesamError):
                        settle(Result(i, actions[i], "failed", str(exc),
                                      forbidden=isinstance(exc, SesamForbidden)))
                    else:
                        settle(Result(i, actions[i], "failed",
                                      f"{actions[i].node}: unexpected {type(exc).__name__}"))
                try:   # take every completion already in, so their dependents batch together
                    batch, outcomes = completed.get_nowait()
                except queue.Empty:
                    break
            running += dispatch(pool)
    # None: unreachable with a well-formed plan (`after` points backwards).
    return [result if result is not None
            else Result(i, actions[i], "skipped", "its prerequisites never completed")
            for i, result in enumerate(results)]
