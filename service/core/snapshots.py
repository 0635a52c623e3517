"""What one node holds, as the planner sees it: a snapshot of its components, and how one
entry of a node's listing becomes a Component.

Only what the planner needs is kept of each listing entry, as it arrives (the service has
128 MB for a master of thousands of pipes): the original config, its DTL rules as compact
text (service/core/opaque.py); of the effective config only what the planner reads of it
(`Uses`: the pipe's source and sink, the systems it names, its pump's interval); of the
runtime the few fields the planner and flows.py read. Reading the listings is
service/nodes/reading.py's job.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from service.core.opaque import Digest, freeze
from service.core.references import Roles, named, our_mark

# "success" and "last-run": the last pump run, for the data-flow health (flows.py).
RUNTIME_FIELDS = ("is-disabled", "last-seen", "is-valid-config", "success", "last-run")
# And, when the node calls a config invalid, its own words about it (for the report).
_RUNTIME_AT = {k: i for i, k in enumerate((*RUNTIME_FIELDS, "config-errors"))}


class Runtime(tuple[Any, ...]):
    """The runtime fields the planner reads, by position (RUNTIME_FIELDS, then the node's
    config error messages); read like a dict, an absent field and a null one alike being
    None. Every component has one: as a dict of three to five fields it was ~0.2 KB."""

    __slots__ = ()

    @classmethod
    def of(cls, runtime: dict[str, Any]) -> Runtime:
        errors = None
        if runtime.get("is-valid-config") is False:
            found = runtime.get("config-errors")
            errors = tuple(e.get("msg") for e in found if isinstance(e, dict)) \
                if isinstance(found, list) else ()
        return cls((*(runtime.get(k) for k in RUNTIME_FIELDS), errors))

    def get(self, key: str, default: Any = None) -> Any:
        at = _RUNTIME_AT.get(key)
        value = self[at] if at is not None and at < len(self) else None
        return default if value is None else value


NO_RUNTIME = Runtime()     # none read: every field None


@dataclass(frozen=True, slots=True)
class Uses:
    """What the planner reads of a component's effective config (Sesam's own reading of it:
    defaults filled in, env vars applied): a pipe's source and sink, every system it names,
    and its pump's `schedule_interval` (flows.py judges a flow's age by it). Worked out as
    the listing is read; the effective config is not kept (about 0.4 KB a pipe as a shape of
    dicts, and the planner's remembered answers about each)."""
    roles: Roles
    systems: frozenset[str]
    interval: int | None = None


def uses_of(component_id: str, effective: dict[str, Any],
            equal: dict[Any, Any] | None = None) -> Uses:
    """`equal`: answers already made for other entries, handed back when equal (most pipes
    of a listing name one of a few system sets)."""
    roles, systems = named(component_id, effective)
    if equal is not None:
        systems = equal.setdefault(systems, systems)
    pump = effective.get("pump")
    value = pump.get("schedule_interval") if isinstance(pump, dict) else None
    interval = value if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
        else None
    return Uses(roles=roles, systems=systems, interval=interval)


@dataclass(frozen=True, slots=True)   # slots: 40 bytes less each, 10,000s of them
class Component:
    """One entry of a listing, as the planner reads it: its original config, what its
    effective config uses and its runtime (the fields of a `Uses` and of a `Runtime`, held
    here one by one: a Uses and a Runtime apiece were 0.16 KB more for each of 20,000
    components at 10,000 pipes)."""
    id: str
    original: Mapping[str, Any]
    roles: Roles
    systems: frozenset[str]
    interval: int | None = None
    is_disabled: Any = None     # RUNTIME_FIELDS, in their order
    last_seen: Any = None
    is_valid_config: Any = None
    success: Any = None
    last_run: Any = None
    config_errors: tuple[str, ...] | None = None

    @property
    def runtime(self) -> Runtime:
        """The runtime fields, read like a dict (made when asked: the planner asks a few
        times per component, and holding one each cost more)."""
        return Runtime((self.is_disabled, self.last_seen, self.is_valid_config, self.success,
                        self.last_run, self.config_errors))

    @classmethod
    def using(cls, component_id: str, original: Mapping[str, Any], uses: Uses,
              runtime: Runtime = NO_RUNTIME) -> Component:
        return cls(component_id, original, uses.roles, uses.systems, uses.interval, *runtime)


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


# A dict whose values are all plain values, keyed by its items: one such dict of a listing
# stands for every equal one (see Keeper).
_Leaves = dict[tuple[Any, ...], dict[str, Any]]
_PLAIN = (str, int, float, bool, type(None))


def _shared(part: dict[str, Any], leaves: _Leaves | None) -> dict[str, Any]:
    """`part`, or the equal dict already in `leaves` when all its values are plain."""
    if leaves is None or not all(isinstance(v, _PLAIN) for v in part.values()):
        return part
    # One flat tuple per dict (held while the listing is read). Each value's type in it too:
    # 1, 1.0 and True are equal, and flows.py tells them apart.
    key = tuple(x for k, v in part.items() for x in (k, v.__class__, v))
    return leaves.setdefault(key, part)


def component_of(item: dict[str, Any], *, whole: bool = True,
                 leaves: _Leaves | None = None, equal: dict[Any, Any] | None = None
                 ) -> Component:
    config = item["config"]
    effective = config.get("effective")
    uses = uses_of(item["_id"], effective if isinstance(effective, dict) else config["original"],
                   equal)
    raw = config["original"]
    original: Mapping[str, Any]
    if not whole:
        original = Digest(raw, share=lambda kept: _shared(kept, leaves))
    elif uses.roles.source_type in ("json", "binary") and our_mark(item["_id"], raw) is not None:
        original = _sync_pipe_kept(raw)
    else:
        original = freeze(raw)
    # Only what the planner reads: a node with 10,000 pipes sends a lot of runtime we would
    # otherwise hold for the whole run (the container has 128 MB).
    runtime = Runtime.of(item.get("runtime") or {})
    return Component.using(item["_id"], original, uses, runtime)


def _sync_pipe_kept(raw: dict[str, Any]) -> Digest:
    """A sync pipe the orchestrator wrote in the master, kept by its digest: the planner
    compares it with the one it wants, reads its marker (with the user's config in it) and
    its source's `url`, and writes a new one whole when they differ. Whole, its source,
    sink, pump and own keys were about 0.5 KB a pipe beside the user's config.

    Digested as read, its rules deflated after (in the marker it keeps, which is the
    config's own): a digest of the deflated rules would inflate each one straight back."""
    kept = Digest(raw, keep_source_url=True)
    freeze(raw)
    return kept


class Keeper:
    """What each entry of one listing leaves behind once parsed (called for each entry as it
    arrives): its Component, or (id, why) if malformed. `whole=False`: the original config
    kept by its digest (a slave's copy of a pipe: the planner only compares it with what it
    should be, and reads its marker). Equal system sets, and equal metadata kept with a
    digest, are one object for the whole listing."""

    def __init__(self, *, whole: bool = True) -> None:
        self._whole = whole
        self._leaves: _Leaves = {}
        self._equal: dict[Any, Any] = {}

    def __call__(self, item: dict[str, Any]) -> Component | tuple[str, str]:
        why = malformation(item)
        return (item["_id"], why) if why is not None else \
            component_of(item, whole=self._whole, leaves=self._leaves, equal=self._equal)
