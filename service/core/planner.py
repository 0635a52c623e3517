"""Pure: (config, snapshots) -> Plan. No I/O, no clock of its own.

The plan is ordered so that each action's prerequisites come before it, and `after` says
which ones must have *succeeded*; the executor may run everything else in parallel. The
orders that keep data safe (contract 3.5, 5, 6) are all expressed here, in one place.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import partial
from sys import intern  # reasons repeat per slave: one string each, not one per step
from typing import Any

from service.config import Config
from service.core import reasons
from service.core.actions import Action, Kind, Plan
from service.core.generated import built
from service.core.holds import holds, without_feeders
from service.core.names import ComponentKind, name
from service.core.opaque import env_text_of, source_url
from service.core.operator_warnings import warnings_for
from service.core.ownership import Ownership, ownership
from service.core.placement import (
    Desired,
    MasterPipe,
    PipePlacement,
    desired_state,
    writable_master_pipe,
)
from service.core.references import (
    expand_env,
    marker,
    remembering,
    roles,
    systems_used,
    user_original,
)
from service.core.snapshots import Component, NodeSnapshot


class _Builder:
    """The growing action list, and the indices later steps depend on."""

    def __init__(self, master: NodeSnapshot,
                 slaves: Mapping[str, NodeSnapshot] | None = None) -> None:
        self.actions: list[Action] = []
        # (slave, kind, id) -> index
        self.slave_write: dict[tuple[str, ComponentKind, str], int] = {}
        self.master_write: dict[tuple[ComponentKind, str], list[int]] = {}  # (kind, id) -> indices
        self.master = master
        self.slaves = slaves or {}
        # What each master component holds once the plan's earlier writes to it are done.
        self.master_config: dict[tuple[Kind, str], Any] = {}
        # pipe id -> the master write recording `reset_pending` before its slave copy is made
        self.owed_first: dict[str, int] = {}
        # (slave, pipe id) of the copies that differ from what they should be (_write_slave)
        self.changed_copies: set[tuple[str, str]] = set()

    def add(self, kind: Kind, node: str, cid: str, *, payload: Any = None,
            after: Iterable[int | None] = (), reason: str = "",
            before: Any = None) -> int:
        deps = tuple(sorted({a for a in after if a is not None}))
        expect = None
        if node == self.master.node_id and kind in ("update-pipe", "update-system"):
            # The master's writes to one component are chained by `after`, so each finds
            # what the one before it wrote (the first: what the snapshot read).
            key = (kind, cid)
            table = self.master.pipes if kind == "update-pipe" else self.master.systems
            expect = self.master_config.get(key, table[cid].original)
            self.master_config[key] = payload
            before = expect
        self.actions.append(Action(kind=kind, node=node, id=cid, payload=payload, after=deps,
                                   expect=expect, reason=reason, before=before))
        return len(self.actions) - 1

    def slave_written(self, slave: str | None, kind: ComponentKind, cid: str) -> int | None:
        """The slave's write of that component in this plan, if any (no slave: none)."""
        return self.slave_write.get((slave, kind, cid)) if slave is not None else None


def _not_sesams(node: str) -> bool:
    return not node.startswith("system:")


def _with_reset_pending(config: Mapping[str, Any]) -> dict[str, Any]:
    meta = dict(config["metadata"])
    meta["orchestrator"] = {**meta["orchestrator"], "reset_pending": True}
    return {**config, "metadata": meta}


def _reads_another_master(have: Mapping[str, Any], want: Mapping[str, Any]) -> bool:
    was, will = marker(have) or {}, marker(want) or {}
    return bool(will.get("feeder")) and was.get("master") != will.get("master")


def _placement(desired: Desired) -> dict[str, dict[str, tuple[str, ...]]]:
    return {slave: {"systems": tuple(sorted(desired.slave_systems[slave])),
                    "pipes": tuple(sorted(desired.slave_pipes[slave]))}
            for slave in sorted(desired.slave_systems)}


def plan(config: Config, master: NodeSnapshot | None,
         slaves: Mapping[str, NodeSnapshot | None], *, now: datetime) -> Plan:
    """What to do. `slaves[x] is None` means slave x could not be read: nothing is written
    there, nothing that should move there moves, and nothing there is deleted."""
    with remembering():
        return _plan(config, master, slaves, now=now)


def _plan(config: Config, master: NodeSnapshot | None,
          slaves: Mapping[str, NodeSnapshot | None], *, now: datetime) -> Plan:
    if master is None:
        return Plan(aborted=True, errors=("master could not be read; nothing was changed",))
    if not any(map(_not_sesams, master.pipes)) or not any(map(_not_sesams, master.systems)):
        return Plan(aborted=True, errors=(
            f"master {master.node_id} lists no pipes or no systems; refusing to act on what "
            "looks like an empty or broken answer; nothing was changed",))

    readable = {sid: snap for sid, snap in slaves.items() if snap is not None}
    # What is ours on each slave: only that is ever written or deleted there.
    owned = {sid: ownership(config, master, sid, snap) for sid, snap in readable.items()}
    desired = desired_state(config, master, taken={sid: o.foreign for sid, o in owned.items()})
    held = holds(desired, master, readable,
                 unreadable=frozenset(sid for sid, snap in slaves.items() if snap is None))
    # Before any write is planned: no feeder where a pipe kept on the slave writes the dataset.
    desired = without_feeders(desired, held.unneeded_feeders)
    b = _Builder(master, readable)
    # 0. A sync pipe whose slave copy is missing (deleted by hand, slave rebuilt) will read a
    #    new dataset: record the reset it owes before the copy is made again (12.4).
    _record_owed_resets(b, config=config, master=master, desired=desired, readable=readable,
                        blocked=held.blocked)
    # 1. Slaves first: env, then systems, then the pipes that use them (3.5).
    for slave_id, snap in sorted(readable.items()):
        _write_slave(b, slave_id=slave_id, snap=snap, master=master, desired=desired)
    # 2. The master, once what it will point at exists (3.5); resets after a move (5).
    _write_master(b, config=config, master=master, desired=desired, blocked=held.blocked,
                  readable=readable)
    # 3. Clean the slaves, each copy only after the master no longer points at it (5, 6).
    for slave_id, snap in sorted(readable.items()):
        _clean_slave(b, slave_id=slave_id, snap=snap, master=master, desired=desired,
                     keep=held.keep[slave_id], owned=owned[slave_id])
    warnings = desired.warnings + [_foreign_warning(sid, o) for sid, o in sorted(owned.items())
                                   if o.unmarked]
    warnings += warnings_for(config, master, slaves, desired=desired, now=now)
    return Plan(actions=tuple(b.actions), warnings=tuple(warnings),
                errors=tuple(desired.errors), placement=_placement(desired))


def _record_owed_resets(b: _Builder, *, config: Config, master: NodeSnapshot, desired: Desired,
                        readable: Mapping[str, NodeSnapshot],
                        blocked: frozenset[tuple[ComponentKind, str]]) -> None:
    """The copy's absence is the only sign that the sync pipe's offsets are foreign, and
    creating the copy erases it: so the master records the owed reset first, in its own
    config (the sync pipe it will be, flagged; it reads the same slave, where a dataset
    not yet populated answers 404), and the copy is created only after that."""
    for pid, placed in sorted(desired.pipes.items()):
        comp, slave = master.pipes.get(pid), placed.slave
        if placed.shape != "sync" or slave is None or slave not in readable or comp is None \
                or pid in readable[slave].pipes or ("pipes", pid) in blocked:
            continue
        was = user_original(comp)[1]
        if was is None or comp.roles.source_type not in ("json", "binary"):
            continue   # not a sync pipe yet: no offsets of that slave's to owe a reset for
        if was.get("slave") == slave and not was.get("reset_pending"):
            b.owed_first[pid] = b.add(
                "update-pipe", master.node_id, pid,
                payload=_with_reset_pending(built(writable_master_pipe(config, desired, pid))),
                reason=intern(f"record a full re-read owed: the copy on {placed.slave} is "
                              "missing"))


def _copy_payload(want: dict[str, Any], *, quiet: bool) -> dict[str, Any]:
    """The first write of a copy whose user had disabled it: in `manual` mode it cannot run
    on a schedule before it is disabled, after which the user's config replaces it."""
    if not quiet:
        return want
    return {**want, "pump": {**(want.get("pump") or {}), "mode": "manual"}}


def _pump_mode(config: Mapping[str, Any], env: Mapping[str, Any] | None = None) -> str:
    """The pump's mode as the node will see it: `$ENV(..)` read with `env` (the master's,
    which a slave's becomes before a config using it is written)."""
    pump = config.get("pump")
    mode = expand_env(pump.get("mode", "scheduled"), env or {}) if isinstance(pump, dict) \
        else "scheduled"
    return str(mode)


def _foreign_warning(slave_id: str, owned: Ownership) -> str:
    n = owned.unmarked
    return (f"slave {slave_id} holds {n} component{'' if n == 1 else 's'} the orchestrator did "
            "not put there; left alone")


def _write_slave(b: _Builder, *, slave_id: str, snap: NodeSnapshot, master: NodeSnapshot,
                 desired: Desired) -> None:
    set_env = None
    if master.env is not None and snap.env is not None:
        diff = {k: v for k, v in sorted(master.env.items())
                if k not in snap.env or snap.env[k] != v}
        if diff:
            set_env = b.add("set-env", slave_id, "env", payload=diff,
                            reason=intern(f"copy the master's env vars to {slave_id}"),
                            before={k: snap.env.get(k) for k in diff})
    for sid, config in sorted(desired.slave_systems[slave_id].items()):
        want = desired.marked(config)
        have = snap.systems.get(sid)
        if have is None or have.original != want:
            kind: Kind = "create-system" if have is None else "update-system"
            b.slave_write[slave_id, "systems", sid] = b.add(
                kind, slave_id, sid, payload=want, after=[_env_first(set_env, want)],
                reason=reasons.write(master, b.slaves, "systems", sid, target=slave_id,
                                     node=slave_id),
                before=have.original if have is not None else None)
    for pid, config in sorted(desired.slave_pipes[slave_id].items()):
        # Marked here, and kept only by the write that sends it: compared, then dropped.
        want = desired.marked(config)
        have = snap.pipes.get(pid)
        # Named with the master's env: the slave's will be that once set-env is done. Asked
        # of the config placement asked already (the answers are remembered per object, and
        # the mark names nothing).
        env = master.env or snap.env or {}
        r = roles(pid, config, env)
        after = [b.slave_write.get((slave_id, "systems", s))
                 for s in sorted(systems_used(config, env))]
        after.append(_env_first(set_env, want))
        # Compared once here, for the writes and for the cleanup after them: the comparison
        # digests the wanted config, of every copy a slave holds, every run.
        changed = have is None or have.original != want
        if have is not None and changed:
            b.changed_copies.add((slave_id, pid))
        if have is not None and changed and _reads_another_master(have.original, want):
            # A feeder whose master moved: its offsets are the old master's. Reset first,
            # mark the new master last, so a crash in between resets again next run.
            after = [b.add("reset-pipe", slave_id, pid, after=after,
                           reason="the feeder reads a new master: re-read everything")]
        after.append(b.owed_first.get(pid))
        placed = desired.pipes.get(pid)
        if _stale_copy(have, master.pipes.get(pid), slave_id,
                       user_disabled=pid in desired.disabled) \
                and r.sink_dataset and _pump_mode(want, env) != "off":
            after = _refill(b, slave_id, pid, r.sink_dataset, want, after)
        _write_copy(b, slave_id=slave_id, pid=pid, want=want, have=have, changed=changed,
                    after=after, user_disabled=pid in desired.disabled,
                    mode=_pump_mode(want, env), by=placed.systems if placed is not None else ())
        if have is not None and r.sink_dataset and want.get("disable_set_last_seen") is not True \
                and have.roles.sink_dataset != r.sink_dataset:
            # The copy now writes a dataset new to it: only a full run fills (and populates)
            # it, so the master's sync pipe, gated on populated, ever gets it. (A crash right
            # after the rewrite loses this reset, as does a user's disable_set_last_seen: the
            # sync pipe then fails with 404, visibly, never deleting.)
            # After the slave's env too: the new dataset may be named through $ENV(..), and a
            # run between a reset and the env change would do its full run into the old one.
            b.slave_write[slave_id, "pipes", pid] = b.add(
                "reset-pipe", slave_id, pid, after=[b.slave_write.get((slave_id, "pipes", pid)),
                                                    _env_first(set_env, want)],
                reason="the copy writes a new dataset: a full run fills it")


def _stale_copy(have: Component | None, in_master: Component | None, slave_id: str, *,
                user_disabled: bool) -> bool:
    """A copy found disabled although the user's pipe is not, that the master does not read
    from here: an earlier run's cleanup quiesced it (then failed or was overtaken by a move
    back). Its dataset stopped, yet is still populated, so the master's sync pipe, reset by
    the move here, would do a full run against it and delete what came meanwhile."""
    if have is None or have.runtime.get("is-disabled") is not True or user_disabled:
        return False
    was = user_original(in_master)[1] if in_master is not None else None
    return was is None or was.get("slave") != slave_id or bool(was.get("reset_pending"))


def _refill(b: _Builder, slave_id: str, pid: str, dataset: str, want: dict[str, Any],
            after: list[int | None]) -> list[int | None]:
    """Drop a stale copy's dataset (the master reads it only once this run points there,
    and meets a 404 until a new full run has filled it) and reset the copy."""
    done = b.add("delete-dataset", slave_id, dataset, after=after)
    if want.get("disable_set_last_seen") is True:
        return [done]
    return [b.add("reset-pipe", slave_id, pid, after=[done])]


def _write_copy(b: _Builder, *, slave_id: str, pid: str, want: dict[str, Any],
                have: Component | None, changed: bool, after: list[int | None],
                user_disabled: bool, mode: str, by: tuple[str, ...] = ()) -> None:
    """Create or update a pipe's copy (`changed`: it is missing or differs from `want`); it
    runs exactly when the user's pipe did (disabled in the master, disabled here) and is
    never enabled, not for a moment, while the user has it disabled. A pump in `off` mode
    cannot run: its enabled flag means nothing and is left."""
    why = reasons.write(b.master, b.slaves, "pipes", pid, target=slave_id, node=slave_id, by=by)
    before = have.original if have is not None else None
    copy_disabled = have is not None and have.runtime.get("is-disabled") is True
    if mode == "off" or user_disabled == copy_disabled:
        if changed:
            kind: Kind = "create-pipe" if have is None else "update-pipe"
            b.slave_write[slave_id, "pipes", pid] = b.add(kind, slave_id, pid, payload=want,
                                                          after=after, reason=why,
                                                          before=before)
        return
    if not user_disabled:
        # Enabled only once it holds the user's config.
        if changed:
            after = [b.add("update-pipe", slave_id, pid, payload=want, after=after,
                           reason=why, before=before)]
        b.slave_write[slave_id, "pipes", pid] = b.add(
            "enable-pipe", slave_id, pid, after=after, reason="the user's pipe is enabled")
        return
    if have is None:
        # Not manual: scheduled, or a mode no node knows (it would not stay quiet either).
        quiet = mode != "manual"
        after = [b.add("create-pipe", slave_id, pid, payload=_copy_payload(want, quiet=quiet),
                       after=after, reason=why)]
        before = _copy_payload(want, quiet=quiet)
        why = "the user's config, once the copy is disabled"
        changed = quiet
    last = b.add("disable-pipe", slave_id, pid, after=after,
                 reason="the user's pipe is disabled")
    if changed:
        last = b.add("update-pipe", slave_id, pid, payload=want, after=[last], reason=why,
                     before=before)
    b.slave_write[slave_id, "pipes", pid] = last


def _env_first(set_env: int | None, config: dict[str, Any]) -> int | None:
    """A node refuses a config naming an undefined $ENV(..): such a write waits for the
    slave's set-env. Others do not, so a 403 on /env (contract 7) blocks only what needs it."""
    return set_env if set_env is not None and "$ENV(" in json.dumps(config, default=env_text_of) \
        else None


def _write_master(b: _Builder, *, config: Config, master: NodeSnapshot, desired: Desired,
                  blocked: frozenset[tuple[ComponentKind, str]],
                  readable: Mapping[str, NodeSnapshot]) -> None:
    for sid, system in sorted(desired.master_systems.items()):
        if ("systems", sid) in blocked or master.systems[sid].original == system:
            continue
        slave = desired.system_slave.get(sid)
        after = [b.slave_write.get((slave, "systems", sid))] if slave else []
        b.master_write["systems", sid] = [b.add(
            "update-system", master.node_id, sid, payload=system, after=after,
            reason=reasons.write(master, b.slaves, "systems", sid, target=slave,
                                 node=master.node_id))]
    for pid, want in sorted(desired.master_pipes.items()):
        if ("pipes", pid) not in blocked:
            placed = desired.pipes[pid]
            copy_exists = (placed.slave is not None and placed.slave in readable
                           and pid in readable[placed.slave].pipes)
            _write_master_pipe(b, master=master, comp=master.pipes[pid], placed=placed,
                               want=want, copy_exists=copy_exists,
                               writable=partial(writable_master_pipe, config, desired, pid))


def _write_master_pipe(b: _Builder, *, master: NodeSnapshot, comp: Component,
                       placed: PipePlacement, want: MasterPipe, copy_exists: bool,
                       writable: Callable[[], MasterPipe]) -> None:
    """The master's writes for one pipe: rewrite, reset when its source changes, and the
    pump state a placeholder (or a pipe coming back) needs. `want` is written as it is (a
    sync pipe as what it is made of, see generated.SyncPipe), and read as `config`."""
    pid = comp.id
    config = built(want)
    have = comp.original
    was = user_original(comp)[1]
    # A user's upload live in the master whose copy exists already on its slave: the
    # master's pipe is rewritten even if the slave refuses the new version (the upload is
    # kept in the metadata, and the slave write is retried every run); else the user's pipe
    # would stay live, calling a system that reads the slave's datasets.
    upload_over_copy = was is None and copy_exists
    after = [None if upload_over_copy else b.slave_written(placed.slave, "pipes", pid)]
    after += [b.slave_written(placed.slave, "systems", s) for s in placed.systems]
    if placed.slave is not None:
        # A generated pipe reads through the master's system:url: where the master still
        # holds the user's system, that write first, so a skipped (changed meanwhile) or
        # failed one never leaves the pipe reading through the user's system.
        after += [i for s in placed.systems if s in master.systems
                  and user_original(master.systems[s])[1] is None
                  for i in b.master_write.get(("systems", s), [])]
    done: list[int] = []
    # Offsets are only meaningful against the source they came from: a pipe that starts
    # reading another source (a new slave, or its first slave after having run in the
    # master) is reset, and so is a sync pipe given back its original source.
    # Its marker, when it is a sync pipe already.
    was_sync = was if was is not None and comp.roles.source_type in (
        "json", "binary") else None
    is_sync = was_sync is not None
    has_offset = comp.runtime.get("last-seen") not in (None, "")
    # A master pipe without our marker that becomes a sync pipe has offsets of another
    # source (its on-premise one on a first move, even one interrupted after the copy was
    # made; or a sync pipe's, uploaded over by the user): always reset. A full re-read of a
    # populated copy costs time, never data; a foreign offset would lose changes silently.
    to_new_source = placed.shape == "sync" and (
        pid in b.owed_first
        or (was_sync is not None and (
            was_sync.get("slave") != placed.slave or was_sync.get("reset_pending")
            or was_sync.get("url") != config["metadata"]["orchestrator"]["url"]
            or source_url(have) != source_url(config)))
        or (not is_sync and has_offset))
    if pid in b.owed_first:
        after.append(b.owed_first[pid])
    why = reasons.write(master, b.slaves, "pipes", pid, target=placed.slave, node=master.node_id,
                        by=placed.systems)
    # A placeholder an earlier version disabled, coming back although the user had not
    # disabled it: enabled once it holds the user's config again (an `off` pump's enabled
    # flag is never relied on).
    reenable = (placed.shape != "placeholder" and comp.runtime.get("is-disabled") is True
                and was is not None and not was.get("disabled") and marker(have) is not None
                and (have.get("pump") or {}).get("mode") == "off"
                and _pump_mode(config, master.env) != "off")
    if to_new_source:
        # Crash-safe: the flag records "reset still owed" in the master itself.
        # `want` may be what the master holds, kept by digest: the writes need it made.
        made = writable()
        if made is not want:
            want, config = made, built(made)
        flagged = _with_reset_pending(config)
        if have != flagged and pid not in b.owed_first:
            done.append(b.add("update-pipe", master.node_id, pid, payload=flagged, after=after,
                              reason=intern(f"{why}: record the full re-read it owes first")))
        systems_first = [i for s in placed.systems for i in b.master_write.get(("systems", s), [])]
        done.append(b.add("reset-pipe", master.node_id, pid, after=[*done, *systems_first, *after],
                          reason=intern("re-read everything from the new slave "
                                        f"{placed.slave}")))
        done.append(b.add("update-pipe", master.node_id, pid, payload=want, after=done[-1:],
                          reason=why))
    elif placed.shape == "master" and is_sync and has_offset:
        # Moving back: reset while it still is a sync pipe, then restore. A crash in
        # between costs a full re-read from the slave, never a wrong offset.
        done.append(b.add("reset-pipe", master.node_id, pid, after=after,
                          reason="back in the master: re-read everything from its own source"))
        done.append(b.add("update-pipe", master.node_id, pid, payload=want, after=done[-1:],
                          reason=why))
    elif have != config:
        done.append(b.add("update-pipe", master.node_id, pid, payload=want, after=after,
                          reason=why))
    if reenable:
        done.append(b.add("enable-pipe", master.node_id, pid, after=done[-1:] or after,
                          reason="back in the master: enabled, as the user had it"))
    if done:
        b.master_write["pipes", pid] = done


def _clean_slave(b: _Builder, *, slave_id: str, snap: NodeSnapshot, master: NodeSnapshot,
                 desired: Desired, keep: frozenset[str], owned: Ownership) -> None:
    # Only our own copies are deleted, and only datasets that no one else's pipe writes or
    # reads: anything else on the slave may be a person's or another orchestrator's work.
    # A pipe goes after the master's writes of that pipe and of the systems it uses, a system
    # after the master's writes of it and after the slave's pipes using it are gone (per
    # component, not one barrier for all: the dependencies stay linear in the plan's size).
    wanted_pipes = desired.slave_pipes[slave_id]
    # Datasets that pipes staying on the slave write: named by the master's env (what
    # the slave's will be once copied) and by the slave's own effective configs.
    kept_datasets = {roles(pid, cfg, master.env or snap.env or {}).sink_dataset
                     for pid, cfg in wanted_pipes.items()}
    changed = {pid for pid in wanted_pipes if (slave_id, pid) in b.changed_copies}
    kept_datasets |= {snap.pipes[pid].roles.sink_dataset
                      for pid in (set(wanted_pipes) - changed) | keep if pid in snap.pipes}
    for pid, comp in snap.pipes.items():
        if ("pipes", pid) not in owned.ours:
            r = comp.roles
            kept_datasets |= {r.sink_dataset, r.source_dataset}
    # A name still holding $ENV(..) could be any dataset: delete none on this slave.
    unsure = any(d and "$ENV(" in d for d in kept_datasets)
    # A pipe the user re-pointed at another dataset leaves its old one: it goes once the copy
    # writes the new one and the master no longer reads the old one.
    for pid in sorted(changed):
        old = snap.pipes[pid].roles.sink_dataset
        if old and old not in kept_datasets and not unsure:
            kept_datasets.add(old)
            after = [b.slave_write.get((slave_id, "pipes", pid))]
            b.add("delete-dataset", slave_id, old,
                  after=[*after, *b.master_write.get(("pipes", pid), [])],
                  reason=f"pipe {name(pid)} writes another dataset now")
    pipe_deletes: dict[str, list[int]] = {}    # system -> deletes of pipes using it
    for pid, comp in sorted(snap.pipes.items()):
        if ("pipes", pid) not in owned.ours or pid in wanted_pipes or pid in keep:
            continue
        r = comp.roles
        why = reasons.delete(master, "pipes", pid, target=_placed_on(desired, pid))
        used = set(comp.systems)
        after = list(b.master_write.get(("pipes", pid), []))
        for system in sorted(used):
            after += b.master_write.get(("systems", system), [])
        dataset = r.sink_dataset
        if dataset and dataset not in kept_datasets and not unsure:
            kept_datasets.add(dataset)   # delete it once, even if two pipes wrote it
            # The pipe is made unable to run first (a run would write the dataset again),
            # then the dataset goes, then the pipe: only the pipe tells us the dataset
            # exists, so a crash anywhere in between leaves it for the next run to finish.
            after = [b.add("quiesce-pipe", slave_id, pid, after=after,
                           reason=intern(f"stop it before its dataset is deleted ({why})"))]
            after = [b.add("delete-dataset", slave_id, dataset, after=after, reason=why)]
        i = b.add("delete-pipe", slave_id, pid, after=after, reason=why)
        for system in used:
            pipe_deletes.setdefault(system, []).append(i)
    for sid in sorted(snap.systems):
        if ("systems", sid) not in owned.ours or sid in desired.slave_systems[slave_id] \
                or sid in keep:
            continue
        b.add("delete-system", slave_id, sid,
              after=pipe_deletes.get(sid, []) + b.master_write.get(("systems", sid), []),
              reason=reasons.delete(master, "systems", sid,
                                    target=desired.system_slave.get(sid)))



def _placed_on(desired: Desired, pid: str) -> str | None:
    placed = desired.pipes.get(pid)
    return placed.slave if placed is not None else None
