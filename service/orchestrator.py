"""One run: read every node, plan, apply (unless dry), report.

The only module that wires the others together; the Runner (for the served app), the
command line, the demo and the benchmark call `run`.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TypeVar

from service.config import Config, Node
from service.core import plan_text
from service.core.actions import Plan
from service.core.flows import flows as flow_health
from service.core.leftovers import Unused, leftover_warnings, unused_names
from service.core.names import name
from service.core.planner import plan as make_plan
from service.core.snapshots import NodeSnapshot
from service.core.tokens import ADMIN, grants_admin
from service.nodes.client import SesamClient, SesamError
from service.nodes.executor import Result, execute
from service.nodes.reading import read_node
from service.redaction import Redactor, credential_values, redact_logs, remember
from service.report import Report

# The loggers that may carry a node's words (errors, validation messages) or ids.
redact_logs("service.runs", "service")
Progress = Callable[[int, int, dict[str, str]], None]
# One run at a time in this process, dry or not, from its first read to its report: a
# read-and-plan holds a snapshot of every node and an executing run the configs it writes,
# each tens of MB for a master of thousands of pipes, and the container has 128 MB. A
# `GET /plan` asked for during a `/sync` therefore waits for the whole run (README).
_ONE_RUN = threading.Lock()


def _now() -> datetime:
    return datetime.now(UTC)


def _client(config: Config, node: Node, strings: dict[str, str]) -> SesamClient:
    return SesamClient(node_id=node.id, api_url=node.api_url,
                       token=node.jwt_token.get_secret_value(),
                       timeout=config.request_timeout, concurrency=config.per_node_concurrency,
                       run_timeout=config.run_timeout, max_answer_mb=config.max_answer_mb,
                       strings=strings)


def _redactor(config: Config, snapshots: dict[str, NodeSnapshot | SesamError]) -> Redactor:
    """Tokens, and the credentials of every system config read: a node's message may quote
    them, and the report goes to stdout (--once, --plan), the logs, /status and the page."""
    systems = [c.original for s in snapshots.values() if isinstance(s, NodeSnapshot)
               for c in s.systems.values()]
    tokens = [n.jwt_token.get_secret_value() for n in config.nodes]
    if config.api_token is not None:
        tokens.append(config.api_token.get_secret_value())
    credentials = credential_values(systems)
    remember([*tokens, *credentials])
    return Redactor([*tokens, *credentials])


def _past_deadline(config: Config) -> str:
    return (f"the run passed its deadline of {config.run_timeout:g} s (RUN_TIMEOUT); "
            "what it had not done is left for the next run")


def _deepest(snapshots: dict[str, NodeSnapshot | SesamError]) -> str:
    """The node whose configs are nested deepest: after a RecursionError, the one to name.
    Walked only then, and without recursion."""
    def depth(value: object) -> int:
        deepest, stack = 0, [(value, 1)]
        while stack:
            item, level = stack.pop()
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item \
                if isinstance(item, list) else ()
            stack.extend((child, level + 1) for child in children)
        return deepest
    levels = {node_id: max((depth(c.original)
                            for c in (*snap.pipes.values(), *snap.systems.values())), default=0)
              for node_id, snap in snapshots.items() if isinstance(snap, NodeSnapshot)}
    return max(levels, key=levels.__getitem__) if levels else "?"


# Nodes read at once (each with its 4 listings in flight). With 32, a steady run over a
# 10,000-pipe master and 50 slaves peaked ~5 MB higher (served-10000 in `make bench`: ~102
# against ~97 MB) for what the listings in flight hold; the master's read, the long one,
# still overlaps all the slaves' reads.
READ_AT_ONCE = 8


def _read_all(clients: dict[str, SesamClient],
              master_id: str) -> dict[str, NodeSnapshot | SesamError]:
    def read(node_id: str) -> NodeSnapshot:
        try:
            slave = node_id != master_id
            return read_node(clients[node_id], node_id, local_secrets=slave, pipe_digests=slave)
        except RecursionError:
            raise SesamError(f"{node_id}: its answer holds JSON nested too deeply to "
                             "handle") from None
    return _at_once(list(clients), read, most=READ_AT_ONCE)


_Key = TypeVar("_Key")
_Got = TypeVar("_Got")


def _at_once(keys: list[_Key], fetch: Callable[[_Key], _Got], *,
             most: int) -> dict[_Key, _Got | SesamError]:
    """`fetch(key)` for every key at once (at most `most` in flight): reads across nodes
    cost one round trip of latency, not one per key. A node's failure is its key's value,
    not the caller's exception."""
    def one(key: _Key) -> _Got | SesamError:
        try:
            return fetch(key)
        except SesamError as exc:
            return exc
    if not keys:
        return {}
    with ThreadPoolExecutor(max_workers=min(most, len(keys))) as pool:
        return dict(zip(keys, pool.map(one, keys), strict=True))


MAX_COUNTED = 50      # dataset deletes whose entity count a dry run asks the node for


def _entity_counts(plan: Plan, clients: dict[str, SesamClient]) -> dict[tuple[str, str], int]:
    """The entity count of each dataset the plan deletes, for the person approving it: read
    by dry runs only, and only when the plan deletes datasets (a steady run reads nothing
    more). A node that does not answer just leaves the count out."""
    wanted = [(a.node, a.id) for a in plan.actions if a.kind == "delete-dataset"][:MAX_COUNTED]
    found = _at_once(wanted, lambda key: clients[key[0]].dataset_count(key[1]), most=8)
    return {key: n for key, n in found.items() if isinstance(n, int)}


def _unused(the_plan: Plan, snapshots: dict[str, NodeSnapshot | SesamError],
            master_id: str) -> Unused | None:
    master = snapshots.get(master_id)
    if not isinstance(master, NodeSnapshot):
        return None
    slaves = {n: s for n, s in snapshots.items()
              if n != master_id and isinstance(s, NodeSnapshot)}
    return unused_names(the_plan, master, slaves)


def _leftovers(unused: Unused | None, clients: dict[str, SesamClient]) -> list[str]:
    """Warnings naming the datasets an earlier orchestrator may have left (leftovers.py).
    Read by dry runs only, one dataset listing per readable node: a steady run keeps to its
    four reads per node, and `--plan` is the upgrade's first step (README)."""
    if unused is None:
        return []
    found = _at_once(list(unused.in_use), lambda node_id: clients[node_id].list_dataset_ids(),
                     most=32)
    unread = [f"node {n}: its datasets could not be listed ({e}), so datasets an earlier "
              "orchestrator may have left there are not reported"
              for n, e in found.items() if isinstance(e, SesamError)]
    listed = {n: ids for n, ids in found.items() if not isinstance(ids, SesamError)}
    return unread + leftover_warnings(unused.leftovers(listed))


def run(config: Config, *, dry_run: bool = False, progress: Progress | None = None,
        now: Callable[[], datetime] = _now, plan_id: str | None = None) -> Report:
    """Reconcile once. Never raises for a node's fault: the report says what happened.
    `plan_id`: apply only if the plan made now has this id (plan_text.plan_id), else write
    nothing and mark the report `stale_plan`: what a person approved is what runs.
    Past `config.run_timeout` seconds every request still to make fails at once, so the run
    ends `failed` (and the Runner's lock is free) soon after its deadline. Runs in one
    process take turns (_ONE_RUN); the deadline counts from a run's turn."""
    with _ONE_RUN:
        return _run(config, dry_run=dry_run, progress=progress, now=now, plan_id=plan_id)


def _run(config: Config, *, dry_run: bool, progress: Progress | None,
         now: Callable[[], datetime], plan_id: str | None) -> Report:
    report = Report(started=now().isoformat(), dry_run=dry_run)
    ends = time.monotonic() + config.run_timeout
    # The strings of everything the run reads, one object each (SesamClient): shared by the
    # snapshots of all nodes, and let go of once the nodes are read (a dry run's dataset
    # listings fill it again, once the snapshots are gone).
    strings: dict[str, str] = {}
    clients = {node.id: _client(config, node, strings) for node in config.nodes}
    snapshots: dict[str, NodeSnapshot | SesamError] = {}
    redactor = _redactor(config, snapshots)
    try:
        if not grants_admin(config.master.jwt_token.get_secret_value()):
            # Contract 6: a node leaves out of its listings what the token may not read, and a
            # component left out reads as "deleted from the master".
            report.errors.append(f"master {config.master.id}: its jwt_token is not issued to "
                                 f"{ADMIN}, so its listings may leave out components the token "
                                 "may not read, and a missing component would read as deleted; "
                                 "nothing was changed")
            report.outcome = "aborted"
            return report
        the_plan, redactor = _read_and_plan(config, clients, report, now, ends, snapshots,
                                            strings)
        # What is left needs only the plan (and a dry run, what a leftover is): the
        # snapshots go before the writes, or a dry run's listing of every node's datasets.
        unused = _unused(the_plan, snapshots, config.master.id) \
            if the_plan is not None and dry_run else None
        snapshots.clear()
        if the_plan is None:
            report.outcome = report.outcome or "aborted"
            return report
        report.plan_id = plan_text.plan_id(the_plan)
        if dry_run:
            report.warnings += _leftovers(unused, clients)
            report.actions = plan_text.entries(
                the_plan, entity_counts=_entity_counts(the_plan, clients), redact=redactor)
            report.summary = plan_text.summary(report.actions)
            report.outcome = "failed" if report.errors else "ok"
            return report
        if plan_id is not None and plan_id != report.plan_id:
            report.errors.append(f"the nodes changed since plan {name(plan_id)} was made (the "
                                 f"plan now is {report.plan_id}); nothing was changed")
            report.stale_plan = True
            report.outcome = "aborted"
            return report

        total = len(the_plan.actions)
        finished = 0

        def on_result(result: Result) -> None:
            nonlocal finished
            finished += 1
            if progress is not None:
                progress(finished, total, {**result.action.describe(), "status": result.status})

        results = execute(the_plan, clients, workers=max(8, min(64, 4 * len(clients))),
                          progress=on_result)
        failed = False
        late = 0
        for result in results:
            report.actions.append({**result.action.describe(), "status": result.status})
            if result.changed:
                # Not a fault: a user's upload wins, and the next run moves it (contract 3.5).
                report.warnings.append(f"{result.action.kind} {name(result.action.id)} on "
                                       f"{result.action.node} skipped: {result.error}")
            if result.status != "failed":
                continue
            if "(RUN_TIMEOUT)" in (result.error or ""):
                late += 1        # one line for them all, below
                continue
            if result.action.kind == "set-env" and result.forbidden:
                # Contract 7: missing group:Admin is reported and the run goes on.
                report.warnings.append(f"slave {result.action.node}: env vars could not be "
                                       f"copied: {result.error}")
            else:
                failed = True
                report.errors.append(f"{result.action.kind} {name(result.action.id)} on "
                                     f"{result.action.node} failed: {result.error}")
        if late:
            report.errors.append(f"{_past_deadline(config)} ({late} action(s) not done)")
        report.outcome = "failed" if failed or report.errors else "ok"
        return report
    except RecursionError:
        # Configs nested deeper than Python can walk: one line naming the node, not a
        # traceback (the run is documented never to raise for a node's fault).
        report.errors.append(f"node {_deepest(snapshots)} holds configs nested too deeply to "
                             "handle; the run stopped")
        report.outcome = "failed"
        return report
    finally:
        report.finished = now().isoformat()
        snapshots.clear()
        redactor.report(report)


def _read_and_plan(config: Config, clients: dict[str, SesamClient], report: Report,
                   now: Callable[[], datetime], ends: float,
                   snapshots: dict[str, NodeSnapshot | SesamError], strings: dict[str, str]
                   ) -> tuple[Plan | None, Redactor]:
    """Read every node into `snapshots` and plan; no plan when the run must stop (the report
    says why, and its outcome when it is not `aborted`). Also the run's redactor, made before
    anything logs a node's words."""
    snapshots.update(_read_all(clients, config.master.id))
    strings.clear()
    redactor = _redactor(config, snapshots)
    if time.monotonic() >= ends:
        report.errors.append(_past_deadline(config) + "; nothing was changed")
        report.outcome = "failed"
        return None, redactor
    master = snapshots[config.master.id]
    if isinstance(master, SesamError):
        report.errors.append(f"master {config.master.id} could not be read: {master}; "
                             "nothing was changed")
        return None, redactor
    slaves: dict[str, NodeSnapshot | None] = {}
    for slave in config.slaves:
        snap = snapshots[slave.id]
        if isinstance(snap, SesamError):
            report.errors.append(f"slave {slave.id} could not be read: {snap}; nothing "
                                 "was changed or deleted on it")
            slaves[slave.id] = None
        else:
            slaves[slave.id] = snap
    the_plan = make_plan(config, master, slaves, now=now())
    # After the plan, not before: the flows (one per moved pipe, MBs at 10,000 pipes)
    # then take memory the plan's working set has freed instead of adding to its peak.
    report.flows = flow_health(master, slaves, now=now())
    if time.monotonic() >= ends:
        report.errors.append(_past_deadline(config) + "; nothing was changed")
        report.outcome = "failed"
        return None, redactor
    report.warnings += the_plan.warnings
    report.errors += the_plan.errors
    report.placement = {s: {k: list(v) for k, v in p.items()}
                        for s, p in the_plan.placement.items()}
    return (None if the_plan.aborted else the_plan), redactor
