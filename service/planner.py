"""Pure: (config, snapshots) -> Plan. No I/O, no clock of its own.

The plan is ordered so that each action's prerequisites come before it, and `after` says
which ones must have *succeeded*; the executor may run everything else in parallel. The
orders that keep data safe (contract 3.5, 5, 6) are all expressed here, in one place.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from .actions import Action, Kind, Plan
from .config import Config
from .desired import Desired, desired_state, marker, roles, secrets_used, user_original
from .names import FEEDER_PREFIX, FEEDER_SYSTEM
from .snapshot import Component, NodeSnapshot
from .tokens import token_warnings


class _Builder:
    def __init__(self) -> None:
        self.actions: list[Action] = []

    def add(self, kind: Kind, node: str, cid: str, payload: Any = None,
            after: list[int | None] | tuple[int | None, ...] = ()) -> int:
        deps = tuple(sorted({a for a in after if a is not None}))
        self.actions.append(Action(kind=kind, node=node, id=cid, payload=payload, after=deps))
        return len(self.actions) - 1


def _is_ours(node: str) -> bool:
    return not node.startswith("system:")


def _with_reset_pending(config: dict[str, Any]) -> dict[str, Any]:
    meta = dict(config["metadata"])
    meta["orchestrator"] = {**meta["orchestrator"], "reset_pending": True}
    return {**config, "metadata": meta}


def _checks(config: Config, master: NodeSnapshot, slaves: Mapping[str, NodeSnapshot | None],
            desired: Desired, now: datetime) -> list[str]:
    """Warnings a person should see before something breaks (contract 7)."""
    warnings: list[str] = []
    for node in config.nodes:
        warnings += token_warnings(node.id, node.jwt_token.get_secret_value(), now=now,
                                   needs_admin=True)
    for snap in (master, *[s for s in slaves.values() if s is not None]):
        warnings += [f"node {snap.node_id}: {p}" for p in snap.problems]
    if master.secrets is not None:
        for node in config.nodes:
            if node.jwt_secret_key and node.jwt_secret_key not in master.secrets:
                warnings.append(f"node {node.id}: its jwt_secret_key names secret "
                                f"'{node.jwt_secret_key}', which the master lacks")
    for slave_id, snap in sorted(slaves.items()):
        if snap is None or snap.secrets is None:
            continue
        needed = set(master.secrets or ())
        for part in (desired.slave_systems[slave_id], desired.slave_pipes[slave_id]):
            for cfg in part.values():
                needed |= secrets_used(cfg)
        missing = sorted(needed - snap.secrets)
        if missing:
            warnings.append(f"slave {slave_id}: missing secrets {', '.join(missing)} "
                            "(add them to the slave; the master's secrets must exist there too)")
    return warnings


def _owed_reset(comp: Component, slave: str, systems: tuple[str, ...],
                current: Mapping[tuple[str, str], str | None]) -> bool:
    """A sync pipe already pointing at `slave` (with its systems) that still owes its reset:
    the reset is the master's business alone, so an unreadable slave need not delay it."""
    was = user_original(comp)[1]
    return bool(was and was.get("reset_pending") and was.get("slave") == slave
                and all(current.get(("systems", s)) == slave for s in systems))


def _keep_what_kept_things_need(keep: set[str], snap: NodeSnapshot,
                                in_master: Mapping[str, object]) -> None:
    """Close `keep` over what its members rely on in this slave: a kept pipe keeps the
    systems it uses and its feeder; a kept system keeps the pipes using it that the master
    still has (it may still read them through that system)."""
    users: dict[str, set[str]] = {}
    for pid, comp in snap.pipes.items():
        if pid not in in_master:
            continue
        r = roles(pid, comp.effective, {})
        for system in (r.source_system, r.sink_system):
            if system:
                users.setdefault(system, set()).add(pid)
    todo = list(keep)
    while todo:
        cid = todo.pop()
        found: set[str] = set()
        if cid in snap.pipes:
            r = roles(cid, snap.pipes[cid].effective, {})
            found |= {s for s in (r.source_system, r.sink_system) if s in snap.systems}
            if r.source_dataset and FEEDER_PREFIX + r.source_dataset in snap.pipes:
                found |= {FEEDER_PREFIX + r.source_dataset}
        if cid in snap.systems:
            found |= users.get(cid, set())
        for new in found - keep:
            keep.add(new)
            todo.append(new)


def _drop_feeders_for_kept_sinks(desired: Desired, slave_id: str, keep: set[str],
                                 snap: NodeSnapshot) -> None:
    # A dataset a kept pipe writes in the slave needs no feeder (it would be a second writer).
    written = {roles(pid, snap.pipes[pid].effective, {}).sink_dataset
               for pid in keep if pid in snap.pipes and not pid.startswith(FEEDER_PREFIX)}
    pipes = desired.slave_pipes[slave_id]
    for dataset in written:
        if dataset and (pipes.get(FEEDER_PREFIX + dataset) or {}).get("metadata", {}) \
                .get("orchestrator", {}).get("feeder"):
            del pipes[FEEDER_PREFIX + dataset]
    if not any(pid.startswith(FEEDER_PREFIX) for pid in pipes):
        systems = desired.slave_systems[slave_id]
        if (systems.get(FEEDER_SYSTEM) or {}).get("metadata", {}).get("orchestrator", {}) \
                .get("feeder"):
            del systems[FEEDER_SYSTEM]


def _placement(desired: Desired) -> dict[str, dict[str, tuple[str, ...]]]:
    return {slave: {"systems": tuple(sorted(desired.slave_systems[slave])),
                    "pipes": tuple(sorted(desired.slave_pipes[slave]))}
            for slave in sorted(desired.slave_systems)}


def plan(config: Config, master: NodeSnapshot | None,
         slaves: Mapping[str, NodeSnapshot | None], *, now: datetime) -> Plan:
    """What to do. `slaves[x] is None` means slave x could not be read: nothing is written
    there, nothing that should move there moves, and nothing there is deleted."""
    if master is None:
        return Plan(aborted=True, errors=("master could not be read; nothing was changed",))
    if not any(map(_is_ours, master.pipes)) or not any(map(_is_ours, master.systems)):
        return Plan(aborted=True, errors=(
            f"master {master.node_id} lists no pipes or no systems; refusing to act on what "
            "looks like an empty or broken answer; nothing was changed",))

    desired = desired_state(config, master)
    b = _Builder()
    readable = {sid: snap for sid, snap in slaves.items() if snap is not None}

    # A component whose new slave could not be read stays where the master says it is now.
    current: dict[tuple[str, str], str | None] = {}
    for kind, table in (("systems", master.systems), ("pipes", master.pipes)):
        for cid, comp in table.items():
            mark = user_original(comp)[1]
            current[kind, cid] = mark.get("slave") if mark else None
    blocked: set[tuple[str, str]] = set()
    for sid, slave in desired.system_slave.items():
        if slave not in readable:
            blocked.add(("systems", sid))
    for pid, placed in desired.pipes.items():
        if placed.slave is not None and placed.slave not in readable \
                and not _owed_reset(master.pipes[pid], placed.slave, placed.systems, current):
            blocked.add(("pipes", pid))
    keep: dict[str, set[str]] = {s: set() for s in readable}
    for (kind, cid) in blocked:
        was = current.get((kind, cid))
        if was in keep:
            keep[was].add(cid)
    # What the run cannot judge is kept on every slave (deleting it could lose its only copy).
    for slave_id in keep:
        keep[slave_id] |= desired.untouched | set(desired.missing_systems)
    for slave_id, snap in readable.items():
        _keep_what_kept_things_need(keep[slave_id], snap, master.pipes)
        _drop_feeders_for_kept_sinks(desired, slave_id, keep[slave_id], snap)

    # 1. Slaves first: env, then systems, then the pipes that use them (3.5).
    slave_write: dict[tuple[str, str, str], int] = {}
    for slave_id, snap in sorted(readable.items()):
        if master.env is not None and snap.env is not None:
            diff = {k: v for k, v in sorted(master.env.items())
                    if k not in snap.env or snap.env[k] != v}
            if diff:
                b.add("set-env", slave_id, "env", payload=diff)
        for sid, want in sorted(desired.slave_systems[slave_id].items()):
            have = snap.systems.get(sid)
            if have is None or have.original != want:
                kind: Kind = "create-system" if have is None else "update-system"
                slave_write[slave_id, "systems", sid] = b.add(kind, slave_id, sid, want)
        for pid, want in sorted(desired.slave_pipes[slave_id].items()):
            have = snap.pipes.get(pid)
            if have is None or have.original != want:
                r = roles(pid, want, snap.env or {})
                after = [slave_write.get((slave_id, "systems", s))
                         for s in (r.source_system, r.sink_system) if s]
                kind = "create-pipe" if have is None else "update-pipe"
                slave_write[slave_id, "pipes", pid] = b.add(kind, slave_id, pid, want, after)
            if pid in desired.disabled and not (have and have.runtime.get("is-disabled")):
                # Disabled by the user in the master: the copy must not run either.
                b.add("disable-pipe", slave_id, pid, None, [slave_write.get((slave_id, "pipes", pid))])

    # 2. The master, once what it will point at exists (3.5); resets after a move (5).
    master_id = master.node_id
    master_write: dict[tuple[str, str], list[int]] = {}
    for sid, want in sorted(desired.master_systems.items()):
        if ("systems", sid) in blocked or master.systems[sid].original == want:
            continue
        slave = desired.system_slave.get(sid)
        after = [slave_write.get((slave, "systems", sid))] if slave else []
        master_write["systems", sid] = [b.add("update-system", master_id, sid, want, after)]

    for pid, want in sorted(desired.master_pipes.items()):
        if ("pipes", pid) in blocked:
            continue
        placed = desired.pipes[pid]
        comp = master.pipes[pid]
        have = comp.original
        was = user_original(comp)[1]
        after = [slave_write.get((placed.slave, "pipes", pid))]
        after += [slave_write.get((placed.slave, "systems", s)) for s in placed.systems]
        done: list[int] = []
        # Offsets are only meaningful against the source they came from: a pipe that starts
        # reading another source (a new slave, or its first slave after having run in the
        # master) is reset, and so is a sync pipe given back its original source.
        is_sync = was is not None and roles(pid, have, {}).source_type in ("json", "binary")
        has_offset = comp.runtime.get("last-seen") not in (None, "")
        to_new_source = placed.shape == "sync" and (
            (is_sync and (was.get("slave") != placed.slave or was.get("reset_pending")
                          or was.get("url") != want["metadata"]["orchestrator"]["url"]
                          or have.get("source", {}).get("url") != want["source"]["url"]))
            or (not is_sync and has_offset))
        if to_new_source:
            # Crash-safe: the flag records "reset still owed" in the master itself.
            flagged = _with_reset_pending(want)
            if have != flagged:
                done.append(b.add("update-pipe", master_id, pid, flagged, after))
            systems_first = [i for s in placed.systems for i in master_write.get(("systems", s), [])]
            done.append(b.add("reset-pipe", master_id, pid, None, done + systems_first + after))
            done.append(b.add("update-pipe", master_id, pid, want, done[-1:]))
        elif placed.shape == "master" and is_sync and has_offset:
            # Moving back: reset while it still is a sync pipe, then restore. A crash in
            # between costs a full re-read from the slave, never a wrong offset.
            done.append(b.add("reset-pipe", master_id, pid, None, after))
            done.append(b.add("update-pipe", master_id, pid, want, done[-1:]))
        elif have != want:
            done.append(b.add("update-pipe", master_id, pid, want, after))
        disabled = bool(comp.runtime.get("is-disabled"))
        if placed.shape == "placeholder" and not disabled:
            done.append(b.add("disable-pipe", master_id, pid, None, done[-1:] or after))
        elif placed.shape != "placeholder" and disabled and was is not None \
                and not was.get("disabled") \
                and marker(have) is not None and (have.get("pump") or {}).get("mode") == "off":
            # We disabled it as a placeholder; it runs again now that it is back.
            done.append(b.add("enable-pipe", master_id, pid, None, done[-1:]))
        if done:
            master_write["pipes", pid] = done

    # 3. Clean the slaves, each copy only after the master no longer points at it (5, 6): a
    # pipe after the master's writes of that pipe and of the systems it uses, a system after
    # the master's writes of it and after the slave's pipes using it are gone. (Per component,
    # not one barrier for all: the dependencies stay linear in the number of components.)
    for slave_id, snap in sorted(readable.items()):
        wanted_pipes = desired.slave_pipes[slave_id]
        # Datasets that pipes staying on the slave write: named by the master's env (what
        # the slave's will be once copied) and by the slave's own effective configs.
        kept_datasets = {roles(pid, cfg, master.env or snap.env or {}).sink_dataset
                         for pid, cfg in wanted_pipes.items()}
        kept_datasets |= {roles(pid, snap.pipes[pid].effective, {}).sink_dataset
                          for pid in set(wanted_pipes) | keep[slave_id] if pid in snap.pipes}
        # A name still holding $ENV(..) could be any dataset: delete none on this slave.
        unsure = any(d and "$ENV(" in d for d in kept_datasets)
        pipe_deletes: dict[str, list[int]] = {}    # system -> deletes of pipes using it
        for pid, comp in sorted(snap.pipes.items()):
            if not _is_ours(pid) or pid in wanted_pipes or pid in keep[slave_id]:
                continue
            r = roles(pid, comp.effective, {})
            used = {s for s in (r.source_system, r.sink_system) if s}
            after = list(master_write.get(("pipes", pid), []))
            for system in sorted(used):
                after += master_write.get(("systems", system), [])
            sink = comp.effective.get("sink") if isinstance(comp.effective.get("sink"), dict) else {}
            dataset = sink.get("dataset") if sink.get("type", "dataset") == "dataset" else None
            if isinstance(dataset, str) and dataset not in kept_datasets and not unsure:
                kept_datasets.add(dataset)   # delete it once, even if two pipes wrote it
                # The dataset goes first: only the pipe tells us the dataset exists, so a crash
                # between the two deletes must leave the pipe, for the next run to finish.
                after = [b.add("delete-dataset", slave_id, dataset, None, after)]
            i = b.add("delete-pipe", slave_id, pid, None, after)
            for system in used:
                pipe_deletes.setdefault(system, []).append(i)
        for sid in sorted(snap.systems):
            if not _is_ours(sid) or sid in desired.slave_systems[slave_id] or sid in keep[slave_id]:
                continue
            b.add("delete-system", slave_id, sid, None,
                  pipe_deletes.get(sid, []) + master_write.get(("systems", sid), []))

    warnings = desired.warnings + _checks(config, master, slaves, desired, now)
    return Plan(actions=tuple(b.actions), warnings=tuple(warnings),
                errors=tuple(desired.errors), placement=_placement(desired))
