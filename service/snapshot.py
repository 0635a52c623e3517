"""What one node holds right now, read through its list endpoints.

Four reads per node (pipes, systems, env, secrets), sent together: a node's snapshot costs
one round trip of latency, however many components it holds. On a slave, one more round,
also sent together, for the local secret names of systems that use a `$SECRET(..)` the
slave does not hold globally (none when it holds them all).

Only what the planner needs is kept of each listing entry, as it arrives (the service has
128 MB for a master of thousands of pipes): the original config, its DTL rules as compact
text (service/opaque.py); of the effective config only the parts that say which systems and
datasets a pipe uses (`shape`) and its pump's `schedule_interval` (flows.py); of the runtime
the few fields the planner and flows.py read.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Mapping

from .client import SesamClient, SesamError
from .opaque import Digest, freeze
from .text import name


# "success" and "last-run": the last pump run, for the data-flow health (flows.py).
RUNTIME_FIELDS = ("is-disabled", "last-seen", "is-valid-config", "success", "last-run")
_SHOW = 5          # malformed entries named in one error line


class MalformedListing(SesamError):
    """A listing entry is not a component as Sesam describes one: acting on the rest of the
    listing would read the broken entry as 'gone', and delete its copies."""


@dataclass(frozen=True)
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


def shape(part: Any) -> Any:
    """`part` without what no placement decision reads (DTL rules, urls, pump, metadata)."""
    if isinstance(part, list):
        return [shape(p) for p in part]
    if not isinstance(part, dict):
        return part
    out = {k: shape(v) for k, v in part.items() if k in _SHAPE}
    alternatives = part.get("alternatives")
    if alternatives is not None:
        out["alternatives"] = ({k: shape(v) for k, v in alternatives.items()}
                               if isinstance(alternatives, dict) else alternatives)
    return out


def _component(item: dict[str, Any], *, whole: bool = True) -> Component:
    config = item["config"]
    original = freeze(config["original"]) if whole else Digest(config["original"])
    effective = config.get("effective") if isinstance(config.get("effective"), dict) else original
    pump = effective.get("pump")
    effective = {"_id": item["_id"], **shape(effective)}
    if isinstance(pump, dict) and "schedule_interval" in pump:
        # flows.py judges a flow's age by its pump's interval: the one pump field kept.
        effective["pump"] = {"schedule_interval": pump["schedule_interval"]}
    runtime = item.get("runtime") or {}
    # Only what the planner reads: a node with 10,000 pipes sends a lot of runtime we would
    # otherwise hold for the whole run (the container has 128 MB).
    kept = {k: runtime[k] for k in RUNTIME_FIELDS if k in runtime}
    if runtime.get("is-valid-config") is False:   # the node's own words, for the report
        errors = runtime.get("config-errors")
        kept["config-errors"] = [e.get("msg") for e in errors if isinstance(e, dict)] \
            if isinstance(errors, list) else []
    return Component(id=item["_id"], original=original, effective=effective, runtime=kept)


def _kept(item: dict[str, Any]) -> Component | tuple[str, str]:
    """What a listing entry leaves behind once parsed: its Component, or (id, why) if
    malformed. Called for each entry as it arrives."""
    why = malformation(item)
    return (item["_id"], why) if why is not None else _component(item)


def _kept_by_digest(item: dict[str, Any]) -> Component | tuple[str, str]:
    """As _kept, the original config kept by its digest (a slave's copy of a pipe: the
    planner only compares it with what it should be, and reads its marker)."""
    why = malformation(item)
    return (item["_id"], why) if why is not None else _component(item, whole=False)


def _components(node_id: str, kind: str,
                items: list[Component | tuple[str, str]]) -> dict[str, Component]:
    bad = [item for item in items if isinstance(item, tuple)]
    if bad:
        shown = "; ".join(f"{kind[:-1]} {name(cid)}: {why}" for cid, why in bad[:_SHOW])
        more = f"; and {len(bad) - _SHOW} more" if len(bad) > _SHOW else ""
        raise MalformedListing(f"{node_id} GET /{kind}: {len(bad)} malformed "
                               f"entr{'y' if len(bad) == 1 else 'ies'} ({shown}{more})")
    return {item.id: item for item in items if isinstance(item, Component)}


def _local_secrets(client: SesamClient, systems: Mapping[str, Component],
                   global_names: frozenset[str] | None,
                   pool: ThreadPoolExecutor) -> tuple[dict[str, frozenset[str]], list[str]]:
    # Only where they can matter: a system using a secret the node does not hold globally
    # (with the global names unknown, the secret check is skipped anyway). A slave that
    # holds its secrets globally costs no extra request.
    from .configs import secrets_used    # here: configs imports this module
    if global_names is None:
        return {}, []
    wanted = sorted(sid for sid, comp in systems.items()
                    if secrets_used(comp.original) - global_names)
    futures = {sid: pool.submit(client.list_system_secrets, sid) for sid in wanted}
    found: dict[str, frozenset[str]] = {}
    problems: list[str] = []
    for sid, future in futures.items():
        try:
            found[sid] = frozenset(future.result())
        except SesamError as exc:
            problems.append(f"cannot read the local secret names of system {name(sid)}: {exc}")
    return found, problems


def read_node(client: SesamClient, node_id: str, *, local_secrets: bool = False,
              pipe_digests: bool = False) -> NodeSnapshot:
    """Raises SesamError when pipes or systems cannot be read or hold a malformed entry;
    env and secrets may fail. `local_secrets`: also read the local secret names of the
    systems that use $SECRET(..) (a slave's: what the secret check compares).
    `pipe_digests`: keep pipes' original configs by digest only (see opaque.Digest): a
    slave's, never the master's, whose originals are what gets written."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        pipes = pool.submit(client.list_pipes, _kept_by_digest if pipe_digests else _kept)
        systems = pool.submit(client.list_systems, _kept)
        env = pool.submit(client.get_env)
        secrets = pool.submit(client.list_secrets)
        pipe_list, system_list = pipes.result(), systems.result()
        problems: list[str] = []
        try:
            env_value: Mapping[str, Any] | None = env.result()
        except SesamError as exc:
            env_value = None
            problems.append(f"cannot read env vars: {exc}")
        try:
            secret_names: frozenset[str] | None = frozenset(secrets.result())
        except SesamError as exc:
            secret_names = None
            problems.append(f"cannot read secret names: {exc}")
        system_map = _components(node_id, "systems", system_list)
        pipe_map = _components(node_id, "pipes", pipe_list)
        local, local_problems = _local_secrets(client, system_map, secret_names, pool) \
            if local_secrets else ({}, [])
    return NodeSnapshot(
        node_id=node_id, pipes=pipe_map, systems=system_map,
        env=env_value, secrets=secret_names, problems=tuple(problems + local_problems),
        system_secrets=local)
