"""Pure: what each node should hold, from the master's originals and the configuration.

Nothing here does I/O. The planner compares what this module says with the snapshots.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from service.config import Config, SlaveNode
from service.core.generated import (
    SyncPipe,
    built,
    feeder_pipe,
    moved_marker,
    placeholder_pipe,
    url_system,
)
from service.core.names import FEEDER_SYSTEM, ComponentKind, name, node_message
from service.core.opaque import Digest
from service.core.ownership import group_name, with_mark
from service.core.references import expand_env, roles, systems_used, user_original
from service.core.snapshots import Component, NodeSnapshot

PipeShape = Literal["sync", "placeholder", "master"]
# What the master should hold for a pipe: a config (the user's, a placeholder, or what it
# holds already, maybe kept by digest), or a sync pipe as what it is made of.
MasterPipe = Mapping[str, Any] | SyncPipe
# Per slave, the (kind, id) of the components there that are not ours.
Taken = Mapping[str, frozenset[tuple[ComponentKind, str]]]


@dataclass(frozen=True, kw_only=True, slots=True)   # slots: one per pipe, 10,000s
class PipePlacement:
    id: str
    original: dict[str, Any]
    slave: str | None               # None: stays in the master
    shape: PipeShape
    systems: tuple[str, ...] = ()   # managed systems it uses (for ordering)
    source_system: str | None = None    # sync: the system the master's pipe reads through
    sink_dataset: str | None = None
    source_dataset: str | None = None   # outbound: the master dataset a feeder must copy


@dataclass
class Desired:
    """What every node should hold after the run."""
    master_systems: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    master_pipes: dict[str, MasterPipe] = field(default_factory=dict)
    pipes: dict[str, PipePlacement] = field(default_factory=dict)
    system_slave: dict[str, str] = field(default_factory=dict)   # managed system -> slave
    # Managed systems the master does not list, or whose slave holds a component of that id
    # the orchestrator did not put there: left alone in the master and the slaves (6).
    missing_systems: dict[str, str] = field(default_factory=dict)  # system -> managing slave
    # Pipes the run cannot judge (they name a missing managed system, or $ENV(..) while the
    # master's env is unreadable): left exactly where they are, in the master and slaves.
    untouched: set[str] = field(default_factory=set)
    disabled: set[str] = field(default_factory=set)   # moved pipes the user had disabled
    # slave id -> {component id: config}, as the slave should hold it less the group mark
    # `marked` adds: marked copies of thousands of pipes, held for the whole plan, were
    # 0.5 KB a pipe, where a steady plan only compares each with the copy read.
    slave_systems: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    slave_pipes: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    group: str = ""      # the config group of the orchestrator's components on the slaves

    def marked(self, config: dict[str, Any]) -> dict[str, Any]:
        """A config of `slave_systems` or `slave_pipes` as the slave should hold it."""
        return with_mark(config, self.group)


def _place_pipe(pid: str, original: dict[str, Any], env: Mapping[str, Any],
                placed: Mapping[str, str]) -> tuple[PipePlacement, str | None]:
    """Where a pipe runs: in the slave of every managed system it names (contract 2), or in
    the master; and, for an unplaceable pipe, why. That one gets `shape="master"` with its
    systems set, so the caller can keep those systems in the master too."""
    r = roles(pid, original, env)
    used = tuple(sorted(s for s in systems_used(original, env) if s in placed))
    stay = PipePlacement(id=pid, original=original, slave=None, shape="master",
                         sink_dataset=r.sink_dataset)
    if not used:
        return stay, None
    refused = PipePlacement(id=pid, original=original, slave=None, shape="master",
                            systems=used, sink_dataset=r.sink_dataset)
    on = sorted({placed[s] for s in used})
    if len(on) > 1:
        where = ", ".join(f"system {name(s)} (slave {placed[s]})" for s in used)
        return refused, (f"pipe {name(pid)}: cannot be placed, it uses {where}; "
                         "it stays in the master")
    slave = on[0]
    # A system the pipe also names that stays in the master (no slave manages it, or it is
    # kept there) does not exist on the slave: the slave would refuse the copy, and the
    # master would be left with the user's pipe calling a system that now reads the slave.
    stays = sorted(s for s in systems_used(original, env) if s not in placed
                   and not s.startswith("system:") and "$ENV(" not in s)
    if stays:
        return refused, (
            f"pipe {name(pid)}: cannot be placed, it uses system {name(used[0])} on slave {slave} "
            f"and {', '.join(f'system {name(s)}' for s in stays)}, which stays in the master; "
            "it stays in the master")
    src = r.source_system if r.source_system in placed else None
    snk = r.sink_system if r.sink_system in placed else None
    # What it reads there: the managed system itself, or a master dataset a feeder copies.
    fed = r.source_dataset if not src and r.source_type == "dataset" else None
    if not src and not fed:
        return refused, (
            f"pipe {name(pid)}: cannot be placed, it uses system {name(used[0])} on slave {slave} "
            "but its source is not a dataset the master can feed; it stays in the master")
    if snk:
        return PipePlacement(id=pid, original=original, slave=slave, shape="placeholder",
                             systems=used, source_dataset=fed), None
    if r.sink_type == "dataset" and r.sink_dataset and _populated_early(original, env):
        return refused, (
            f"pipe {name(pid)}: cannot be placed, its sink's set_initial_offset marks the slave's "
            "dataset populated before its first full run, so the master's synchronising pipe "
            "could read it half-written and delete the rest; it stays in the master")
    if r.sink_type == "dataset" and r.sink_dataset:
        # The master reads the result back through one of its systems on that slave (each is
        # a system:url reading the slave's datasets once moved).
        return PipePlacement(id=pid, original=original, slave=slave, shape="sync",
                             systems=used, source_system=src or used[0],
                             sink_dataset=r.sink_dataset, source_dataset=fed), None
    return refused, (
        f"pipe {name(pid)}: cannot be placed, it uses system {name(used[0])} on slave {slave} but "
        "writes to something that slave cannot reach; it stays in the master")


def _populated_early(original: dict[str, Any], env: Mapping[str, Any]) -> bool:
    """The populated gate (a synchronising pipe reads with populated=true) holds only if the
    dataset is flagged populated after its first complete full run: Sesam's default. The
    sink options `onload` and `initially` flag it sooner."""
    sink = original.get("sink")
    sinks = [sink] if isinstance(sink, dict) else []
    if isinstance(sink, dict) and sink.get("type") == "conditional" \
            and isinstance(sink.get("alternatives"), dict):
        sinks = list(sink["alternatives"].values())     # any of them may be in force
    return any(isinstance(part, dict) and
               expand_env(part.get("set_initial_offset"), env) in ("onload", "initially")
               for part in sinks)


def _conditions(config: dict[str, Any]) -> list[str]:
    """The conditions of a pipe's conditional source and sink: they pick what it uses."""
    parts = [config.get("source"), config.get("sink")]
    return [str(p.get("condition")) for p in parts
            if isinstance(p, dict) and p.get("type") == "conditional"]


def _undecidable(pid: str, original: dict[str, Any], env: Mapping[str, Any] | None,
                 missing_systems: Mapping[str, str]) -> tuple[bool, str | None]:
    """Whether the run cannot judge a pipe, and the warning that says so (if any)."""
    r = roles(pid, original, env or {})
    systems = systems_used(original, env or {})
    named = (*systems, r.source_dataset, r.sink_dataset, *_conditions(original))
    if env is None and any(n and "$ENV(" in n for n in named):
        return True, (f"pipe {name(pid)}: names a system or dataset through $ENV(..) and the "
                      "master's env vars cannot be read; left where it is")
    return any(n in missing_systems for n in systems), None


def _placements(pipes: Mapping[str, dict[str, Any]], env: Mapping[str, Any],
                system_slave: Mapping[str, str], kept_by: Mapping[str, set[str]]
                ) -> tuple[dict[str, PipePlacement], dict[str, set[str]], list[str]]:
    """Every pipe's placement; the managed systems that must stay in the master, each with
    the pipes that keep it there; and why each refused pipe was refused.

    A system stays in the master while a pipe that stays there uses it (`kept_by`: pipes
    left untouched, or refused): a master pipe must never call a system:url that reads a
    slave's datasets. Keeping a system may refuse more pipes (one using it and a system of
    a slave), so this repeats until nothing more stays; each round keeps at least one more
    system, so it ends."""
    needs = {s: set(by) for s, by in kept_by.items() if s in system_slave}
    placed = {s: slave for s, slave in system_slave.items() if s not in needs}
    refusals: dict[str, str] = {}    # pid -> why, from the round that refused it
    while True:
        result = {}
        for pid, original in sorted(pipes.items()):
            result[pid], why = _place_pipe(pid, original, env, placed)
            if why is not None:
                refusals.setdefault(pid, why)
        for pid, p in result.items():
            if p.slave is None:
                for s in p.systems:
                    needs.setdefault(s, set()).add(pid)
        kept = {s for s in needs if s in placed}
        if not kept:
            break
        for s in kept:
            del placed[s]
    return result, needs, [why for _, why in sorted(refusals.items())]


def _kept_in_master(system: str, by: set[str], slave_id: str) -> str:
    return (f"system {name(system)}: stays in the master, where pipe{'s' if len(by) > 1 else ''} "
            f"{', '.join(map(name, sorted(by)))} use{'' if len(by) > 1 else 's'} it; it is not "
            f"moved to slave {slave_id}")


def _invalid_in_master(component: Component) -> str | None:
    """Why a pipe the master reports invalid is left where it is, as it is (a slave would
    refuse it too, and in a bulk POST with every pipe beside it); None when it is valid."""
    if component.runtime.get("is-valid-config") is not False:
        return None
    said = "; ".join(str(m) for m in component.runtime.get("config-errors") or [] if m)
    return (f"pipe {name(component.id)}: the master reports its config invalid"
            f"{' (' + node_message(said) + ')' if said else ''}; left where it is, "
            "unchanged, until it is fixed")


def _user_disabled(component: Component) -> bool:
    was = user_original(component)[1]
    if was is not None:
        return was.get("disabled") is True          # recorded when it first moved
    # The orchestrator never disables a pipe in the master (a placeholder cannot run: its
    # pump is off), so a disabled pipe without our marker is the user's choice.
    return component.runtime.get("is-disabled") is True


def _clash(kind: ComponentKind, cid: str, slave_id: str) -> str:
    return (f"{kind[:-1]} {name(cid)}: slave {slave_id} already holds a {kind[:-1]} with this "
            "id that the orchestrator did not put there; it is left alone, and this one is not "
            "placed there")


def _clashing_pipe(pid: str, original: dict[str, Any], env: Mapping[str, Any],
                   system_slave: Mapping[str, str],
                   taken: Taken) -> str | None:
    """The clash, when a pipe would go to a slave holding someone else's pipe of that id."""
    for slave_id in sorted({system_slave[s] for s in systems_used(original, env)
                            if s in system_slave}):
        if ("pipes", pid) in taken.get(slave_id, frozenset()):
            return _clash("pipes", pid, slave_id)
    return None


def desired_state(config: Config, master: NodeSnapshot, *,
                  taken: Taken | None = None) -> Desired:
    """Placement and generated configs, from the master (the slaves hold only copies).

    `taken`: per slave, the (kind, id) of components there that are not ours: never written,
    so a component of ours with such an id is not placed there (an error)."""
    desired = Desired(group=group_name(config.master.id))
    taken = taken or {}
    env = master.env or {}
    slaves = {s.id: s for s in config.slaves}
    originals = {sid: user_original(c)[0] for sid, c in master.systems.items()
                 if not sid.startswith("system:")}
    for slave in config.slaves:
        for system in slave.managed_systems:
            if system in originals and ("systems", system) in taken.get(slave.id, frozenset()):
                # Left as it is everywhere, like a missing system: the master keeps what it
                # holds now, and the pipes using it are not judged.
                desired.missing_systems[system] = slave.id
                desired.errors.append(_clash("systems", system, slave.id))
            elif system in originals:
                desired.system_slave[system] = slave.id
            else:
                desired.missing_systems[system] = slave.id
                desired.warnings.append(f"slave {slave.id}: managed system {name(system)} does not "
                                        "exist in the master; nothing to move")
    for slave in config.slaves:
        desired.slave_systems[slave.id] = {}
        desired.slave_pipes[slave.id] = {}

    pipes = {pid: user_original(c)[0] for pid, c in master.pipes.items()
             if not pid.startswith("system:")}
    kept_by: dict[str, set[str]] = {}
    for pid in sorted(pipes):
        invalid = _invalid_in_master(master.pipes[pid])
        if invalid is not None:
            # Broken already: it does not hold its systems back (one bad pipe must not
            # stop the others moving); it is placed once the user fixes it.
            desired.errors.append(invalid)
            desired.untouched.add(pid)
            continue
        undecidable, warning = _undecidable(pid, pipes[pid], master.env, desired.missing_systems)
        desired.warnings += [warning] if warning else []
        clash = None if undecidable else _clashing_pipe(pid, pipes[pid], env,
                                                         desired.system_slave, taken)
        desired.errors += [clash] if clash else []
        if undecidable or clash:
            desired.untouched.add(pid)
            if user_original(master.pipes[pid])[1] is None:   # the user's, live in the master
                for s in systems_used(pipes[pid], env):
                    kept_by.setdefault(s, set()).add(pid)
    placements, kept_systems, refusals = _placements(
        {p: c for p, c in pipes.items() if p not in desired.untouched},
        env, desired.system_slave, kept_by)
    for s, by in sorted(kept_systems.items()):
        desired.errors.append(_kept_in_master(s, by, desired.system_slave.pop(s)))
    desired.errors += refusals

    for sid, original in sorted(originals.items()):
        slave_id = desired.system_slave.get(sid)
        if sid in desired.missing_systems:     # clashes on its slave: as it is now
            desired.master_systems[sid] = master.systems[sid].original
            continue
        if slave_id is None:
            desired.master_systems[sid] = original
            continue
        slave = slaves[slave_id]
        desired.slave_systems[slave_id][sid] = original
        desired.master_systems[sid] = url_system(
            sid, endpoint=slave.endpoint, secret_key=slave.jwt_secret_key,
            token=slave.jwt_token.get_secret_value(),
            metadata=moved_marker("systems", sid, slave=slave, original=original))

    feeds: dict[str, set[str]] = {}
    for pid, placement in placements.items():
        component, original = master.pipes[pid], pipes[pid]
        desired.pipes[pid] = placement
        if placement.slave is None:
            desired.master_pipes[pid] = original
            continue
        slave = slaves[placement.slave]
        desired.slave_pipes[slave.id][pid] = original
        if _user_disabled(component):
            # The user had disabled it: its slave copy stays disabled, and moving it back
            # must not switch it on.
            desired.disabled.add(pid)
        want = _generated(config, pid, placement, slave, disabled=pid in desired.disabled)
        # What the master holds already, when equal: in a steady run thousands of freshly
        # built configs would otherwise be held beside their equals for the whole plan.
        have = component.original
        desired.master_pipes[pid] = have if built(want) == have else want
        if placement.source_dataset:
            feeds.setdefault(slave.id, set()).add(placement.source_dataset)

    for slave_id, datasets in sorted(feeds.items()):
        # A dataset a pipe on the slave writes is there already: a feeder would be a second
        # writer, looping the data through the master.
        made_here = {p.sink_dataset for p in desired.pipes.values() if p.slave == slave_id}
        datasets = datasets - made_here
        if not datasets:
            continue
        slave = slaves[slave_id]
        mine = taken.get(slave_id, frozenset())
        if ("systems", FEEDER_SYSTEM) in mine:
            desired.errors.append(f"{_clash('systems', FEEDER_SYSTEM, slave_id)}; datasets "
                                  f"{', '.join(map(name, sorted(datasets)))} are not fed to it")
            continue
        master_node = config.master
        desired.slave_systems[slave_id][FEEDER_SYSTEM] = url_system(
            FEEDER_SYSTEM, endpoint=master_node.endpoint, secret_key=master_node.jwt_secret_key,
            token=master_node.jwt_token.get_secret_value(), metadata={"feeder": True})
        for dataset in sorted(datasets):
            feeder = feeder_pipe(dataset, slave=slave, master_endpoint=master_node.endpoint)
            if feeder["_id"] in desired.slave_pipes[slave_id]:
                desired.errors.append(f"pipe {name(feeder['_id'])}: a user pipe has the feeder's "
                                      f"id; dataset {name(dataset)} is not fed to slave {slave_id}")
                continue
            if ("pipes", feeder["_id"]) in mine:
                desired.errors.append(f"{_clash('pipes', feeder['_id'], slave_id)}; dataset "
                                      f"{name(dataset)} is not fed to it")
                continue
            desired.slave_pipes[slave_id][feeder["_id"]] = feeder
    return desired


def writable_master_pipe(config: Config, desired: Desired, pid: str) -> MasterPipe:
    """`desired.master_pipes[pid]` as it can be written. Where the master's own pipe
    already is what it should be, placement keeps it, and a sync pipe is kept by digest
    (snapshots.py): a write based on it (an owed reset's flag) needs it made again, from
    its placement (equal to what is wanted, so made from the same parts)."""
    want = desired.master_pipes[pid]
    if not isinstance(want, Digest):
        return want
    placement = desired.pipes[pid]
    if placement.slave is None:
        raise ValueError(f"{name(pid)} kept by digest but placed in the master")
    return _generated(config, pid, placement, config.slave(placement.slave),
                      disabled=pid in desired.disabled)


def _generated(config: Config, pid: str, placement: PipePlacement, slave: SlaveNode, *,
               disabled: bool) -> MasterPipe:
    """The master's pipe for a pipe placed in `slave`: a sync pipe, or a placeholder."""
    if placement.shape == "sync":
        through, dataset = placement.source_system, placement.sink_dataset
        if through is None or dataset is None:   # _place_pipe sets both for a sync pipe
            raise ValueError(f"sync placement of {name(pid)} without its system or dataset")
        return SyncPipe(pid, system=through, dataset=dataset, slave=slave,
                        binary=config.master.use_binary_source, original=placement.original,
                        disabled=disabled)
    return placeholder_pipe(pid, source_dataset=placement.source_dataset,
                            metadata=moved_marker("pipes", pid, slave=slave,
                                                  original=placement.original,
                                                  disabled=disabled))
