"""Pure: what a run must leave where it is, because it cannot see enough to move it.

A component whose new slave could not be read is *blocked*: the master keeps pointing where
it points now. Everything the master still reads through a slave, and whatever the run
cannot judge, is *kept* on that slave: never deleted there.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from service.core.names import FEEDER_PREFIX, FEEDER_SYSTEM, ComponentKind
from service.core.placement import Desired
from service.core.references import marker, user_original
from service.core.snapshots import Component, NodeSnapshot


@dataclass(frozen=True)
class Holds:
    blocked: frozenset[tuple[ComponentKind, str]]     # (kind, id): no master write
    keep: Mapping[str, frozenset[str]]      # readable slave -> ids never deleted there
    # readable slave -> feeder components (ids) the slave needs no more: a pipe kept there
    # writes the dataset they would feed (a second writer would loop data via the master).
    unneeded_feeders: Mapping[str, frozenset[str]]


def holds(desired: Desired, master: NodeSnapshot, readable: Mapping[str, NodeSnapshot], *,
          unreadable: frozenset[str] = frozenset()) -> Holds:
    """`unreadable`: configured slaves that could not be read. `desired` is only read; apply
    `unneeded_feeders` with `without_feeders`."""
    current: dict[tuple[ComponentKind, str], str | None] = {}
    tables: tuple[tuple[ComponentKind, Mapping[str, Component]], ...] = (
        ("systems", master.systems), ("pipes", master.pipes))
    for kind, table in tables:
        for cid, comp in table.items():
            mark = user_original(comp)[1]
            current[kind, cid] = mark.get("slave") if mark else None
    blocked: set[tuple[ComponentKind, str]] = set()
    for sid, slave in desired.system_slave.items():
        if slave not in readable:
            blocked.add(("systems", sid))
    for pid, placed in desired.pipes.items():
        if placed.slave is not None and placed.slave not in readable \
                and not _owed_reset(master, desired, master.pipes[pid], placed.slave,
                                    placed.systems):
            blocked.add(("pipes", pid))
        elif current.get(("pipes", pid)) in unreadable and placed.slave != current["pipes", pid] \
                and _is_placeholder(master.pipes[pid]):
            # Its copy there writes to a system (that is why the master holds a placeholder)
            # and cannot be deleted now: moving it elsewhere would make two writers.
            blocked.add(("pipes", pid))
    keep: dict[str, set[str]] = {s: set() for s in readable}
    for (kind, cid) in blocked:
        was = current.get((kind, cid))
        if was in keep:
            keep[was].add(cid)
    # What the run cannot judge is kept on every slave (deleting it could lose its only copy).
    for slave_id in keep:
        keep[slave_id] |= desired.untouched | set(desired.missing_systems)
    unneeded: dict[str, frozenset[str]] = {}
    for slave_id, snap in readable.items():
        _keep_what_kept_things_need(keep[slave_id], snap, master.pipes)
        unneeded[slave_id] = _feeders_for_kept_sinks(desired, slave_id, keep[slave_id], snap)
    return Holds(blocked=frozenset(blocked),
                 keep={sid: frozenset(ids) for sid, ids in keep.items()},
                 unneeded_feeders=unneeded)


def without_feeders(desired: Desired, unneeded: Mapping[str, frozenset[str]]) -> Desired:
    """`desired` less the feeder components `unneeded` names, per slave (a new Desired)."""
    return replace(
        desired,
        slave_pipes={sid: {cid: c for cid, c in comps.items()
                           if cid not in unneeded.get(sid, frozenset())}
                     for sid, comps in desired.slave_pipes.items()},
        slave_systems={sid: {cid: c for cid, c in comps.items()
                             if cid not in unneeded.get(sid, frozenset())}
                       for sid, comps in desired.slave_systems.items()})


def _is_placeholder(comp: Component) -> bool:
    return user_original(comp)[1] is not None and \
        (comp.original.get("pump") or {}).get("mode") == "off"


def _owed_reset(master: NodeSnapshot, desired: Desired, comp: Component, slave: str,
                systems: tuple[str, ...]) -> bool:
    """A sync pipe already pointing at `slave`, whose systems in the master already are what
    they should be, that still owes its reset: the reset is the master's business alone, so
    an unreadable slave need not delay it."""
    was = user_original(comp)[1]
    return bool(was and was.get("reset_pending") and was.get("slave") == slave
                and all(s in master.systems and
                        master.systems[s].original == desired.master_systems.get(s)
                        for s in systems))


def _keep_what_kept_things_need(keep: set[str], snap: NodeSnapshot,
                                in_master: Mapping[str, object]) -> None:
    """Close `keep` over what its members rely on in this slave: a kept pipe keeps the
    systems it uses and the pipe (feeder or not) writing the dataset it reads; a kept system
    keeps the pipes using it that the master still has (it may read them through it)."""
    users: dict[str, set[str]] = {}      # system -> master-known pipes using it
    writers: dict[str, set[str]] = {}    # dataset -> pipes writing it here (feeders too)
    for pid, comp in snap.pipes.items():
        r = comp.roles
        if r.sink_dataset and (pid in in_master or pid.startswith(FEEDER_PREFIX)):
            writers.setdefault(r.sink_dataset, set()).add(pid)
        if pid not in in_master:
            continue
        for system in comp.systems:
            users.setdefault(system, set()).add(pid)
    todo = list(keep)
    while todo:
        cid = todo.pop()
        found: set[str] = set()
        if cid in snap.pipes:
            comp = snap.pipes[cid]
            found |= {s for s in comp.systems if s in snap.systems}
            # ... and whatever writes the dataset it reads here (a feeder, or a local pipe).
            found |= writers.get(comp.roles.source_dataset or "", set())
        if cid in snap.systems:
            found |= users.get(cid, set())
        for new in found - keep:
            keep.add(new)
            todo.append(new)


def _feeders_for_kept_sinks(desired: Desired, slave_id: str, keep: set[str],
                            snap: NodeSnapshot) -> frozenset[str]:
    # A dataset a kept pipe writes in the slave needs no feeder (it would be a second writer);
    # with no feeder pipe left, the feeder system goes too.
    written = {snap.pipes[pid].roles.sink_dataset
               for pid in keep if pid in snap.pipes and not pid.startswith(FEEDER_PREFIX)}
    pipes = desired.slave_pipes[slave_id]
    unneeded = {FEEDER_PREFIX + d for d in written
                if d and _is_feeder(pipes.get(FEEDER_PREFIX + d))}
    if not any(pid.startswith(FEEDER_PREFIX) for pid in pipes if pid not in unneeded) \
            and _is_feeder(desired.slave_systems[slave_id].get(FEEDER_SYSTEM)):
        unneeded.add(FEEDER_SYSTEM)
    return frozenset(unneeded)


def _is_feeder(config: Mapping[str, Any] | None) -> bool:
    return config is not None and (marker(config) or {}).get("feeder") is True
