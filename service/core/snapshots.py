"""What one node holds, as the planner sees it: a snapshot of its components, and how one
entry of a node's listing becomes a Component.

Only what the planner needs is kept of each listing entry, as it arrives (the service has
128 MB for a master of thousands of pipes): the original config, its DTL rules as compact
text (service/core/opaque.py); of the effective config only the parts that say which
systems and datasets a pipe uses (`shape`) and its pump's `schedule_interval` (flows.py);
of the runtime the few fields the planner and flows.py read. Reading the listings is
service/nodes/reading.py's job.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from service.core.opaque import Digest, freeze

# "success" and "last-run": the last pump run, for the data-flow health (flows.py).
RUNTIME_FIELDS = ("is-disabled", "last-seen", "is-valid-config", "success", "last-run")


@dataclass(frozen=True, slots=True)   # slots: 40 bytes less each, 10,000s of them
class Component:
    id: str
    original: dict[str, Any]
    effective: dict[str, Any]
    runtime: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NodeSnapshot:
    node_id: str
    pipes: Mapping[str, Component]
    systems: Mapping[str, Component]
    env: Mapping[str, Any] | None        # None: could not be read (see problems)
    secrets: frozenset[str] | None       # names only; None: could not be read
    problems: tuple[str, ...] = ()
    # system id -> names of its local secrets, for systems that use a $SECRET(..) the node
    # does not hold globally; a system using one but missing here: unknown (see problems).
    system_secrets: Mapping[str, frozenset[str]] = field(default_factory=dict)


def malformation(item: dict[str, Any]) -> str | None:
    """Why a listing entry is not a usable component, or None when it is."""
    config = item.get("config")
    if not isinstance(config, dict):
        return "'config' is missing or not an object"
    original = config.get("original")
    if not isinstance(original, dict):
        return "'config.original' is missing or not an object"
    if "effective" in config and not isinstance(config["effective"], dict):
        return "'config.effective' is not an object"
    if "runtime" in item and not isinstance(item["runtime"], dict):
        return "'runtime' is not an object"
    if original.get("_id") != item["_id"]:
        return "'config.original._id' differs from the entry's '_id'"
    return None


# What configs.roles and configs.systems_used read of a config: source, sink, transforms
# and the parts nested in them, their type, system, dataset and a conditional's choice.
_SHAPE = frozenset({"type", "system", "dataset", "condition", "source", "sources", "sink",
                    "transform", "transforms"})


# A dict of the shape whose values are all plain values, keyed by its items: one such dict
# of a listing stands for every equal one (see Keeper).
_Leaves = dict[tuple[Any, ...], dict[str, Any]]
_PLAIN = (str, int, float, bool, type(None))


def shape(part: Any, leaves: _Leaves | None = None) -> Any:
    """`part` without what no placement decision reads (DTL rules, urls, pump, metadata).
    With `leaves`, an innermost dict equal to one already in `leaves` is that one: the
    shapes are only read, and a listing repeats the same `{"type": "dtl"}` or source
    thousands of times."""
    if isinstance(part, list):
        return [shape(p, leaves) for p in part]
    if not isinstance(part, dict):
        return part
    out = {k: shape(v, leaves) for k, v in part.items() if k in _SHAPE}
    alternatives = part.get("alternatives")
    if alternatives is not None:
        out["alternatives"] = ({k: shape(v, leaves) for k, v in alternatives.items()}
                               if isinstance(alternatives, dict) else alternatives)
    return _shared(out, leaves)


def _shared(part: dict[str, Any], leaves: _Leaves | None) -> dict[str, Any]:
    """`part`, or the equal dict already in `leaves` when all its values are plain."""
    if leaves is None or not all(isinstance(v, _PLAIN) for v in part.values()):
        return part
    # One flat tuple per dict (held while the listing is read). Each value's type in it too:
    # 1, 1.0 and True are equal, and flows.py tells them apart.
    key = tuple(x for k, v in part.items() for x in (k, v.__class__, v))
    return leaves.setdefault(key, part)


def component_of(item: dict[str, Any], *, whole: bool = True,
                 leaves: _Leaves | None = None) -> Component:
    config = item["config"]
    original = freeze(config["original"]) if whole else \
        Digest(config["original"], share=lambda kept: _shared(kept, leaves))
    effective = config.get("effective") if isinstance(config.get("effective"), dict) else original
    pump = effective.get("pump")
    effective = {"_id": item["_id"], **shape(effective, leaves)}
    if isinstance(pump, dict) and "schedule_interval" in pump:
        # flows.py judges a flow's age by its pump's interval: the one pump field kept.
        effective["pump"] = _shared({"schedule_interval": pump["schedule_interval"]}, leaves)
    runtime = item.get("runtime") or {}
    # Only what the planner reads: a node with 10,000 pipes sends a lot of runtime we would
    # otherwise hold for the whole run (the container has 128 MB).
    kept = {k: runtime[k] for k in RUNTIME_FIELDS if k in runtime}
    if runtime.get("is-valid-config") is False:   # the node's own words, for the report
        errors = runtime.get("config-errors")
        kept["config-errors"] = [e.get("msg") for e in errors if isinstance(e, dict)] \
            if isinstance(errors, list) else []
    return Component(id=item["_id"], original=original, effective=effective, runtime=kept)


class Keeper:
    """What each entry of one listing leaves behind once parsed (called for each entry as it
    arrives): its Component, or (id, why) if malformed. `whole=False`: the original config
    kept by its digest (a slave's copy of a pipe: the planner only compares it with what it
    should be, and reads its marker). The entries' equal innermost shape dicts are shared
    (shape): ~0.4 KB less per pipe, for the length of one listing's snapshot."""

    def __init__(self, *, whole: bool = True) -> None:
        self._whole = whole
        self._leaves: _Leaves = {}

    def __call__(self, item: dict[str, Any]) -> Component | tuple[str, str]:
        why = malformation(item)
        return (item["_id"], why) if why is not None else \
            component_of(item, whole=self._whole, leaves=self._leaves)
