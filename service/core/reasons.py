"""Pure: why the planner writes or deletes a component, in words a person approving the plan
reads ("move system crm s2 -> s1", "revert a hand edit", ...).

Told apart from what the snapshots show: the master's marker says where a component was
placed by the last run; a master component without one is the user's (never moved yet, or
uploaded over a moved one, which the slave still holding our copy gives away).
"""
from __future__ import annotations

import sys
from collections.abc import Mapping

from service.core.names import FEEDER_PREFIX, FEEDER_SYSTEM, ComponentKind, name
from service.core.references import user_original
from service.core.snapshots import NodeSnapshot

NEW_ORIGINAL = "user uploaded a new original"
HAND_EDIT = "revert a hand edit"


def _where(slave: str | None) -> str:
    return slave if slave is not None else "master"


def _generated(kind: ComponentKind, cid: str) -> bool:
    return (kind == "systems" and cid == FEEDER_SYSTEM) or \
        (kind == "pipes" and cid.startswith(FEEDER_PREFIX))


def _move(noun: str, cid: str, was: str | None, target: str | None,
          by: tuple[str, ...]) -> str:
    # A pipe moves with the managed system(s) it uses: named by them, the reason is one
    # string shared by all their pipes (a first run plans 10,000s of steps in 128 MB).
    what = f"system{'s' if len(by) > 1 else ''} {', '.join(map(name, by))}" if by \
        else f"{noun} {name(cid)}"
    return sys.intern(f"move {what} {_where(was)} -> {_where(target)}")


def write(master: NodeSnapshot, slaves: Mapping[str, NodeSnapshot], kind: ComponentKind,
          cid: str, *, target: str | None, node: str, by: tuple[str, ...] = ()) -> str:
    """Why component `cid` placed on `target` (None: the master) is written on `node`;
    `by`: the managed systems that take a pipe there."""
    noun = kind[:-1]
    here = slaves.get(node)
    exists = here is not None and cid in getattr(here, kind)
    if _generated(kind, cid):
        return HAND_EDIT if exists else f"feed master data to {node}"
    comp = getattr(master, kind).get(cid)
    mark = user_original(comp)[1] if comp is not None else None
    was = mark.get("slave") if mark is not None else None
    if mark is None and target is not None:
        copy = slaves.get(target)
        if copy is not None and cid in getattr(copy, kind):
            return NEW_ORIGINAL
    if was != target:
        return _move(noun, cid, was, target, by if target is not None else ())
    if here is not None and not exists:
        return sys.intern(f"restore the {noun}s missing on {node}")
    return HAND_EDIT


def delete(master: NodeSnapshot, kind: ComponentKind, cid: str, *, target: str | None) -> str:
    """Why a copy of ours on a slave goes: `target` is where the component is placed now."""
    if _generated(kind, cid):
        return "clean up a feeder no longer needed"
    if cid not in getattr(master, kind):
        return sys.intern(f"{kind[:-1]} deleted from the master")
    return sys.intern(f"clean up after a move to {_where(target)}")
