"""Issue 12.2: every reference to a managed system counts, wherever the pipe names it.

A pipe that names a managed system in a transform, in a conditional's alternatives or through
`$ENV(..)` runs in that system's slave (fed by a feeder, read back by a synchronising pipe).
A pipe that cannot be placed keeps the systems it uses in the master, and says so every run:
no master pipe is ever left calling a system:url that reads a slave's datasets.
"""
from __future__ import annotations

from contract_helpers import (copy_in, Cluster, assert_steady, entities, ids, meta, original,
                              start_pipe, the_original)
from service.core.references import systems_used

FEEDER = "orchestrator-feed-local-data"


def _enrich(pid: str, system: str) -> dict:
    """Reads a master dataset, calls `system` in an http transform, writes a dataset."""
    return {"_id": pid, "type": "pipe", "source": {"type": "dataset", "dataset": "local-data"},
            "transform": [{"type": "dtl", "rules": {"default": [["copy", "*"]]}},
                          {"type": "http", "system": system, "url": "enrich"}],
            "sink": {"type": "dataset", "dataset": f"{pid}-out"}}


def _cluster(nodes, extra: list[dict], env: dict | None = None) -> Cluster:
    c = Cluster(nodes, seed=False)
    c.master.seed(systems=c.systems, pipes=[*c.pipes, *extra], env={"region": "eu", **(env or {})})
    start_pipe(c.master, "local-data")
    return c


def _no_master_pipe_calls_a_slave(c: Cluster) -> None:
    """Every master pipe naming a moved system is the orchestrator's own (a sync pipe reading
    the slave, or a disabled placeholder), never a user's pipe calling the system:url."""
    moved = {sid for sid in ids(c.master, "systems")
             if meta(original(c.master, "systems", sid)) is not None}
    env = dict(c.master.store.env)
    for pid in ids(c.master, "pipes"):
        cfg = original(c.master, "pipes", pid)
        if systems_used(cfg, env) & moved:
            assert meta(cfg) is not None, f"master pipe {pid} calls a moved system"


def _moved_with_feeder(c: Cluster, user_pipe: dict) -> None:
    s1, pid = c.slaves["s1"], user_pipe["_id"]
    assert copy_in(s1, "pipes", pid) == user_pipe
    live = original(c.master, "pipes", pid)
    assert meta(live)["slave"] == "s1" and meta(live)["original_configuration"]["_id"] == pid
    # the master reads the pipe's output back from the slave, into the same dataset
    assert live["source"]["system"] == "crm" and live["source"]["url"] == f"{pid}-out"
    assert live["sink"] == {"type": "dataset", "dataset": f"{pid}-out"}
    # what it reads in the master reaches the slave by feeder
    assert FEEDER in ids(s1, "pipes") and "orchestrator-master" in ids(s1, "systems")
    start_pipe(s1, FEEDER)
    assert {e["_id"] for e in entities(s1, "local-data")} == {"x", "y"}
    _no_master_pipe_calls_a_slave(c)


def test_a_pipe_calling_the_system_in_an_http_transform_moves_with_a_feeder(nodes):
    enrich = _enrich("enrich-people", "crm")
    c = _cluster(nodes, [enrich])
    cfg = c.config({"s1": ["crm"]})
    report = c.run(cfg)
    assert report.outcome == "ok", report.errors
    _moved_with_feeder(c, enrich)
    assert_steady(c, cfg)


def test_a_system_named_in_a_transform_through_env_counts(nodes):
    enrich = _enrich("enrich-env", "$ENV(enricher)")
    c = _cluster(nodes, [enrich], env={"enricher": "crm"})
    cfg = c.config({"s1": ["crm"]})
    report = c.run(cfg)
    assert report.outcome == "ok", report.errors
    _moved_with_feeder(c, enrich)
    assert_steady(c, cfg)


def test_a_system_named_in_a_conditional_source_counts_and_data_flows(nodes):
    cond = {"_id": "cond-people", "type": "pipe",
            "source": {"type": "conditional", "condition": "$ENV(stage)", "alternatives": {
                "prod": {"type": "json", "system": "crm", "url": "people"},
                "test": {"type": "embedded", "entities": [{"_id": "t"}]}}}}
    c = _cluster(nodes, [cond], env={"stage": "prod"})
    cfg = c.config({"s1": ["crm"]})
    report = c.run(cfg)
    assert report.outcome == "ok", report.errors
    s1 = c.slaves["s1"]
    assert copy_in(s1, "pipes", "cond-people") == cond
    assert meta(original(c.master, "pipes", "cond-people"))["original_configuration"] == cond
    c.sync(s1, ("cond-people",))
    assert {e["_id"] for e in entities(c.master, "cond-people")} == {"a", "b"}
    _no_master_pipe_calls_a_slave(c)
    assert_steady(c, cfg)


def test_a_system_named_in_a_conditional_transform_counts(nodes):
    cond = {**_enrich("cond-enrich", "crm"),
            "transform": {"type": "conditional", "condition": "$ENV(stage)", "alternatives": {
                "prod": {"type": "http", "system": "crm", "url": "enrich"},
                "test": {"type": "dtl", "rules": {"default": [["copy", "*"]]}}}}}
    c = _cluster(nodes, [cond], env={"stage": "prod"})
    c.placed({"s1": ["crm"]})
    _moved_with_feeder(c, cond)


def _assert_crm_kept_in_master(c: Cluster, report, bad: str) -> None:
    assert report.outcome == "failed"
    assert any(e.startswith(f"pipe {bad}: cannot be placed") for e in report.errors), report.errors
    assert any(e.startswith("system crm: stays in the master") and bad in e
               for e in report.errors), report.errors
    assert original(c.master, "systems", "crm") == c.systems[0]
    for p in c.pipes:
        assert original(c.master, "pipes", p["_id"])["_id"] == p["_id"]
        if p["_id"] != "erp-out":
            assert original(c.master, "pipes", p["_id"]) == p
    s1 = c.slaves["s1"]
    assert "crm" not in ids(s1, "systems") and not {"crm-person", "crm-order", bad} & ids(s1, "pipes")
    _no_master_pipe_calls_a_slave(c)


def test_an_unplaceable_pipe_keeps_the_system_in_the_master_every_run(nodes):
    # Its source is embedded config of the master, not a dataset a feeder could copy.
    bad = {"_id": "enrich-embedded", "type": "pipe",
           "source": {"type": "embedded", "entities": [{"_id": "e"}]},
           "transform": {"type": "http", "system": "crm", "url": "enrich"}}
    c = _cluster(nodes, [bad])
    cfg = c.config()
    _assert_crm_kept_in_master(c, c.run(cfg), "enrich-embedded")
    c.clear()
    again = c.run(cfg)
    _assert_crm_kept_in_master(c, again, "enrich-embedded")
    assert again.actions == [] and c.no_writes(), c.writes()
    # erp is not held by it: it moved as usual
    assert "erp-out" in ids(c.slaves["s2"], "pipes")


def test_a_pipe_becoming_unplaceable_brings_the_system_back_to_the_master(nodes):
    c = _cluster(nodes, [])
    cfg = c.placed()
    s1 = c.slaves["s1"]
    assert "crm" in ids(s1, "systems") and meta(original(c.master, "systems", "crm"))
    # The user adds a pipe that reads crm (moved to s1) and calls erp (on s2) in a transform.
    bridge = {"_id": "crm-via-erp", "type": "pipe",
              "source": {"type": "json", "system": "crm", "url": "people"},
              "transform": {"type": "http", "system": "erp", "url": "x"}}
    assert c.master.api("POST", "/pipes", [bridge])[0] in (200, 201)
    report = c.run(cfg)
    _assert_crm_kept_in_master(c, report, "crm-via-erp")
    assert any(e.startswith("system erp: stays in the master") for e in report.errors)
    assert original(c.master, "systems", "erp") == c.systems[1]
    assert original(c.master, "pipes", "crm-via-erp") == bridge
    for p in c.pipes:
        assert the_original(c.master, "pipes", p["_id"]) == p
    assert ids(c.slaves["s2"], "pipes") == set() and ids(s1, "pipes") == set()


def test_systems_used_reads_every_place_a_pipe_can_name_a_system():
    pipe = {"_id": "p", "type": "pipe",
            "source": {"type": "conditional", "condition": "$ENV(stage)", "alternatives": {
                "prod": {"type": "sql", "system": "oracle"},
                "test": {"type": "embedded", "entities": []}}},
            "transform": [{"type": "dtl", "rules": {"default": [["add", "system", "not-one"]]}},
                          {"type": "rest", "system": "$ENV(rest-system)", "operation": "get"}],
            "sink": {"type": "json", "system": "erp", "url": "x"}}
    env = {"stage": "prod", "rest-system": "api"}
    assert systems_used(pipe, env) == {"oracle", "api", "erp"}
    # the alternative in force only; every alternative when the condition names none
    assert systems_used(pipe, {**env, "stage": "test"}) == {"api", "erp"}
    assert systems_used(pipe, {**env, "stage": "other"}) == {"oracle", "api", "erp"}
    # an env var that cannot be read leaves the name as it is: never a managed system id
    assert systems_used(pipe, {"stage": "prod"}) == {"oracle", "$ENV(rest-system)", "erp"}
    # a dataset pipe names no system (merge sources name datasets only)
    merge = {"_id": "m", "source": {"type": "merge", "datasets": ["a A", "b B"]}}
    assert systems_used(merge, env) == frozenset()


# --- adversarial review (breaker) ---

LOOKUP = {"_id": "lookup", "type": "system:url", "base_url": "http://127.0.0.1:9/"}


def test_a_pipe_also_calling_a_master_only_system_never_leaves_the_master_reading_a_slave(nodes):
    """An inbound pipe of crm that also calls `lookup`, a system no slave manages, in an http
    transform. Its copy needs `lookup` on s1, which the orchestrator never puts there: s1
    refuses the copy. Whatever the run does, no user pipe in the master may be left reading
    crm once crm reads s1's datasets, and the pipe's original is kept."""
    enriched = {"_id": "crm-enriched", "type": "pipe",
                "source": {"type": "json", "system": "crm", "url": "people"},
                "transform": {"type": "http", "system": "lookup", "url": "x"}}
    c = Cluster(nodes, seed=False)
    c.master.seed(systems=[*c.systems, LOOKUP], pipes=[*c.pipes, enriched], env={"region": "eu"})
    cfg = c.config()
    report = c.run(cfg)
    assert any("crm-enriched" in e for e in report.errors), report.errors
    assert the_original(c.master, "pipes", "crm-enriched") == enriched
    _no_master_pipe_calls_a_slave(c)
    # and every run says so again, with nothing written
    c.clear()
    again = c.run(cfg)
    assert any("crm-enriched" in e for e in again.errors), again.errors
    _no_master_pipe_calls_a_slave(c)
