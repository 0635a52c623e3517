"""Reading one node: its listings, env and secret names, into a NodeSnapshot.

Four reads per node (pipes, systems, env, secrets), sent together: a node's snapshot costs
one round trip of latency, however many components it holds. On a slave, one more round,
also sent together, for the local secret names of systems that use a `$SECRET(..)` the
slave does not hold globally (none when it holds them all). Each listing entry is parsed
as it arrives (service/core/snapshots.py says what is kept of it).
"""
from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from service.core.names import ComponentKind, name
from service.core.references import secrets_used
from service.core.snapshots import Component, Keeper, NodeSnapshot
from service.nodes.client import SesamClient, SesamError

_SHOW = 5          # malformed entries named in one error line


class MalformedListing(SesamError):
    """A listing entry is not a component as Sesam describes one: acting on the rest of the
    listing would read the broken entry as 'gone', and delete its copies."""


def _components(node_id: str, kind: ComponentKind,
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
        pipes = pool.submit(client.list_pipes, Keeper(whole=not pipe_digests))
        systems = pool.submit(client.list_systems, Keeper())
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
