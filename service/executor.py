"""Applies a Plan through one SesamClient per node.

An action starts as soon as every action in its `after` has succeeded; one whose
prerequisite failed (or was skipped) is skipped, so a failure never lets a later, dependent
step (a delete, say) run on a false premise. Creations on one node that become ready
together go out as one bulk POST. The clients cap requests in flight per node.
"""
from __future__ import annotations

import logging
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from .actions import Action, Plan
from .client import SesamClient, SesamError

log = logging.getLogger(__name__)
BULK = 100   # components per bulk POST: big enough to save round trips, small enough to send


@dataclass(frozen=True)
class Result:
    index: int
    action: Action
    status: str                 # done | failed | skipped
    error: str | None = None    # one line, from SesamError: never a token


Progress = Callable[[Result], None]


def _apply(client: SesamClient, batch: Sequence[Action]) -> None:
    first = batch[0]
    kind = first.kind
    if kind == "create-pipe":
        client.create_pipes([a.payload for a in batch])
    elif kind == "create-system":
        client.create_systems([a.payload for a in batch])
    elif kind == "update-pipe":
        client.put_pipe(first.id, dict(first.payload))
    elif kind == "update-system":
        client.put_system(first.id, dict(first.payload))
    elif kind == "delete-pipe":
        client.delete_pipe(first.id)
    elif kind == "delete-system":
        client.delete_system(first.id)
    elif kind == "delete-dataset":
        client.delete_dataset(first.id)
    elif kind == "reset-pipe":
        # An empty last-seen makes the pump read its source from the start again.
        client.pump_operation(first.id, "update-last-seen", **{"last-seen": ""})
    elif kind in ("disable-pipe", "enable-pipe"):
        client.pump_operation(first.id, kind.split("-")[0])
    elif kind == "set-env":
        client.post_env(dict(first.payload))
    else:  # pragma: no cover - KINDS and this table are kept together
        raise ValueError(f"unknown action kind {kind}")


def execute(plan: Plan, clients: Mapping[str, SesamClient], *, workers: int = 32,
            progress: Progress | None = None) -> list[Result]:
    """Run the plan; results in plan order. Never raises for a node's error."""
    actions = plan.actions
    results: dict[int, Result] = {}
    waiting = set(range(len(actions)))
    running: dict[Future, list[int]] = {}

    def finish(result: Result) -> None:
        results[result.index] = result
        level = logging.INFO if result.status == "done" else logging.WARNING
        a = result.action
        log.log(level, "%s %s on %s: %s%s", a.kind, a.id, a.node, result.status,
                f" ({result.error})" if result.error else "")
        if progress is not None:
            progress(result)

    def run(batch: list[int]) -> None:
        _apply(clients[actions[batch[0]].node], [actions[i] for i in batch])

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sesam") as pool:
        while waiting or running:
            ready: list[int] = []
            for i in sorted(waiting):
                deps = [results.get(d) for d in actions[i].after]
                if any(r is not None and r.status != "done" for r in deps):
                    waiting.discard(i)
                    finish(Result(i, actions[i], "skipped", "a step it depends on did not succeed"))
                elif all(r is not None for r in deps):
                    ready.append(i)
            if not ready and not running:
                if waiting:
                    continue   # skipped actions just settled others; look again
                break
            waiting.difference_update(ready)
            bulk: dict[tuple[str, str], list[int]] = {}
            for i in ready:
                a = actions[i]
                if a.kind in ("create-pipe", "create-system"):
                    bulk.setdefault((a.node, a.kind), []).append(i)
                else:
                    running[pool.submit(run, [i])] = [i]
            for group in bulk.values():
                for start in range(0, len(group), BULK):
                    chunk = group[start:start + BULK]
                    running[pool.submit(run, chunk)] = chunk
            if not running:
                continue
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                batch = running.pop(future)
                exc = future.exception()
                for i in batch:
                    if exc is None:
                        finish(Result(i, actions[i], "done"))
                    elif isinstance(exc, SesamError):
                        finish(Result(i, actions[i], "failed", str(exc)))
                    else:
                        finish(Result(i, actions[i], "failed",
                                      f"{actions[i].node}: unexpected {type(exc).__name__}"))
    return [results[i] for i in range(len(actions))]
