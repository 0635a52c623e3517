"""Pure: what a Sesam config says, read the way Sesam reads it.

Which system and dataset a pipe reads and writes (with Sesam's defaults), `$ENV(..)`
expansion, the `$SECRET(..)` names a config uses, and the orchestrator's own marker
(`metadata.orchestrator`) with the user's original config behind it.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from service.core.opaque import Opaque

if TYPE_CHECKING:     # snapshots.py works out what an effective config names with roles()
    from service.core.snapshots import Component

_ENV = re.compile(r"\$ENV\(([^)]*)\)")
_SECRET = re.compile(r"\$SECRET\(([^)]*)\)")


def marker(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The `metadata.orchestrator` of a component, when it has a usable one."""
    meta = config.get("metadata")
    found = meta.get("orchestrator") if isinstance(meta, dict) else None
    return found if isinstance(found, dict) else None


def our_mark(component_id: str, config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The marker of a master component the orchestrator wrote, keeping the user's config of
    that id; None for anything else (what the user uploaded last, contract 4)."""
    mark = marker(config)
    if mark is not None and isinstance(mark.get("original_configuration"), dict) \
            and mark["original_configuration"].get("_id") == component_id \
            and isinstance(mark.get("slave", ""), str):
        return mark
    return None


def user_original(component: Component) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The user's latest original of a master component, and its marker if ours.

    A component with our marker keeps the user's config in `original_configuration`; one
    without is what the user uploaded last, so it is the new original (contract 4).
    """
    mark = our_mark(component.id, component.original)
    if mark is not None:
        return mark["original_configuration"], mark
    if not isinstance(component.original, dict):
        # Kept by digest (snapshots.py): only ours are, and they carry the marker read above.
        raise TypeError(f"{component.id}: kept by digest, without a marker of ours")
    return component.original, None


def expand_env(value: Any, env: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        if "$ENV(" not in value:      # the common case, and the planner asks often
            return value
        whole = _ENV.fullmatch(value)
        if whole and whole.group(1) in env:
            return env[whole.group(1)]
        return _ENV.sub(lambda m: str(env.get(m.group(1), m.group(0))), value)
    if isinstance(value, list):
        return [expand_env(v, env) for v in value]
    if isinstance(value, dict):
        return {k: expand_env(v, env) for k, v in value.items()}
    return value


def secrets_used(value: Any) -> set[str]:
    """Every `$SECRET(name)` in a config (DTL rules kept as Opaque included)."""
    if isinstance(value, str):
        return set(_SECRET.findall(value))
    if isinstance(value, Opaque):
        return set(_SECRET.findall(value.text())) if value.names_secrets else set()
    if isinstance(value, list):
        return set().union(*(secrets_used(v) for v in value)) if value else set()
    if isinstance(value, dict):
        return set().union(*(secrets_used(v) for v in value.values())) if value else set()
    return set()


# Where a pipe's config can name a system: its source, sink and transforms, and inside them
# the nested parts (a `conditional`'s alternatives, a source or transform inside another).
# Merge and union sources name datasets only. DTL `rules` are data, never a system reference.
_NESTED = ("alternatives", "source", "sources", "sink", "transform", "transforms")


def _in_force(part: dict[str, Any], env: Mapping[str, Any]) -> dict[str, Any]:
    """A `conditional` part is the alternative its condition names, as Sesam resolves it
    when the pipe is created. When the condition names none (or cannot be read), the part
    stays as it is, and every alternative counts: any of them may be the one in force."""
    if part.get("type") != "conditional" or not isinstance(part.get("alternatives"), dict):
        return part
    key = expand_env(part.get("condition"), env)
    chosen = part["alternatives"].get(key) if isinstance(key, str) else None
    return _in_force(chosen, env) if isinstance(chosen, dict) else part


def _named_systems(part: Any, env: Mapping[str, Any]) -> set[str]:
    # $ENV(..) is read only where a system can be named (or where a whole part is one env
    # var): expanding whole configs, DTL and all, costs CPU on a master with many pipes.
    if isinstance(part, str) and "$ENV(" in part:
        part = expand_env(part, env)
    if isinstance(part, list):
        return set().union(*(_named_systems(p, env) for p in part)) if part else set()
    if not isinstance(part, dict):
        return set()
    part = _in_force(part, env)
    system = expand_env(part.get("system"), env)
    found = {system} if isinstance(system, str) and system else set()
    for key in _NESTED:
        nested = part.get(key)
        if nested is None:      # most parts have none of these: skip the call (many pipes)
            continue
        if key == "alternatives" and isinstance(nested, dict):
            nested = list(nested.values())
        found |= _named_systems(nested, env)
    return found


# One plan asks for the roles and systems of the same pipe config many times (placement,
# holds, ordering, cleanup). While a plan is being made, answers are remembered per config
# object: one small record each (a 3,000-pipe plan asks about ~12,000 config objects, and a
# tuple key per question cost MBs). The record keeps the config and env alive, so an id
# cannot be reused while it is remembered.
class _Answers:
    __slots__ = ("config", "env", "pipe_id", "roles", "systems")

    def __init__(self, config: Mapping[str, Any], env: Mapping[str, Any]) -> None:
        self.config, self.env = config, env
        self.pipe_id = ""                          # the pipe id `roles` was asked with
        self.roles: Roles | None = None
        self.systems: frozenset[str] | None = None


_memo: dict[int, _Answers] = {}
# Equal answers remembered once: a set object is ~200 bytes even for one name, and the
# original, the slave copy, the generated pipe and the effective config of a pipe all name
# the same system (12,000 frozensets of ~150 distinct ones for a 3,000-pipe plan: 2.5 MB).
_equal: dict[Any, Any] = {}
_memo_users = 0
_memo_lock = threading.Lock()
# Callers with no env pass a fresh `{}` each time: one shared empty env lets those answers be
# remembered once per config, not once per call.
_NO_ENV: Mapping[str, Any] = MappingProxyType({})


@contextmanager
def remembering() -> Iterator[None]:
    """Remember `roles` and `systems_used` answers until the last plan in progress is done
    (configs are not changed in place while a plan is made)."""
    global _memo_users
    with _memo_lock:
        _memo_users += 1
    try:
        yield
    finally:
        with _memo_lock:
            _memo_users -= 1
            if not _memo_users:
                _memo.clear()
                _equal.clear()


def _answers(config: Mapping[str, Any], env: Mapping[str, Any]) -> _Answers | None:
    """The record of what `config` says under `env`; None when nothing is remembered now, or
    when the config was first asked about under another env (rare: worked out each time)."""
    if not _memo_users:
        return None
    env = env or _NO_ENV
    found = _memo.get(id(config))
    if found is None:
        found = _memo.setdefault(id(config), _Answers(config, env))
    return found if found.env is env else None


def systems_used(config: Mapping[str, Any], env: Mapping[str, Any]) -> frozenset[str]:
    """Every system a pipe names anywhere (source, sink, transforms, nested parts), with
    `$ENV(..)` read from `env`; a conditional counts the alternative in force (all of them
    when that cannot be told). A name still holding `$ENV(..)` is returned as it is."""
    answers = _answers(config, env)
    if answers is None:
        return _systems_used(config, env)
    if answers.systems is None:
        found = _systems_used(config, env)
        answers.systems = _equal.setdefault(found, found)
    return answers.systems


def named(pipe_id: str, config: Mapping[str, Any]) -> tuple[Roles, frozenset[str]]:
    """`roles` and `systems_used` of a config with no env left to apply (an effective
    config: Sesam has applied it), worked out now and not remembered: snapshots.py asks once
    for each entry of a listing, as it is read."""
    return _roles(pipe_id, config, _NO_ENV), _systems_used(config, _NO_ENV)


def _systems_used(config: Mapping[str, Any], env: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(_named_systems([config.get(k) for k in ("source", "sink", "transform")],
                                    env))


@dataclass(frozen=True, slots=True)
class Roles:
    """A pipe's source and sink, as Sesam's effective config would have them."""
    source_type: str | None
    source_system: str | None
    source_dataset: str | None
    sink_type: str | None
    sink_system: str | None
    sink_dataset: str | None


def roles(pipe_id: str, config: Mapping[str, Any], env: Mapping[str, Any]) -> Roles:
    """Sesam's defaults, applied to an original: a missing sink writes the dataset named after
    the pipe, a missing source is an empty embedded one, a missing type is `dataset`."""
    answers = _answers(config, env)
    if answers is None or answers.roles is not None and answers.pipe_id != pipe_id:
        return _roles(pipe_id, config, env)
    if answers.roles is None:
        found = _roles(pipe_id, config, env)
        answers.roles, answers.pipe_id = _equal.setdefault(found, found), pipe_id
    return answers.roles


def _roles(pipe_id: str, config: Mapping[str, Any], env: Mapping[str, Any]) -> Roles:
    # Only source and sink matter here: expanding whole configs (transforms) costs CPU.
    eff = {role: expand_env(config[role], env) for role in ("source", "sink") if role in config}
    eff = {role: _in_force(part, env) if isinstance(part, dict) else part
           for role, part in eff.items()}
    source_part, sink_part = eff.get("source"), eff.get("sink")
    source: dict[str, Any] = source_part if isinstance(source_part, dict) else (
        {"type": "embedded"} if "source" not in eff else {})
    sink: dict[str, Any] = sink_part if isinstance(sink_part, dict) else (
        {"type": "dataset", "dataset": pipe_id} if "sink" not in eff else {})
    source_type, sink_type = source.get("type", "dataset"), sink.get("type", "dataset")

    def text(v: Any) -> str | None:
        return v if isinstance(v, str) else None
    return Roles(
        source_type=text(source_type), source_system=text(source.get("system")),
        source_dataset=text(source.get("dataset")) if source_type == "dataset" else None,
        sink_type=text(sink_type), sink_system=text(sink.get("system")),
        sink_dataset=text(sink.get("dataset", pipe_id)) if sink_type == "dataset" else None)
