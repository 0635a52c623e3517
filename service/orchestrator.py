"""One run: read every node, plan, apply (unless dry), report.

The only module that wires the others together; the Runner (for the served app), the
command line, the demo and the benchmark call `run`.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Callable

from .client import SesamClient, SesamError
from .config import Config, Node
from .actions import Plan
from .executor import Result, execute
from .planner import plan as make_plan
from .report import Report
from .snapshot import NodeSnapshot, read_node
from .text import name
from .tokens import ADMIN, grants_admin

log = logging.getLogger(__name__)
Progress = Callable[[int, int, dict[str, str]], None]
# One read-and-plan at a time in this process (a run's, a dry run's): each holds a snapshot
# of every node, tens of MB for a master of thousands of pipes, and the container has 128 MB.
# Only the reading and planning are serialised: a run's execution does not hold it.
_PLANNING = threading.Lock()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _client(config: Config, node: Node) -> SesamClient:
    return SesamClient(node_id=node.id, api_url=node.api_url,
                       token=node.jwt_token.get_secret_value(),
                       timeout=config.request_timeout, concurrency=config.per_node_concurrency,
                       max_answer_mb=config.max_answer_mb)


def _read_all(clients: dict[str, SesamClient],
              master_id: str) -> dict[str, NodeSnapshot | SesamError]:
    # Every node at once: a run's reads cost one round trip, not one per node.
    def read(node_id: str) -> NodeSnapshot | SesamError:
        try:
            slave = node_id != master_id
            return read_node(clients[node_id], node_id, local_secrets=slave, pipe_digests=slave)
        except SesamError as exc:
            return exc
    with ThreadPoolExecutor(max_workers=min(32, len(clients))) as pool:
        return dict(zip(clients, pool.map(read, clients)))


def run(config: Config, *, dry_run: bool = False, progress: Progress | None = None,
        now: Callable[[], datetime] = _now) -> Report:
    """Reconcile once. Never raises for a node's fault: the report says what happened."""
    report = Report(started=now().isoformat(), dry_run=dry_run)
    clients = {node.id: _client(config, node) for node in config.nodes}
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
        with _PLANNING:
            the_plan = _read_and_plan(config, clients, report, now)
        if the_plan is None:
            report.outcome = "aborted"
            return report
        if dry_run:
            report.actions = [{**a.describe(), "status": "planned"} for a in the_plan.actions]
            report.outcome = "failed" if report.errors else "ok"
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
        for result in results:
            report.actions.append({**result.action.describe(), "status": result.status})
            if result.changed:
                # Not a fault: a user's upload wins, and the next run moves it (contract 3.5).
                report.warnings.append(f"{result.action.kind} {name(result.action.id)} on "
                                       f"{result.action.node} skipped: {result.error}")
            if result.status != "failed":
                continue
            if result.action.kind == "set-env" and result.forbidden:
                # Contract 7: missing group:Admin is reported and the run goes on.
                report.warnings.append(f"slave {result.action.node}: env vars could not be "
                                       f"copied: {result.error}")
            else:
                failed = True
                report.errors.append(f"{result.action.kind} {name(result.action.id)} on "
                                     f"{result.action.node} failed: {result.error}")
        report.outcome = "failed" if failed or report.errors else "ok"
        return report
    finally:
        report.finished = now().isoformat()
        for client in clients.values():
            client.close()
        for warning in report.warnings:
            log.warning("%s", warning)
        for error in report.errors:
            log.error("%s", error)
        log.info("run %s: %d actions, %d warnings, %d errors", report.outcome,
                 len(report.actions), len(report.warnings), len(report.errors))


def _read_and_plan(config: Config, clients: dict[str, SesamClient], report: Report,
                   now: Callable[[], datetime]) -> Plan | None:
    """Read every node and plan; None when the run must stop (the report says why). The
    snapshots are dropped on return: a run's execution needs only the plan."""
    snapshots = _read_all(clients, config.master.id)
    master = snapshots[config.master.id]
    if isinstance(master, SesamError):
        report.errors.append(f"master {config.master.id} could not be read: {master}; "
                             "nothing was changed")
        return None
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
    report.warnings += the_plan.warnings
    report.errors += the_plan.errors
    report.placement = {s: {k: list(v) for k, v in p.items()}
                        for s, p in the_plan.placement.items()}
    return None if the_plan.aborted else the_plan
