"""Issue 13.1: the orchestrator deletes on a slave only what it put there.

Its copies carry Sesam's config group `orchestrator-<master _id>`; anything else on a slave
(a person's work, another orchestrator's copies) is never updated or deleted, and an id
clash with it is an error for that component. Copies written before the mark existed are
adopted when the master's own markers prove them ours.
"""
from __future__ import annotations

import json
import pytest

from contract_helpers import (CRM_PIPES, YEAR, Cluster, assert_steady, copy_in, has_dataset,
                              ids, meta, original, originals, put, start_pipe, the_original)
from orchestration import OUR_GROUP, writes
from service import orchestrator
from service.config import ConfigError, load_config
from service.core.ownership import ownership
from service.core.snapshots import Component, NodeSnapshot, uses_of

FOREIGN_SYSTEMS = [{"_id": "billing", "type": "system:url", "base_url": "http://127.0.0.1:9/"},
                   {"_id": "ledger", "type": "system:url", "base_url": "http://127.0.0.1:9/"}]
FOREIGN_PIPES = [
    {"_id": "invoices", "type": "pipe", "source": {"type": "embedded", "entities": [{"_id": "i1"}]},
     "sink": {"type": "dataset", "dataset": "invoices"}},
    {"_id": "invoice-report", "type": "pipe", "source": {"type": "dataset", "dataset": "invoices"}},
]


def _someones_work(node) -> None:
    """A node full of someone else's pipes, systems and datasets."""
    node.seed(systems=FOREIGN_SYSTEMS, pipes=FOREIGN_PIPES)
    start_pipe(node, "invoices")
    start_pipe(node, "invoice-report")
    assert has_dataset(node, "invoices") and has_dataset(node, "invoice-report")


def _everything(node) -> tuple:
    status, datasets = node.api("GET", "/datasets")
    assert status == 200
    return originals(node, "pipes"), originals(node, "systems"), sorted(d["_id"] for d in datasets)


def _foreign_warnings(report, slave: str) -> list[str]:
    return [w for w in report.warnings if w.startswith(f"slave {slave} holds ")]


def test_a_slave_with_someone_elses_work_loses_nothing_and_is_reported_once_per_run(nodes):
    c = Cluster(nodes)
    s1 = c.slaves["s1"]
    _someones_work(s1)
    cfg = c.config()
    for _ in range(3):
        report = c.run(cfg)
        assert report.outcome == "ok", report.errors
        assert _foreign_warnings(report, "s1") == [
            "slave s1 holds 4 components the orchestrator did not put there; left alone"]
        for item in FOREIGN_SYSTEMS:
            assert original(s1, "systems", item["_id"]) == item
        for item in FOREIGN_PIPES:
            assert original(s1, "pipes", item["_id"]) == item
        assert has_dataset(s1, "invoices") and has_dataset(s1, "invoice-report")
    # ... and the orchestrator's own work is there as usual, in its config group
    assert copy_in(s1, "systems", "crm") == c.systems[0]
    assert_steady(c, cfg)


def test_an_endpoint_typo_pointing_at_a_production_node_deletes_and_overwrites_nothing(nodes):
    c = Cluster(nodes)
    c.placed()
    production = nodes(jwt_secret="production-key-of-more-than-32-characters")
    _someones_work(production)
    # Production also has its own `crm` system and a pipe named like one of ours.
    their_crm = {"_id": "crm", "type": "system:url", "base_url": "http://127.0.0.1:9/prod"}
    their_pipe = {"_id": "crm-order", "type": "pipe", "source": {"type": "embedded", "entities": []}}
    production.seed(systems=[their_crm], pipes=[their_pipe])
    start_pipe(production, "crm-order")
    production.clear_requests()
    before = _everything(production)
    master_before = (originals(c.master, "pipes"), originals(c.master, "systems"))
    typo = c.config(slave_extra={"s1": {"endpoint": production.url}},
                    tokens={"s1": production.token(expires_in=YEAR)})
    for _ in range(2):
        report = c.run(typo)
        assert report.outcome == "failed"
        assert any(e.startswith("system crm: slave s1 already holds a system with this id")
                   for e in report.errors), report.errors
        assert _foreign_warnings(report, "s1") == [
            "slave s1 holds 6 components the orchestrator did not put there; left alone"]
        assert _everything(production) == before
        # the master still reads crm where it did: nothing pointed at the production node
        assert (originals(c.master, "pipes"), originals(c.master, "systems")) == master_before
    assert [r for r in writes(production.requests()) if r["path"] != "/api/env"] == []


def test_a_foreign_component_with_the_id_of_ours_is_reported_not_overwritten(nodes):
    c = Cluster(nodes)
    s1 = c.slaves["s1"]
    mine = {"_id": "crm-person", "type": "pipe",
            "source": {"type": "embedded", "entities": [{"_id": "mine"}]}}
    s1.seed(pipes=[mine])
    start_pipe(s1, "crm-person")
    cfg = c.config()
    report = c.run(cfg)
    assert report.outcome == "failed"
    assert "pipe crm-person: slave s1 already holds a pipe with this id that the orchestrator " \
           "did not put there; it is left alone, and this one is not placed there" in report.errors
    assert original(s1, "pipes", "crm-person") == mine
    assert has_dataset(s1, "crm-person")
    # the user's pipe stays live in the master, and so does the system it uses (as for any
    # pipe that cannot be placed); erp moved as usual
    assert "system crm: stays in the master, where pipe crm-person uses it; it is not moved " \
           "to slave s1" in report.errors
    assert original(c.master, "pipes", "crm-person") == c.pipes[0]
    assert original(c.master, "systems", "crm") == c.systems[0]
    assert ids(s1, "pipes") == {"crm-person"} and ids(s1, "systems") == set()
    assert copy_in(c.slaves["s2"], "systems", "erp") == c.systems[1]
    c.clear()
    again = c.run(cfg)
    assert again.errors == report.errors and c.no_writes(), c.writes()


def test_a_copy_edited_by_hand_without_the_mark_is_no_longer_ours(nodes):
    c = Cluster(nodes)
    cfg = c.placed()
    s1 = c.slaves["s1"]
    taken = {**c.pipes[1], "description": "taken over by hand"}     # no config group
    put(s1, "pipes", "crm-order", taken)
    report = c.run(cfg)
    assert any(e.startswith("pipe crm-order: slave s1 already holds a pipe") for e in report.errors)
    assert original(s1, "pipes", "crm-order") == taken
    assert meta(original(c.master, "pipes", "crm-order"))["slave"] == "s1"   # left as it was


def _unmarked(node, kind: str, cid: str) -> dict:
    """Take the config group off a copy: what a copy written before the mark looks like."""
    config = original(node, kind, cid)
    assert config["metadata"].pop("$config-group") == OUR_GROUP
    if not config["metadata"]:
        del config["metadata"]
    put(node, kind, cid, config)
    return config


def test_copies_written_before_the_mark_are_adopted_without_a_delete(nodes):
    c = Cluster(nodes)
    cfg = c.placed()
    s1, s2 = c.slaves["s1"], c.slaves["s2"]
    for node in (s1, s2):
        for kind in ("systems", "pipes"):
            for cid in ids(node, kind):
                _unmarked(node, kind, cid)
    assert "orchestrator-feed-local-data" in ids(s2, "pipes")   # a feeder is adopted too
    c.clear()
    report = c.run(cfg)
    assert report.outcome == "ok", report.errors
    assert not [w for w in report.warnings if " holds " in w], report.warnings
    done = c.writes()
    assert [w for node in ("s1", "s2") for w in done[node] if w["method"] == "DELETE"] == []
    assert done["master"] == []
    for node in (s1, s2):
        for kind in ("systems", "pipes"):
            for cid in ids(node, kind):
                assert original(node, kind, cid)["metadata"]["$config-group"] == OUR_GROUP
    assert_steady(c, cfg)


def test_an_adopted_copy_is_cleaned_up_like_any_of_ours(nodes):
    c = Cluster(nodes)
    c.placed()
    s1 = c.slaves["s1"]
    start_pipe(s1, "crm-order")
    _unmarked(s1, "pipes", "crm-order")
    assert c.run(c.config()).outcome == "ok"        # adopted: marked again
    assert c.master.api("DELETE", "/pipes/crm-order")[0] == 200
    c.placed()
    assert "crm-order" not in ids(s1, "pipes") and not has_dataset(s1, "orders")


def test_a_dataset_someone_else_writes_or_reads_survives_the_removal_of_our_pipe(nodes):
    c = Cluster(nodes)
    c.placed()
    s1 = c.slaves["s1"]
    start_pipe(s1, "crm-order")
    reader = {"_id": "orders-archive", "type": "pipe", "source": {"type": "dataset", "dataset": "orders"}}
    s1.seed(pipes=[reader])
    assert c.master.api("DELETE", "/pipes/crm-order")[0] == 200
    report = c.run(c.config())
    assert report.outcome == "ok", report.errors
    assert "crm-order" not in ids(s1, "pipes")      # ours: removed
    assert has_dataset(s1, "orders")                # someone's pipe reads it: kept
    assert original(s1, "pipes", "orders-archive") == reader


def test_a_users_own_config_group_stays_in_the_master_and_the_copy_is_in_ours(nodes):
    c = Cluster(nodes, seed=False)
    grouped = {**c.systems[0], "metadata": {"$config-group": "crm-team", "owner": "ann"}}
    c.master.seed(systems=[grouped, c.systems[1]], pipes=c.pipes)
    cfg = c.placed()
    copy = original(c.slaves["s1"], "systems", "crm")
    assert copy["metadata"] == {"$config-group": OUR_GROUP, "owner": "ann"}
    assert the_original(c.master, "systems", "crm") == grouped
    assert_steady(c, cfg)


# --- two orchestrators, two masters, one shared slave ---

HR = {"_id": "hr", "type": "system:url", "base_url": "http://127.0.0.1:9/"}
HR_PIPE = {"_id": "hr-people", "type": "pipe", "source": {"type": "json", "system": "hr", "url": "p"}}


def _second_master(nodes, shared, *, extra_systems=()):
    other = nodes(jwt_secret="other-master-key-of-more-than-32-characters")
    other.seed(systems=[HR, *extra_systems], pipes=[HR_PIPE])
    managed = ["hr", *(s["_id"] for s in extra_systems)]
    env = {"MASTER_NODE": json.dumps({"_id": "other", "endpoint": other.url,
                                      "jwt_token": other.token(expires_in=YEAR)}),
           "SLAVE_NODES": json.dumps([{"_id": "shared", "endpoint": shared.url,
                                       "jwt_token": shared.token(expires_in=YEAR),
                                       "managed_systems": managed}])}
    return other, load_config(env)


def test_two_masters_share_a_slave_and_never_touch_each_others_components(nodes):
    c = Cluster(nodes)
    s1 = c.slaves["s1"]
    ours = c.config()
    other, theirs = _second_master(nodes, s1)
    for _ in range(3):
        first, second = c.run(ours), orchestrator.run(theirs)
        assert first.outcome == "ok" and second.outcome == "ok", (first.errors, second.errors)
        # each sees the other's copies as another orchestrator's: no warning, no write
        assert not _foreign_warnings(first, "s1") and not _foreign_warnings(second, "shared")
    assert ids(s1, "systems") == {"crm", "hr"}
    assert ids(s1, "pipes") == {*CRM_PIPES, "hr-people"}
    assert original(s1, "systems", "hr")["metadata"]["$config-group"] == "orchestrator-other"
    assert copy_in(s1, "systems", "crm") == c.systems[0]
    for node in (s1, c.master, other):
        node.clear_requests()
    assert c.run(ours).actions == [] and orchestrator.run(theirs).actions == []
    assert not [w for node in (s1, c.master, other) for w in writes(node.requests())]


def test_a_second_master_moving_a_system_the_first_placed_there_gets_an_error(nodes):
    c = Cluster(nodes)
    s1 = c.slaves["s1"]
    ours = c.placed()
    their_crm = {"_id": "crm", "type": "system:url", "base_url": "http://127.0.0.1:9/theirs"}
    _, theirs = _second_master(nodes, s1, extra_systems=[their_crm])
    for _ in range(2):
        report = orchestrator.run(theirs)
        assert report.outcome == "failed"
        assert any(e.startswith("system crm: slave shared already holds a system")
                   for e in report.errors), report.errors
        assert copy_in(s1, "systems", "crm") == c.systems[0]        # the first master's copy
        assert c.run(ours).outcome == "ok"
    assert "hr" in ids(s1, "systems")


def test_identical_configs_on_a_mistyped_endpoint_are_not_adopted(nodes):
    # A production twin holds, unmarked, exactly the configs the master moved to s1: the
    # master's markers name s1's old address, so they prove nothing about this node.
    c = Cluster(nodes)
    c.placed()
    twin = nodes(jwt_secret="twin-node-key-of-more-than-32-characters")
    twin.seed(systems=[c.systems[0]], pipes=[c.pipes[0], c.pipes[1]])
    twin.clear_requests()
    before = _everything(twin)
    typo = c.config(slave_extra={"s1": {"endpoint": twin.url}},
                    tokens={"s1": twin.token(expires_in=YEAR)})
    report = c.run(typo)
    assert any(e.startswith("system crm: slave s1 already holds a system") for e in report.errors)
    assert _everything(twin) == before
    assert [r for r in writes(twin.requests()) if r["path"] != "/api/env"] == []


def test_a_second_master_needing_a_feeder_on_a_shared_slave_gets_an_error(nodes):
    # The feeder system's id is fixed: only one master can feed a slave.
    c = Cluster(nodes)
    s2 = c.slaves["s2"]
    ours = c.placed()
    feeder_system = original(s2, "systems", "orchestrator-master")
    other = nodes(jwt_secret="other-master-key-of-more-than-32-characters")
    hr_out = {"_id": "hr-out", "type": "pipe", "source": {"type": "dataset", "dataset": "staff"},
              "sink": {"type": "json", "system": "hr", "url": "x"}}
    other.seed(systems=[HR], pipes=[HR_PIPE, hr_out])
    theirs = load_config({
        "MASTER_NODE": json.dumps({"_id": "other", "endpoint": other.url,
                                   "jwt_token": other.token(expires_in=YEAR)}),
        "SLAVE_NODES": json.dumps([{"_id": "s2", "endpoint": s2.url,
                                    "jwt_token": s2.token(expires_in=YEAR),
                                    "managed_systems": ["hr"]}])})
    report = orchestrator.run(theirs)
    assert report.outcome == "failed"
    assert any(e.startswith("system orchestrator-master: slave s2 already holds a system")
               and "staff" in e for e in report.errors), report.errors
    assert original(s2, "systems", "orchestrator-master") == feeder_system
    assert "orchestrator-feed-staff" not in ids(s2, "pipes")
    assert c.run(ours).outcome == "ok"


# --- the ownership rule itself, on snapshots ---

def _snap(node_id, systems=(), pipes=()):
    def comp(cfg):
        return Component.using(cfg["_id"], cfg, uses_of(cfg["_id"], cfg))
    return NodeSnapshot(node_id=node_id, systems={s["_id"]: comp(s) for s in systems},
                        pipes={p["_id"]: comp(p) for p in pipes}, env={}, secrets=frozenset())


PURE = load_config({
    "MASTER_NODE": json.dumps({"_id": "m", "endpoint": "https://m.example", "jwt_token": "t"}),
    "SLAVE_NODES": json.dumps([{"_id": "s1", "endpoint": "https://s1.example", "jwt_token": "t",
                                "managed_systems": ["crm"]}])})


def test_the_ownership_rule_on_snapshots():
    crm = {"_id": "crm", "type": "system:url", "base_url": "http://x/"}
    moved = {"_id": "crm", "type": "system:url", "metadata": {"orchestrator": {
        "slave": "s1", "url": "https://s1.example/api/systems/crm", "original_configuration": crm}}}
    master = _snap("m", systems=[moved], pipes=[{"_id": "p", "type": "pipe"}])
    feeder = {"_id": "orchestrator-feed-d", "type": "pipe",
              "metadata": {"orchestrator": {"feeder": True, "master": "https://m.example"}}}
    elsewhere = {**feeder, "_id": "orchestrator-feed-e",
                 "metadata": {"orchestrator": {"feeder": True, "master": "https://other.example"}}}
    theirs = {**feeder, "_id": "orchestrator-feed-f",
              "metadata": {**feeder["metadata"], "$config-group": "orchestrator-other"}}
    marked = {"_id": "q", "type": "pipe", "metadata": {"$config-group": "orchestrator-m"}}
    person = {"_id": "r", "type": "pipe"}
    slave = _snap("s1", systems=[crm], pipes=[feeder, elsewhere, theirs, marked, person])
    found = ownership(PURE, master, "s1", slave)
    assert found.ours == {("systems", "crm"), ("pipes", "orchestrator-feed-d"), ("pipes", "q")}
    assert found.foreign == {("pipes", "orchestrator-feed-e"), ("pipes", "orchestrator-feed-f"),
                             ("pipes", "r")}
    assert found.unmarked == 2          # another orchestrator's is not counted
    # the same copy, differing from the recorded original by one field: not provable
    edited = _snap("s1", systems=[{**crm, "base_url": "http://y/"}])
    assert ownership(PURE, master, "s1", edited).foreign == {("systems", "crm")}


# An attack from review round 1, survived.
def test_system_prefixed_components_on_master_and_slaves_are_never_touched(nodes):
    c = Cluster(nodes)
    s1 = c.slaves["s1"]
    sys_pipe = {"_id": "system:my-pipe", "type": "pipe",
                "source": {"type": "json", "system": "crm", "url": "people"}}
    # Their default sinks write 'system:' datasets, which a node accepts only when forced.
    c.master.seed(pipes=[sys_pipe], force=True)
    s1.seed(pipes=[{"_id": "system:local", "type": "pipe"}], force=True)
    c.placed()
    assert original(c.master, "pipes", "system:my-pipe") == sys_pipe
    assert "system:my-pipe" not in {p for p in originals(s1, "pipes")}
    assert original(s1, "pipes", "system:local") == {"_id": "system:local", "type": "pipe"}
    with pytest.raises(ConfigError, match=r"SLAVE_NODES\[0\]\.managed_systems"):
        c.config({"s1": ["system:sesam-node"]})
