"""What one node holds right now, read through its list endpoints.

Four reads per node (pipes, systems, env, secrets), sent together: a node's snapshot costs
one round trip of latency, however many components it holds.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Mapping

from .client import SesamClient, SesamError


RUNTIME_FIELDS = ("is-disabled", "last-seen", "is-valid-config")


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


def _component(item: dict[str, Any]) -> Component:
    config = item.get("config") if isinstance(item.get("config"), dict) else {}
    original = config.get("original") if isinstance(config.get("original"), dict) else {}
    effective = config.get("effective") if isinstance(config.get("effective"), dict) else original
    runtime = item.get("runtime") if isinstance(item.get("runtime"), dict) else {}
    # Only what the planner reads: a node with 10,000 pipes sends a lot of runtime we would
    # otherwise hold for the whole run (the container has 128 MB).
    kept = {k: runtime[k] for k in RUNTIME_FIELDS if k in runtime}
    if runtime.get("is-valid-config") is False:   # the node's own words, for the report
        errors = runtime.get("config-errors")
        kept["config-errors"] = [e.get("msg") for e in errors if isinstance(e, dict)] \
            if isinstance(errors, list) else []
    return Component(id=item["_id"], original=original, effective=effective, runtime=kept)


def read_node(client: SesamClient, node_id: str) -> NodeSnapshot:
    """Raises SesamError when pipes or systems cannot be read; env and secrets may fail."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        pipes = pool.submit(client.list_pipes)
        systems = pool.submit(client.list_systems)
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
    return NodeSnapshot(
        node_id=node_id,
        pipes={p["_id"]: _component(p) for p in pipe_list},
        systems={s["_id"]: _component(s) for s in system_list},
        env=env_value, secrets=secret_names, problems=tuple(problems))
