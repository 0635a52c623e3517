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
from dataclasses import dataclass

from service.core.actions import Plan
from service.core.names import name
from service.core.references import roles, user_original
from service.core.snapshots import NodeSnapshot


@dataclass(frozen=True)
class Unused:
    """What a leftover is, read off the plan and the snapshots: per readable node, the
    moved pipes' names nothing there uses. Kept apart from the snapshots so that a dry run
    lets them go before it lists every node's datasets (tens of MB at 10,000 pipes)."""
    candidates: frozenset[str]              # moved pipes' ids and the datasets they write
    in_use: Mapping[str, frozenset[str]]    # node -> the candidates in use there

    def leftovers(self, datasets: Mapping[str, Iterable[str]]) -> list[tuple[str, str]]:
        """(node, dataset) pairs, sorted: datasets listed in `datasets[node]` that carry a
        moved pipe's name and that nothing on that node uses. Nodes not in `datasets`
        (listing not read) or not readable are skipped."""
        found: set[tuple[str, str]] = set()
        for node, listed in datasets.items():
            if node in self.in_use:
                found.update((node, d) for d in set(listed) & self.candidates
                             - self.in_use[node])
        return sorted(found)


def _datasets_named(snap: NodeSnapshot) -> set[str]:
    named: set[str] = set()
    for comp in snap.pipes.values():
        r = comp.roles
        named.update(d for d in (r.source_dataset, r.sink_dataset) if d)
    return named


def unused_names(plan: Plan, master: NodeSnapshot,
                 slaves: Mapping[str, NodeSnapshot | None]) -> Unused:
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
    candidates = frozenset(placed) | frozenset(sinks.values())
    return Unused(candidates, {node: frozenset(used & candidates)
                               for node, used in in_use.items()})


_SAYS = "an earlier orchestrator (1.0) may have left it"


def is_leftover_warning(text: str) -> bool:
    return _SAYS in text


def leftover_warnings(found: list[tuple[str, str]]) -> list[str]:
    return [f"node {node}: dataset {name(dataset)} carries the name of a moved pipe but no pipe "
            f"there reads or writes it; {_SAYS}. It is not deleted: delete it yourself if it "
            "is not needed (see README, Upgrading from orchestrator 1.0)"
            for node, dataset in found]
