"""Pure: datasets an earlier orchestrator (1.0) may have left under a name this one does not
use, reported by id and never deleted (README, Upgrading from orchestrator 1.0).

1.0 gave each generated master pipe the `_id` of the pipe it replaced; Sesam names a pipe's
dataset after the pipe when its sink names none, and 1.0 deleted a slave's datasets when a
system left it. So a moved pipe `P` writing dataset `D` can have left data under `P` or `D`
on any node that no longer uses that name: under `P` where `P` != `D` (a sink 1.0 left to
Sesam's default), under `D` on a slave `P` left (a deletion by the pipe's name). A name is in
use on a node when a pipe there reads or writes it, now or once the plan is applied, or when
the plan deletes it (this orchestrator's own clean-up). Anything else on a node is not ours
to judge: only the names of moved pipes are looked at.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from service.core.actions import Plan
from service.core.names import name
from service.core.references import roles, user_original
from service.core.snapshots import NodeSnapshot


def _datasets_named(snap: NodeSnapshot) -> set[str]:
    named: set[str] = set()
    for comp in snap.pipes.values():
        r = comp.uses.roles
        named.update(d for d in (r.source_dataset, r.sink_dataset) if d)
    return named


def leftover_datasets(plan: Plan, master: NodeSnapshot,
                      slaves: Mapping[str, NodeSnapshot | None],
                      datasets: Mapping[str, Iterable[str]]) -> list[tuple[str, str]]:
    """(node, dataset) pairs, sorted: datasets listed in `datasets[node]` that carry a moved
    pipe's name and that nothing on that node uses. Nodes not in `datasets` (listing not
    read) or unreadable are skipped."""
    env = master.env or {}
    placed = {pid: slave for slave, where in plan.placement.items()
              for pid in where.get("pipes", ())}
    sinks: dict[str, str] = {}
    for pid in placed:
        comp = master.pipes.get(pid)
        sink = roles(pid, user_original(comp)[0], env).sink_dataset if comp else None
        if sink:
            sinks[pid] = sink
    snaps = {master.node_id: master, **{k: v for k, v in slaves.items() if v is not None}}
    in_use = {node: _datasets_named(snap) for node, snap in snaps.items()}
    for action in plan.actions:
        if action.kind == "delete-dataset" and action.node in in_use:
            in_use[action.node].add(action.id)
    for pid, sink in sinks.items():
        for node in (master.node_id, placed[pid]):
            if node in in_use:
                in_use[node].add(sink)          # the sync pipe and the slave copy write it
    candidates = set(placed) | set(sinks.values())
    found: set[tuple[str, str]] = set()
    for node, listed in datasets.items():
        if node not in in_use:
            continue
        found.update((node, d) for d in set(listed) & candidates - in_use[node])
    return sorted(found)


_SAYS = "an earlier orchestrator (1.0) may have left it"


def is_leftover_warning(text: str) -> bool:
    return _SAYS in text


def leftover_warnings(found: list[tuple[str, str]]) -> list[str]:
    return [f"node {node}: dataset {name(dataset)} carries the name of a moved pipe but no pipe "
            f"there reads or writes it; {_SAYS}. It is not deleted: delete it yourself if it "
            "is not needed (see README, Upgrading from orchestrator 1.0)"
            for node, dataset in found]
