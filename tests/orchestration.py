"""Helpers for tests that run the orchestrator against emulator nodes."""
from __future__ import annotations

import json
from typing import Any, Iterable

from emulator import EmulatorNode
from service.config import Config, load_config

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def environ(master: EmulatorNode, slaves: dict[str, tuple[EmulatorNode, list[str]]], *,
            master_extra: dict[str, Any] | None = None,
            slave_extra: dict[str, dict[str, Any]] | None = None, **variables: str) -> dict:
    """The environment Sesam would pass: MASTER_NODE and SLAVE_NODES as JSON."""
    m = {"_id": "master", "endpoint": master.url, "jwt_token": master.token(admin=True),
         **(master_extra or {})}
    s = [{"_id": sid, "endpoint": node.url, "jwt_token": node.token(admin=True),
          "managed_systems": managed, **(slave_extra or {}).get(sid, {})}
         for sid, (node, managed) in slaves.items()]
    return {"MASTER_NODE": json.dumps(m), "SLAVE_NODES": json.dumps(s), **variables}


def config_for(master: EmulatorNode, slaves: dict[str, tuple[EmulatorNode, list[str]]],
               **kwargs: Any) -> Config:
    return load_config(environ(master, slaves, **kwargs))


# The config group that marks what the orchestrator wrote to a slave, for master "master".
OUR_GROUP = "orchestrator-master"


def as_copy(config: dict) -> dict:
    """What a slave holds of a master original: the same config, in the orchestrator's group."""
    return {**config, "metadata": {**(config.get("metadata") or {}), "$config-group": OUR_GROUP}}


def listing(node: EmulatorNode, kind: str) -> list[dict]:
    """What GET /pipes or /systems (`kind`) answers, read in this process: the tests check
    every node after every run, and over HTTP that was a fifth of their time. Read only."""
    return node.store.listing("pipe" if kind == "pipes" else "system")


def originals(node: EmulatorNode, kind: str) -> dict[str, dict]:
    return {c["_id"]: c["config"]["original"] for c in listing(node, kind)}


def pipe_runtime(node: EmulatorNode, pid: str) -> dict:
    status, body = node.api("GET", f"/pipes/{EmulatorNode.quote(pid)}")
    assert status == 200
    return body["runtime"]


def meta(config: dict) -> dict | None:
    return (config.get("metadata") or {}).get("orchestrator")


def writes(requests: Iterable[dict]) -> list[dict]:
    return [r for r in requests if r["method"] in WRITES]


def clear_logs(*nodes: EmulatorNode) -> None:
    for n in nodes:
        n.clear_requests()


def log(node: EmulatorNode) -> list[dict]:
    return node.requests()


def entities(node: EmulatorNode, dataset: str) -> list[dict]:
    status, body = node.api("GET", f"/datasets/{EmulatorNode.quote(dataset)}/entities")
    assert status == 200, (status, body)
    return body


def start_pipe(node: EmulatorNode, pid: str) -> dict:
    """One run of the pipe, to its end (a node runs it in the background); its pump JSON."""
    return node.run_pipe(pid)
