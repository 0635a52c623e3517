"""A small Sesam installation for the contract tests: a data source, a master and slaves.

The source node plays "the system only a slave can reach"; the master's `crm` system reads
its datasets. Every check in the contract tests reads the emulator nodes through their API.
"""
from __future__ import annotations

import copy
import json
import threading
from typing import Any

from emulator import EmulatorNode
from orchestration import (OUR_GROUP, WRITES, clear_logs, entities, log, meta, originals,
                           pipe_runtime, start_pipe, writes)
from service import orchestrator
from service.config import Config, load_config
from service.report import Report

KEY = "contract-test-key-of-more-than-32-characters-"
YEAR = 365 * 86400   # config tokens that do not trigger the "expires soon" warning


def crm_system(src: EmulatorNode) -> dict:
    return {"_id": "crm", "type": "system:url",
            "url_pattern": src.url + "/api/datasets/%s/entities",
            "authentication": "jwt", "jwt_token": src.token(expires_in=YEAR)}


ERP = {"_id": "erp", "type": "system:url", "base_url": "http://127.0.0.1:9/"}
PIPES = [
    # inbound, sink dataset named after the pipe (the default sink)
    {"_id": "crm-person", "type": "pipe", "source": {"type": "json", "system": "crm", "url": "people"}},
    # inbound, sink dataset NOT named after the pipe
    {"_id": "crm-order", "type": "pipe", "source": {"type": "json", "system": "crm", "url": "orders"},
     "sink": {"type": "dataset", "dataset": "orders"}},
    # master-only pipes reading what the inbound pipes write
    {"_id": "person-report", "type": "pipe", "source": {"type": "dataset", "dataset": "crm-person"}},
    {"_id": "order-report", "type": "pipe", "source": {"type": "dataset", "dataset": "orders"}},
    {"_id": "local-data", "type": "pipe",
     "source": {"type": "embedded", "entities": [{"_id": "x", "v": 1}, {"_id": "y", "v": 2}]}},
    # outbound: master dataset -> system erp
    {"_id": "erp-out", "type": "pipe", "source": {"type": "dataset", "dataset": "local-data"},
     "sink": {"type": "json", "system": "erp", "url": "x"}},
]
CRM_PIPES = ("crm-person", "crm-order")


class Cluster:
    """src + master + slaves, all emulator nodes over real HTTP."""

    def __init__(self, nodes, slaves=("s1", "s2"), *, seed: bool = True) -> None:
        # Each node its own JWT key, so no two nodes ever share a token.
        self.src = nodes(jwt_secret=KEY + "src")
        self.master = nodes(jwt_secret=KEY + "master")
        self.slaves: dict[str, EmulatorNode] = {sid: nodes(jwt_secret=KEY + sid) for sid in slaves}
        self.src.seed(pipes=[
            {"_id": "people", "type": "pipe", "source": {"type": "embedded", "entities": [
                {"_id": "a", "name": "Ann"}, {"_id": "b", "name": "Bob"}]}},
            {"_id": "orders", "type": "pipe", "source": {"type": "embedded", "entities": [
                {"_id": "o1", "total": 10}]}}])
        start_pipe(self.src, "people")
        start_pipe(self.src, "orders")
        self.systems = [crm_system(self.src), copy.deepcopy(ERP)]
        self.pipes = copy.deepcopy(PIPES)
        if seed:
            self.master.seed(systems=self.systems, pipes=self.pipes, env={"region": "eu"})
        # One token per node for the whole test: a new token would change generated configs.
        self.tokens = {name: node.token(expires_in=YEAR) for name, node in self.named().items()}
        self.order: list[tuple[str, str, str, int]] = []   # global (node, method, path, status)
        self._lock = threading.Lock()
        for name, node in self.named().items():
            node.add_observer(self._observer(name))

    def _observer(self, name: str):
        def observe(method: str, path: str, status: int) -> None:
            with self._lock:
                self.order.append((name, method, path, status))
        return observe

    def named(self) -> dict[str, EmulatorNode]:
        return {"master": self.master, **self.slaves}

    def environ(self, managed: dict[str, list[str]], *, master_extra: dict | None = None,
                slave_extra: dict[str, dict] | None = None,
                tokens: dict[str, str] | None = None, **variables: str) -> dict[str, str]:
        tokens = {**self.tokens, **(tokens or {})}
        m = {"_id": "master", "endpoint": self.master.url, "jwt_token": tokens["master"],
             **(master_extra or {})}
        s = [{"_id": sid, "endpoint": self.slaves[sid].url,
              "jwt_token": tokens[sid],
              "managed_systems": systems, **(slave_extra or {}).get(sid, {})}
             for sid, systems in managed.items()]
        return {"MASTER_NODE": json.dumps(m), "SLAVE_NODES": json.dumps(s), **variables}

    def config(self, managed: dict[str, list[str]] | None = None, **kwargs: Any) -> Config:
        if managed is None:
            managed = {"s1": ["crm"], "s2": ["erp"]}
        return load_config(self.environ(managed, **kwargs))

    def sync(self, slave, pipe_ids=CRM_PIPES) -> None:
        """Data flows once: each pipe runs in the slave, then its sync pipe in the master."""
        for pid in pipe_ids:
            start_pipe(slave, pid)
            start_pipe(self.master, pid)

    def replaced(self, managed: dict[str, list[str]], slave_id: str, by: str) -> Config:
        """The configuration with slave `slave_id` now at node `by`'s endpoint and token (a
        replaced node: same slave id, new address)."""
        return self.config(managed, slave_extra={slave_id: {"endpoint": self.slaves[by].url}},
                           tokens={slave_id: self.tokens[by]})

    def run(self, config: Config, *, dry_run: bool = False) -> Report:
        return orchestrator.run(config, dry_run=dry_run)

    def placed(self, managed: dict[str, list[str]] | None = None, **kwargs: Any) -> Config:
        """The configuration (as `config` takes it), after a run under it that ended ok."""
        cfg = self.config(managed, **kwargs)
        report = self.run(cfg)
        assert report.outcome == "ok", report.as_json()
        return cfg

    def synced_on_s1(self) -> Config:
        """The first run (crm to s1, erp to s2) ends ok, then crm's data flows once from s1
        into the master. Returns that configuration."""
        cfg = self.placed()
        self.sync(self.slaves["s1"])
        return cfg

    def feed_local_data(self) -> EmulatorNode:
        """The master's local-data runs, then s2's feeder copies it there (erp-out reads it
        on s2). Returns s2."""
        start_pipe(self.master, "local-data")
        start_pipe(self.slaves["s2"], "orchestrator-feed-local-data")
        return self.slaves["s2"]

    def pump_operations(self, *operations: str) -> list[tuple[str, str, str]]:
        """(node, path, operation) of each pump operation named in `operations` that the
        master and slaves were sent since the last `clear`, read from their request logs."""
        return [(name, r["path"], r["operation"]) for name, node in self.named().items()
                for r in node.requests() if r.get("operation") in operations]

    def clear(self) -> None:
        clear_logs(*self.named().values())
        with self._lock:
            self.order.clear()

    def writes(self) -> dict[str, list[dict]]:
        """Write requests per node since the last clear (from the emulators' own logs)."""
        return {name: writes(log(node)) for name, node in self.named().items()}

    def no_writes(self) -> bool:
        return not any(self.writes().values())

    def global_writes(self) -> list[tuple[str, str, str, int]]:
        with self._lock:
            return [o for o in self.order if o[1] in WRITES]


def get(node: EmulatorNode, path: str) -> tuple[int, Any]:
    return node.api("GET", path)


def pipe(node: EmulatorNode, pid: str) -> dict | None:
    status, body = node.api("GET", f"/pipes/{EmulatorNode.quote(pid)}")
    return body if status == 200 else None


def original(node: EmulatorNode, kind: str, cid: str) -> dict | None:
    status, body = node.api("GET", f"/{kind}/{EmulatorNode.quote(cid)}")
    return body["config"]["original"] if status == 200 else None


def copy_in(slave: EmulatorNode, kind: str, cid: str) -> dict | None:
    """A slave's copy as the config it copies: it must carry this orchestrator's mark (its
    config group, which is then taken off); an unmarked one comes back wrapped, so it never
    equals an original."""
    found = original(slave, kind, cid)
    if found is None:
        return None
    meta = dict(found.get("metadata") or {})
    if meta.pop("$config-group", None) != OUR_GROUP:
        return {"not marked as the orchestrator's": found}
    rest = {k: v for k, v in found.items() if k != "metadata"}
    return {**rest, "metadata": meta} if meta else rest


def has_dataset(node: EmulatorNode, did: str) -> bool:
    status, _ = node.api("GET", f"/datasets/{EmulatorNode.quote(did)}")
    return status == 200


def ids(node: EmulatorNode, kind: str) -> set[str]:
    return {i for i in originals(node, kind) if not i.startswith("system:")}


def put(node: EmulatorNode, kind: str, cid: str, config: dict) -> None:
    status, body = node.api("PUT", f"/{kind}/{EmulatorNode.quote(cid)}/config", config)
    assert status == 200, (status, body)


def described(report: Report) -> list[tuple[str, str, str]]:
    return [(a["kind"], a["node"], a["id"]) for a in report.actions]


def the_original(master: EmulatorNode, kind: str, cid: str) -> dict | None:
    """The user's config the master holds for a component: live, or in our metadata."""
    cfg = original(master, kind, cid)
    if cfg is None:
        return None
    m = meta(cfg)
    return m["original_configuration"] if m else cfg


__all__ = ["YEAR", "Cluster", "CRM_PIPES", "ERP", "PIPES", "crm_system", "described", "entities",
           "get", "pipe_runtime",
           "copy_in", "has_dataset", "ids", "meta", "original", "originals", "pipe", "put",
           "start_pipe",
           "the_original"]


# --- checks several test files share ---

def clear_faults(c: "Cluster") -> None:
    for n in c.named().values():
        n.emulator("DELETE", "/faults")


def assert_steady(c: "Cluster", cfg: Config) -> None:
    """Nothing left to do: the dry run plans nothing, and a real run writes nothing."""
    plan = c.run(cfg, dry_run=True)
    assert plan.actions == [], plan.as_json()
    c.clear()
    report = c.run(cfg)
    assert report.actions == [] and c.no_writes(), (report.as_json(), c.writes())


def disabled(node: EmulatorNode, pid: str) -> bool:
    return pipe_runtime(node, pid)["is-disabled"] is True


def cannot_run(node: EmulatorNode, pid: str) -> bool:
    """Its pump cannot be started at all (mode `off`): what a placeholder is."""
    status, pump = node.api("GET", f"/pipes/{EmulatorNode.quote(pid)}/pump")
    assert status == 200, pump
    return "start" not in pump["runtime"]["supported-operations"]


def pump_mode(node: EmulatorNode, pid: str) -> str:
    status, body = node.api("GET", f"/pipes/{EmulatorNode.quote(pid)}")
    assert status == 200, body
    return body["config"]["effective"]["pump"].get("mode", "scheduled")


# --- fault rules and states the placement tests share ---

# The master's env cannot be read (no group:Admin): pipes naming a system through $ENV(..)
# cannot be judged.
ENV_403 = {"method": "GET", "path": "^/api/env$", "status": 403, "times": 1000}
# A node whose pipe listing cannot be read: nothing may be written to it or deleted in it.
UNREADABLE = {"method": "GET", "path": "^/api/pipes$", "status": 401, "times": 1000}
# PUT and DELETE are retried three times by the client: four hits make the write fail.
HARD = 4
# Env values of every JSON shape, with a newline, a quote and a $SECRET(..) look-alike.
ODD_ENV = {"region": "eu", "obj": {"a": [1, {"b": None}], "c": "d"}, "lst": [1, "x", [2]],
           "num": 1.5, "flag": False, "zero": 0, "empty": "", "nested_secret": "$SECRET(nope)",
           "quote": 'a "b"\nc'}


def dataset_ids(node: EmulatorNode) -> set[str]:
    return {d["_id"] for d in node.api("GET", "/datasets")[1]}


def node_state(node: EmulatorNode) -> tuple:
    """A node's pipes and systems (originals) and dataset ids: to see that a run left it alone."""
    return originals(node, "pipes"), originals(node, "systems"), dataset_ids(node)


def assert_originals_kept(c: "Cluster", systems: list[dict], pipes: list[dict]) -> None:
    """The master still holds each of these configs as the user wrote it (contract 3.5)."""
    for s in systems:
        assert the_original(c.master, "systems", s["_id"]) == s, s["_id"]
    for p in pipes:
        assert the_original(c.master, "pipes", p["_id"]) == p, p["_id"]


def pump(node: EmulatorNode, pid: str, operation: str) -> None:
    """A pump operation a user makes by hand (disable, enable, ...)."""
    assert node.api("POST", f"/pipes/{pid}/pump", {"operation": operation})[0] == 200


def run_as_planned(c: "Cluster", cfg: Config, *, outcome: str | None = "ok") -> Report:
    """A dry run, then the real run on the same state: the same actions, in the same order."""
    plan = c.run(cfg, dry_run=True)
    report = c.run(cfg)
    assert described(plan) == described(report), (described(plan), described(report))
    if outcome is not None:
        assert report.outcome == outcome, report.as_json()
    return report
