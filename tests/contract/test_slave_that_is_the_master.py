"""Adversarial review: a slave endpoint that reaches the master under another name.

Configuration checks compare endpoints as text, so `http://localhost:P` for a slave and
`http://127.0.0.1:P` for the master pass. A slave copy is the orchestrator's only when it
carries its config group, so the master seen as a slave loses nothing; two slave entries
that are one node still do (strict xfail below).
"""
from __future__ import annotations

import json

import pytest

from contract_helpers import Cluster, has_dataset, ids
from service.config import ConfigError, load_config


# Survived since copies carry the orchestrator's config group: nothing of the master's own
# is in it, so nothing there is the orchestrator's to delete.
def test_a_slave_that_is_the_master_under_another_name_deletes_nothing(nodes):
    c = Cluster(nodes, slaves=("s2",))
    c.master.run_pipe("local-data")
    alias = c.master.url.replace("127.0.0.1", "localhost")
    env = c.environ({"s2": ["erp"]})
    slaves = json.loads(env["SLAVE_NODES"]) + [
        {"_id": "s1", "endpoint": alias, "jwt_token": c.tokens["master"],
         "managed_systems": ["crm"]}]
    cfg = load_config({**env, "SLAVE_NODES": json.dumps(slaves)})
    before = ids(c.master, "pipes")
    c.clear()
    c.run(cfg)
    deletes = [w for w in c.global_writes() if w[1] == "DELETE"]
    assert not deletes, deletes
    assert ids(c.master, "pipes") == before and has_dataset(c.master, "local-data")


@pytest.mark.xfail(strict=True, reason=(
    "data loss: two slave entries reaching one node under two host names pass the text "
    "comparison; each slave's cleanup deletes what the other placed there (its copies and "
    "their datasets), every run. Same root cause: no node identity is compared"))
def test_two_slaves_that_are_one_node_under_two_names_delete_nothing(nodes):
    c = Cluster(nodes, slaves=("s1",))
    one = c.slaves["s1"]
    env = c.environ({"s1": ["crm"]})
    slaves = json.loads(env["SLAVE_NODES"]) + [
        {"_id": "s2", "endpoint": one.url.replace("127.0.0.1", "localhost"),
         "jwt_token": c.tokens["s1"], "managed_systems": ["erp"]}]
    cfg = load_config({**env, "SLAVE_NODES": json.dumps(slaves)})
    c.run(cfg)
    c.sync(one)
    c.clear()
    c.run(cfg)
    deletes = [w for w in c.global_writes() if w[1] == "DELETE"]
    assert not deletes, deletes


# Found in review round 1 (fixed since).
def test_slave_endpoint_equal_to_the_masters_deletes_nothing_in_the_master(nodes):
    c = Cluster(nodes)
    env = c.environ({"s1": ["crm"], "s2": []})
    slaves = json.loads(env["SLAVE_NODES"])
    slaves[1]["endpoint"] = c.master.url + "/api/"
    slaves[1]["jwt_token"] = c.tokens["master"]
    env["SLAVE_NODES"] = json.dumps(slaves)
    # Refused up front, with one line naming the field: no run can treat the master as a slave.
    with pytest.raises(ConfigError, match=r"^SLAVE_NODES\[1\]\.endpoint: is the endpoint of "
                                          "MASTER_NODE"):
        load_config(env)
    assert ids(c.master, "pipes") == {p["_id"] for p in c.pipes}
    assert ids(c.master, "systems") == {"crm", "erp"}
