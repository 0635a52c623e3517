"""Pure: which components on a slave this orchestrator may touch, and the mark that says so.

Every copy the orchestrator writes to a slave is placed in Sesam's own config group
`orchestrator-<master _id>` (`metadata["$config-group"]`). On a slave, only what carries
that mark, or what can be proven to be a copy written before the mark existed, is ours:
everything else (a person's work, another orchestrator's copies) is never updated or deleted.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.config import Config, SlaveNode
from service.core.generated import component_url
from service.core.names import FEEDER_PREFIX, FEEDER_SYSTEM, ComponentKind
from service.core.references import marker, user_original
from service.core.snapshots import Component, NodeSnapshot

GROUP_KEY = "$config-group"
GROUP_PREFIX = "orchestrator-"
KINDS: tuple[ComponentKind, ...] = ("systems", "pipes")


def group_name(master_id: str) -> str:
    """The config group of one master's copies. MASTER_NODE `_id` is required and limited to
    `[A-Za-z0-9_][A-Za-z0-9_.-]*`, so the name is a safe URL segment (/config/{group})."""
    return GROUP_PREFIX + master_id


def group_of(config: Mapping[str, Any]) -> str | None:
    meta = config.get("metadata")
    group = meta.get(GROUP_KEY) if isinstance(meta, dict) else None
    return group if isinstance(group, str) else None


def with_mark(config: Mapping[str, Any], group: str) -> dict[str, Any]:
    """The copy a slave gets: the config in our group. A user's own `$config-group` is
    replaced (a component is in one group only); the master keeps the user's original."""
    meta = config.get("metadata")
    if isinstance(meta, dict) and meta:
        return {**config, "metadata": {**meta, GROUP_KEY: group}}
    # Most configs carry no metadata of their own: one mark stands for all of them (a dict
    # each was ~0.2 KB per copy a plan holds). Payloads are never changed in place.
    return {**config, "metadata": _marks.setdefault(group, {GROUP_KEY: group})}


_marks: dict[str, dict[str, str]] = {}    # group -> {GROUP_KEY: group}, shared


@dataclass(frozen=True)
class Ownership:
    ours: frozenset[tuple[ComponentKind, str]]      # (kind, id): marked by us, or adopted
    # Never written or deleted; an id clash is an error.
    foreign: frozenset[tuple[ComponentKind, str]]
    unmarked: int          # foreign and in no orchestrator's group: reported


def ownership(config: Config, master: NodeSnapshot, slave_id: str,
              snap: NodeSnapshot) -> Ownership:
    group = group_name(config.master.id)
    slave = config.slave(slave_id)
    ours: set[tuple[ComponentKind, str]] = set()
    foreign: set[tuple[ComponentKind, str]] = set()
    unmarked = 0
    for kind in KINDS:
        for cid, comp in (snap.systems if kind == "systems" else snap.pipes).items():
            if cid.startswith("system:"):
                continue        # Sesam's own
            if group_of(comp.original) == group or _adoptable(config, master, slave, kind, comp):
                ours.add((kind, cid))
                continue
            foreign.add((kind, cid))
            if not (group_of(comp.original) or "").startswith(GROUP_PREFIX):
                unmarked += 1
    return Ownership(ours=frozenset(ours), foreign=frozenset(foreign), unmarked=unmarked)


def _adoptable(config: Config, master: NodeSnapshot, slave: SlaveNode, kind: ComponentKind,
               comp: Component) -> bool:
    """A copy written before copies were marked: provably ours when the master's own marker
    places exactly this config at exactly this slave's address, or, for a feeder, when it
    reads this master. Never one in an orchestrator's group: that one is another master's."""
    if (group_of(comp.original) or "").startswith(GROUP_PREFIX):
        return False
    mark = marker(comp.original) or {}
    if mark.get("feeder") is True:
        return _our_feeder(config, kind, comp)
    table = master.systems if kind == "systems" else master.pipes
    if comp.id not in table:
        return False
    was = user_original(table[comp.id])[1]
    return bool(was and was.get("slave") == slave.id
                and was.get("url") == component_url(slave, kind, comp.id)
                and was.get("original_configuration") == comp.original)


def _our_feeder(config: Config, kind: ComponentKind, comp: Component) -> bool:
    # The feeder system names the master only in its URL (its query string may change).
    endpoint = config.master.endpoint
    if kind == "systems":
        pattern = comp.original.get("url_pattern")
        return comp.id == FEEDER_SYSTEM and isinstance(pattern, str) and \
            pattern.startswith(f"{endpoint}/api/datasets/")
    return comp.id.startswith(FEEDER_PREFIX) and (marker(comp.original) or {}).get("master") \
        == endpoint
