"""Pure: what each node should hold, from the master's originals and the configuration.

Nothing here does I/O. The planner compares what this module says with the snapshots.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from .config import Config
from .configs import roles, user_original
from .generated import component_url, feeder_pipe, placeholder_pipe, sync_pipe, url_system
from .names import FEEDER_SYSTEM
from .snapshot import Component, NodeSnapshot
from .text import name

PipeShape = Literal["sync", "placeholder", "master"]


@dataclass(frozen=True, kw_only=True)
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
    master_systems: dict[str, dict[str, Any]] = field(default_factory=dict)
    master_pipes: dict[str, dict[str, Any]] = field(default_factory=dict)
    pipes: dict[str, PipePlacement] = field(default_factory=dict)
    system_slave: dict[str, str] = field(default_factory=dict)   # managed system -> slave
    # Managed systems the master does not list: their slave copies are left alone (6).
    missing_systems: dict[str, str] = field(default_factory=dict)  # system -> managing slave
    # Pipes the run cannot judge (they name a missing managed system, or $ENV(..) while the
    # master's env is unreadable): left exactly where they are, in the master and slaves.
    untouched: set[str] = field(default_factory=set)
    disabled: set[str] = field(default_factory=set)   # moved pipes the user had disabled
    # slave id -> {component id: original config}
    slave_systems: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    slave_pipes: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _place_pipe(pid: str, original: dict[str, Any], env: Mapping[str, Any],
                placed: Mapping[str, str], desired: Desired) -> PipePlacement:
    r = roles(pid, original, env)
    src = r.source_system if r.source_system in placed else None
    snk = r.sink_system if r.sink_system in placed else None
    stay = PipePlacement(id=pid, original=original, slave=None, shape="master",
                         sink_dataset=r.sink_dataset)
    if src and snk and placed[src] != placed[snk]:
        desired.errors.append(
            f"pipe {name(pid)}: cannot be placed, it uses system {name(src)} (slave "
            f"{placed[src]}) and system {name(snk)} (slave {placed[snk]}); it stays in the master")
        return stay
    if src:
        slave = placed[src]
        used = tuple(sorted({src} | ({snk} if snk else set())))
        if r.sink_type == "dataset" and r.sink_dataset:
            return PipePlacement(id=pid, original=original, slave=slave, shape="sync",
                                 systems=used, source_system=src, sink_dataset=r.sink_dataset)
        if snk:
            return PipePlacement(id=pid, original=original, slave=slave, shape="placeholder",
                                 systems=used)
        desired.errors.append(
            f"pipe {name(pid)}: cannot be placed, it reads system {name(src)} on slave {slave} but writes "
            f"to something that slave cannot reach; it stays in the master")
        return stay
    if snk:
        if r.source_type == "dataset" and r.source_dataset:
            return PipePlacement(id=pid, original=original, slave=placed[snk],
                                 shape="placeholder", systems=(snk,),
                                 source_dataset=r.source_dataset)
        desired.errors.append(
            f"pipe {name(pid)}: cannot be placed, it writes to system {name(snk)} on slave {placed[snk]} "
            "but its source is not a dataset the master can feed; it stays in the master")
    return stay


def _undecidable(pid: str, original: dict[str, Any], env: Mapping[str, Any] | None,
                 desired: Desired) -> bool:
    r = roles(pid, original, env or {})
    named = (r.source_system, r.sink_system, r.source_dataset, r.sink_dataset)
    if env is None and any(n and "$ENV(" in n for n in named):
        desired.warnings.append(f"pipe {name(pid)}: names a system or dataset through $ENV(..) and "
                                "the master's env vars cannot be read; left where it is")
        return True
    if any(n in desired.missing_systems for n in (r.source_system, r.sink_system) if n):
        return True
    return False


def _user_disabled(component: Component) -> bool:
    was = user_original(component)[1]
    if was is not None:
        return was.get("disabled") is True          # recorded when it first moved
    # The orchestrator never disables a pipe in the master (a placeholder cannot run: its
    # pump is off), so a disabled pipe without our marker is the user's choice.
    return component.runtime.get("is-disabled") is True


def desired_state(config: Config, master: NodeSnapshot) -> Desired:
    """Placement and generated configs, from the master (the slaves hold only copies)."""
    desired = Desired()
    env = master.env or {}
    slaves = {s.id: s for s in config.slaves}
    originals = {sid: user_original(c)[0] for sid, c in master.systems.items()
                 if not sid.startswith("system:")}
    for slave in config.slaves:
        for system in slave.managed_systems:
            if system in originals:
                desired.system_slave[system] = slave.id
            else:
                desired.missing_systems[system] = slave.id
                desired.warnings.append(f"slave {slave.id}: managed system {name(system)} does not "
                                        "exist in the master; nothing to move")
    for slave in config.slaves:
        desired.slave_systems[slave.id] = {}
        desired.slave_pipes[slave.id] = {}

    for sid, original in sorted(originals.items()):
        slave_id = desired.system_slave.get(sid)
        if slave_id is None:
            desired.master_systems[sid] = original
            continue
        slave = slaves[slave_id]
        desired.slave_systems[slave_id][sid] = original
        desired.master_systems[sid] = url_system(
            sid, endpoint=slave.endpoint, secret_key=slave.jwt_secret_key,
            token=slave.jwt_token.get_secret_value(),
            metadata={"slave": slave_id, "url": component_url(slave, "systems", sid),
                      "original_configuration": original})

    feeds: dict[str, set[str]] = {}
    for pid, component in sorted(master.pipes.items()):
        if pid.startswith("system:"):
            continue
        original = user_original(component)[0]
        if _undecidable(pid, original, master.env, desired):
            desired.untouched.add(pid)
            continue
        placement = _place_pipe(pid, original, env, desired.system_slave, desired)
        desired.pipes[pid] = placement
        if placement.slave is None:
            desired.master_pipes[pid] = original
            continue
        slave = slaves[placement.slave]
        desired.slave_pipes[slave.id][pid] = original
        metadata = {"slave": slave.id, "url": component_url(slave, "pipes", pid),
                    "original_configuration": original}
        if _user_disabled(component):
            # The user had disabled it: its slave copy stays disabled, and moving it back
            # must not switch it on.
            metadata["disabled"] = True
            desired.disabled.add(pid)
        if placement.shape == "sync":
            desired.master_pipes[pid] = sync_pipe(
                pid, system=placement.source_system, dataset=placement.sink_dataset, slave=slave,
                binary=config.master.use_binary_source, metadata=metadata)
        else:
            desired.master_pipes[pid] = placeholder_pipe(
                pid, source_dataset=placement.source_dataset, metadata=metadata)
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
            desired.slave_pipes[slave_id][feeder["_id"]] = feeder
    return desired

