"""Pure: why the planner writes or deletes a component, in words a person approving the plan
reads ("move system crm s2 -> s1", "revert a hand edit", ...).

Told apart from what the snapshots show: the master's marker says where a component was
placed by the last run; a master component without one is the user's (never moved yet, or
uploaded over a moved one, which the slave still holding our copy gives away).
"""
from __future__ import annotations

from typing import Mapping

from .configs import user_original
from .names import FEEDER_PREFIX, FEEDER_SYSTEM
from .snapshot import NodeSnapshot
from .text import name

NEW_ORIGINAL = "user uploaded a new original"
HAND_EDIT = "revert a hand edit"


def _where(slave: str | None) -> str:
    return slave if slave is not None else "master"


def _generated(kind: str, cid: str) -> bool:
    return (kind == "systems" and cid == FEEDER_SYSTEM) or \
        (kind == "pipes" and cid.startswith(FEEDER_PREFIX))


def write(master: NodeSnapshot, slaves: Mapping[str, NodeSnapshot], kind: str, cid: str, *,
          target: str | None, node: str) -> str:
    """Why component `cid` (kind `pipes`|`systems`) placed on `target` (None: the master) is
    written on `node`."""
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
        return f"move {noun} {name(cid)} {_where(was)} -> {_where(target)}"
    if here is not None and not exists:
        return f"restore the {noun} missing on {node}"
    return HAND_EDIT


def delete(master: NodeSnapshot, kind: str, cid: str, *, target: str | None) -> str:
    """Why a copy of ours on a slave goes: `target` is where the component is placed now."""
    if _generated(kind, cid):
        return "clean up a feeder no longer needed"
    if cid not in getattr(master, kind):
        return f"{kind[:-1]} {name(cid)} was deleted from the master"
    return f"clean up after a move to {_where(target)}"
