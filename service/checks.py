"""Pure: the warnings a person should see before something breaks (contract 7).

Tokens about to expire or lacking group:Admin, env vars or secret names a node would not
show, secrets a slave lacks for what it is given.
"""
from __future__ import annotations

from datetime import datetime
from typing import Mapping

from .config import Config
from .configs import secrets_used
from .desired import Desired
from .snapshot import NodeSnapshot
from .text import name
from .tokens import token_warnings


def warnings_for(config: Config, master: NodeSnapshot,
                 slaves: Mapping[str, NodeSnapshot | None], *, desired: Desired,
                 now: datetime) -> list[str]:
    warnings = token_warnings(config.nodes, now=now)
    for snap in (master, *[s for s in slaves.values() if s is not None]):
        warnings += [f"node {snap.node_id}: {p}" for p in snap.problems]
    if master.secrets is not None:
        for node in config.nodes:
            if node.jwt_secret_key and node.jwt_secret_key not in master.secrets:
                warnings.append(f"node {node.id}: its jwt_secret_key names secret "
                                f"{name(node.jwt_secret_key)}, which the master lacks")
    for slave_id, snap in sorted(slaves.items()):
        if snap is None or snap.secrets is None:
            continue
        needed = set(master.secrets or ())
        for part in (desired.slave_systems[slave_id], desired.slave_pipes[slave_id]):
            for cfg in part.values():
                needed |= secrets_used(cfg)
        missing = sorted(needed - snap.secrets)
        if missing:
            warnings.append(f"slave {slave_id}: missing secrets {', '.join(map(name, missing))} "
                            "(add them to the slave; the master's secrets must exist there too)")
    return warnings
