"""Pure: the warnings a person should see before something breaks (contract 7).

Tokens about to expire or lacking group:Admin, env vars or secret names a node would not
show, secrets a slave lacks for what it is given (globally, or local to the system using it).
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from urllib.parse import quote

from service.config import Config
from service.core.names import name
from service.core.placement import Desired
from service.core.references import marker, secrets_used
from service.core.snapshots import NodeSnapshot
from service.core.tokens import token_warnings


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
    for slave_id, slave in sorted(slaves.items()):
        if slave is not None and slave.secrets is not None:
            warnings += _slave_secret_warnings(slave_id, slave, master, desired)
    return warnings + _unlisted_slave_warnings(config, master) + _unmarked_slave_readers(
        config, master)


def _unmarked_slave_readers(config: Config, master: NodeSnapshot) -> list[str]:
    """A master system reading a slave's datasets without our marker: most likely generated
    by an earlier orchestrator (1.0) in a layout this one does not recognise. Taken for the
    user's upload, it and its pipes would be moved over the slave's copies."""
    endpoints = {s.endpoint.lower() + "/api/datasets/": s.id for s in config.slaves}
    found = []
    for sid, cfg in sorted(master.systems.items()):
        if marker(cfg.original) is not None:
            continue
        url = str(cfg.original.get("url_pattern") or cfg.original.get("base_url") or "")
        slave = next((i for e, i in endpoints.items() if url.lower().startswith(e)), None)
        if slave is not None:
            found.append(f"master system {name(sid)} reads slave {slave}'s datasets but has "
                         "no metadata.orchestrator: if an earlier orchestrator generated it, "
                         "this run takes it for your upload (see README, Upgrading from "
                         "orchestrator 1.0)")
    return found


def _unlisted_slave_warnings(config: Config, master: NodeSnapshot) -> list[str]:
    """A slave dropped from SLAVE_NODES gives its systems back to the master, but its copies
    keep running there: the orchestrator no longer has its address or token to remove them."""
    listed = {s.id for s in config.slaves}
    left: dict[str, set[str]] = {}
    for cid, cfg in (*master.systems.items(), *master.pipes.items()):
        slave = (marker(cfg.original) or {}).get("slave")
        if isinstance(slave, str) and slave not in listed:
            left.setdefault(slave, set()).add(cid)
    return [f"slave {name(slave)} is no longer in SLAVE_NODES: the master takes back "
            f"{', '.join(map(name, sorted(cids)))}, but the copies on {name(slave)} stay there "
            "and may still run; list it with \"managed_systems\": [] for one run to remove them, "
            "or delete them on that node"
            for slave, cids in sorted(left.items())]


def _slave_secret_warnings(slave_id: str, snap: NodeSnapshot, master: NodeSnapshot,
                           desired: Desired) -> list[str]:
    """What a slave lacks, by name only. A system's `$SECRET(x)` is satisfied by a global
    secret x or by x local to that system on the slave (`/systems/{id}/secrets`)."""
    assert snap.secrets is not None
    warnings: list[str] = []
    covered: set[str] = set()        # satisfied locally, or reported per system below
    for sid, cfg in sorted(desired.slave_systems[slave_id].items()):
        used = secrets_used(cfg) - snap.secrets
        if not used:
            continue
        if sid in snap.systems and sid not in snap.system_secrets:
            covered |= used          # local names unreadable: snap.problems says so
            continue
        local = snap.system_secrets.get(sid, frozenset())
        covered |= used
        missing = sorted(used - local)
        if missing and sid not in snap.systems:
            # A secret local to a system can only be set once the system exists there, and
            # a node refuses the system while its secrets are missing: only global ones help.
            warnings.append(
                f"slave {slave_id}: system {name(sid)} uses secrets "
                f"{', '.join(map(name, missing))}, which {slave_id} does not hold globally; "
                f"{name(sid)} cannot be created on {slave_id} before they are there: add them "
                f"on {slave_id} with POST /secrets (a secret local to the system can only be "
                "set once it exists there)")
        elif missing:
            path = f"/systems/{quote(sid, safe='')}/secrets"
            warnings.append(
                f"slave {slave_id}: system {name(sid)} uses secrets "
                f"{', '.join(map(name, missing))}, which {slave_id} holds neither globally nor "
                f"for that system; set them on {slave_id} with PUT {path} "
                "(or globally with POST /secrets)")
    needed = set(master.secrets or ())
    for cfg in desired.slave_pipes[slave_id].values():
        needed |= secrets_used(cfg)
    missing = sorted(needed - snap.secrets - covered)
    if missing:
        warnings.append(f"slave {slave_id}: missing secrets {', '.join(map(name, missing))} "
                        "(add them to the slave; the master's secrets must exist there too)")
    return warnings
