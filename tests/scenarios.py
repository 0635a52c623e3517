"""A scenario with every kind of move, shared by the fault, crash and leak tests.

Start: `a`, `c`, `d` on s1 and `b` on s2, orchestrated and with data in the slaves.
Then the configuration changes to the *next* placement: `c` moves s1 -> s2 and `d` goes
back to the master (no slave manages it any more), `a` and `b` stay.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from emulator import EmulatorNode
from service import orchestrator
from service.config import Config, load_config
from service.core.references import user_original

from orchestration import environ, listing, start_pipe

SECRET = "scenario-jwt-secret-0123456789-0123456789-xyz"
FIRST = {"s1": ["a", "c", "d"], "s2": ["b"]}
NEXT = {"s1": ["a"], "s2": ["b", "c"]}


@dataclass
class Scenario:
    master: EmulatorNode
    s1: EmulatorNode
    s2: EmulatorNode
    source: EmulatorNode          # the on-premise stand-in the slaves read

    @property
    def nodes(self) -> dict[str, EmulatorNode]:
        return {"master": self.master, "s1": self.s1, "s2": self.s2}

    def environ(self, placement: dict[str, list[str]], **variables: str) -> dict[str, str]:
        return environ(self.master, {sid: (getattr(self, sid), managed)
                                     for sid, managed in placement.items()},
                       master_extra={"jwt_secret_key": "master-key"},
                       slave_extra={"s1": {"jwt_secret_key": "s1-key"},
                                    "s2": {"jwt_secret_key": "s2-key"}}, **variables)

    def config(self, placement: dict[str, list[str]], **variables: str) -> Config:
        return load_config(self.environ(placement, **variables))

    def save(self) -> dict[str, dict]:
        return {nid: node.save_state() for nid, node in self.nodes.items()}

    def restore(self, saved: dict[str, dict]) -> None:
        for nid, node in self.nodes.items():
            node.restore_state(saved[nid])


def build(start) -> Scenario:
    """Start four nodes (via the `nodes` fixture's factory) and load the first placement."""
    sc = Scenario(master=start(jwt_secret=SECRET), s1=start(jwt_secret=SECRET),
                  s2=start(jwt_secret=SECRET), source=start(jwt_secret=SECRET))
    sc.source.seed(pipes=[{"_id": "people", "type": "pipe", "source": {
        "type": "embedded", "entities": [{"_id": f"p{i}", "n": i} for i in range(5)]}}])
    start_pipe(sc.source, "people")
    token = sc.source.token(admin=True)
    secrets = {"master-key": sc.master.token(), "s1-key": sc.s1.token(),
               "s2-key": sc.s2.token(), "source-token": token}
    systems = [{"_id": sid, "type": "system:url", "authentication": "jwt",
                "jwt_token": "$SECRET(source-token)",
                "url_pattern": sc.source.url + "/api/datasets/%s/entities"}
               for sid in ("a", "b", "c", "d", "local")]
    pipes = [{"_id": f"{sid}-in", "type": "pipe",
              "source": {"type": "json", "system": sid, "url": "people"}}
             for sid in ("a", "c", "d")]
    pipes += [
        # Sink dataset not named after the pipe.
        {"_id": "b-in", "type": "pipe", "source": {"type": "json", "system": "b", "url": "people"},
         "sink": {"type": "dataset", "dataset": "b-people"}},
        # Outbound: a master dataset written to a system on s2, through a feeder.
        {"_id": "to-b", "type": "pipe", "source": {"type": "dataset", "dataset": "a-in"},
         "sink": {"type": "json", "system": "b", "url": "people-out"}},
        {"_id": "stays", "type": "pipe", "source": {"type": "dataset", "dataset": "b-people"}},
    ]
    for node in (sc.master, sc.s1, sc.s2):
        node.seed(secrets=secrets)
    sc.master.seed(systems=systems, pipes=pipes, env={"region": "north", "level": 3})
    report = orchestrator.run(sc.config(FIRST))
    assert report.outcome == "ok", report.as_json()
    for pid in ("a-in", "c-in", "d-in"):
        start_pipe(sc.s1, pid)
    start_pipe(sc.s2, "b-in")
    for pid in ("a-in", "c-in", "d-in", "b-in"):
        start_pipe(sc.master, pid)
    return sc


def build_with_edits(start) -> Scenario:
    """`build`, then user edits the next run carries to a slave (an env value and a pipe), so
    that run makes every kind of write: slave PUT and env POST too."""
    sc = build(start)
    assert sc.master.api("POST", "/env", {"region": "south", "level": 3})[0] == 200
    edited = {"_id": "a-in", "type": "pipe", "description": "edited by the user",
              "source": {"type": "json", "system": "a", "url": "people"}}
    assert sc.master.api("PUT", "/pipes/a-in/config", edited)[0] == 200
    return sc


def write_kind(nid: str, method: str, path: str) -> str:
    """The write kind a request is, for the coverage check."""
    role = "master" if nid == "master" else "slave"
    if path.endswith("/pump"):
        return f"{role} POST pump"
    if path in ("/api/pipes", "/api/systems"):
        return f"{role} POST bulk"
    if path == "/api/env":
        return f"{role} POST env"
    if method == "DELETE":
        return f"{role} DELETE " + ("dataset" if path.startswith("/api/datasets/") else "component")
    return f"{role} {method}"


# Every write kind the orchestrator makes, on each role: the master only updates in place
# and runs pumps (it never bulk-creates, deletes or sets env); slaves get all the rest.
EVERY_WRITE_KIND = {"master PUT", "master POST pump", "slave POST bulk", "slave POST pump",
                    "slave POST env", "slave PUT", "slave DELETE component",
                    "slave DELETE dataset"}


def latest_originals(master: EmulatorNode) -> dict[tuple[str, str], dict]:
    """The user's latest original of every master component (live or in our metadata)."""
    out = {}
    for kind in ("pipes", "systems"):
        for item in listing(master, kind):
            out[kind, item["_id"]] = _original(item)
    return out


def _original(item: dict) -> dict:
    """The same reading the service does, of a copy (the service changes what it reads in
    place: it deflates DTL rules), as plain JSON values."""
    from service.core.opaque import thaw
    from service.core.snapshots import component_of
    return thaw(user_original(component_of(json.loads(json.dumps(item))))[0])


def holds_every_original(master: EmulatorNode, expected: dict[tuple[str, str], dict]) -> list[str]:
    """Contract 3.5, read straight from the node's store (safe inside an observer)."""
    store = master.store
    missing = []
    with store.lock:
        for (kind, cid), original in expected.items():
            table = store.pipes if kind == "pipes" else store.systems
            item = table.get(cid)
            config = item.original if kind == "pipes" and item is not None else item
            if config is None:
                missing.append(f"{kind}/{cid} is gone")
                continue
            meta = (config.get("metadata") or {}).get("orchestrator") or {}
            if config != original and meta.get("original_configuration") != original:
                missing.append(f"{kind}/{cid} lost its original")
    return missing


def end_state(sc: Scenario) -> dict[str, Any]:
    """What 'the nodes end exactly the same' compares: configs, env, datasets, disabled."""
    state = {}
    for nid, node in sc.nodes.items():
        store = node.store
        with store.lock:
            state[nid] = {
                "systems": {k: v for k, v in store.systems.items()},
                "pipes": {k: (p.original, p.disabled) for k, p in store.pipes.items()},
                "datasets": sorted(store.datasets),
                "env": dict(store.env),
            }
    return state
