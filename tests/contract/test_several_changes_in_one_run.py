"""Several systems and pipes changing in one run: two systems swapping slaves, a pipe whose
source and sink systems both move and then split, a system renamed in the master, three
slaves rotating systems whose dataset names cross. Every real run does what its dry run on
the same state planned, and the last run plans and writes nothing.
"""
from __future__ import annotations

import pytest

from contract_helpers import (CRM_PIPES, Cluster, assert_steady, cannot_run, copy_in, dataset_ids,
                              disabled, ids, meta, original, pipe_runtime, put, run_as_planned,
                              start_pipe, the_original)


ORDERS_OUT = {"_id": "orders-out", "type": "pipe",
              "source": {"type": "dataset", "dataset": "orders"},
              "sink": {"type": "json", "system": "erp", "url": "orders"}}
BRIDGE = {"_id": "crm-to-erp", "type": "pipe", "source": {"type": "json", "system": "crm", "url": "people"},
          "sink": {"type": "json", "system": "erp", "url": "people"}}


# An attack from review round 4, survived.
def test_two_systems_swap_slaves_with_a_chained_outbound_pipe(nodes):
    # crm (s1) writes `orders`; orders-out sends `orders` to erp (s2) through a feeder.
    # Swapping the two systems makes s2 write `orders` itself (no feeder) and s1 need one.
    c = Cluster(nodes, seed=False)
    c.master.seed(systems=c.systems, pipes=[*c.pipes, ORDERS_OUT])
    first = c.config({"s1": ["crm"], "s2": ["erp"]})
    run_as_planned(c, first)
    s1, s2 = c.slaves["s1"], c.slaves["s2"]
    assert "orchestrator-feed-orders" in ids(s2, "pipes")
    c.sync(s1)
    start_pipe(s2, "orchestrator-feed-orders")
    swapped = c.config({"s1": ["erp"], "s2": ["crm"]})
    c.clear()
    run_as_planned(c, swapped)
    assert ids(s1, "systems") == {"erp", "orchestrator-master"}
    assert ids(s2, "systems") == {"crm"}
    assert ids(s1, "pipes") == {"erp-out", "orders-out", "orchestrator-feed-local-data",
                                "orchestrator-feed-orders"}
    assert ids(s2, "pipes") == set(CRM_PIPES)
    for pid in CRM_PIPES:
        assert meta(original(c.master, "pipes", pid))["slave"] == "s2"
        assert pipe_runtime(c.master, pid)["last-seen"] in (None, "")     # reset
    assert s2.url in original(c.master, "systems", "crm")["url_pattern"]
    # s1 lost crm only after the master's crm pointed at s2
    order = c.global_writes()
    put_crm = next(i for i, w in enumerate(order)
                   if w[0] == "master" and w[1] == "PUT" and w[2] == "/api/systems/crm/config")
    del_crm = next(i for i, w in enumerate(order)
                   if w[0] == "s1" and w[1] == "DELETE" and w[2] == "/api/systems/crm")
    assert put_crm < del_crm
    # the data flows from the new place
    for pid in CRM_PIPES:
        start_pipe(s2, pid)
    start_pipe(c.master, "crm-order")
    assert {e["_id"] for e in c.master.api("GET", "/datasets/orders/entities")[1]} == {"o1"}
    assert_steady(c, swapped)


# An attack from review round 4, survived.
def test_a_pipe_whose_source_and_sink_systems_both_move_then_split(nodes):
    c = Cluster(nodes, seed=False, slaves=("s1", "s2", "s3"))
    c.master.seed(systems=c.systems, pipes=[*c.pipes, BRIDGE])
    together = c.config({"s1": ["crm", "erp"]})
    run_as_planned(c, together)
    s1, s2, s3 = (c.slaves[s] for s in ("s1", "s2", "s3"))
    assert copy_in(s1, "pipes", "crm-to-erp") == BRIDGE
    assert cannot_run(c.master, "crm-to-erp") and not disabled(s1, "crm-to-erp")
    # both systems move to s2 in one run
    both = c.config({"s1": [], "s2": ["crm", "erp"]})
    c.clear()
    run_as_planned(c, both)
    assert copy_in(s2, "pipes", "crm-to-erp") == BRIDGE and not disabled(s2, "crm-to-erp")
    assert "crm-to-erp" not in ids(s1, "pipes") and ids(s1, "systems") == set()
    assert meta(original(c.master, "pipes", "crm-to-erp"))["slave"] == "s2"
    assert_steady(c, both)
    # then they split: the pipe cannot be placed; it must run in exactly one place (the
    # master, with its original) and the error shows on every run
    split = c.config({"s2": ["crm"], "s3": ["erp"]})
    report = run_as_planned(c, split, outcome="failed")
    assert any("crm-to-erp" in e for e in report.errors)
    assert original(c.master, "pipes", "crm-to-erp") == BRIDGE
    assert not disabled(c.master, "crm-to-erp")
    assert "crm-to-erp" not in ids(s2, "pipes") | ids(s3, "pipes")
    plan = c.run(split, dry_run=True)
    assert plan.actions == [] and any("crm-to-erp" in e for e in plan.errors)
    c.clear()
    again = c.run(split)
    assert again.actions == [] and c.no_writes() and again.outcome == "failed"


# An attack from review round 4, survived.
@pytest.mark.parametrize("to", ["s1", "s2"])
def test_a_system_renamed_in_the_master_moves_under_its_new_name(nodes, to):
    c = Cluster(nodes)
    run_as_planned(c, c.config({"s1": ["crm"], "s2": ["erp"]}))
    s1 = c.slaves["s1"]
    c.sync(s1)
    # The user renames crm to crm2: uploads crm2 and the pipes using it, deletes crm.
    crm2 = {**c.systems[0], "_id": "crm2"}
    assert c.master.api("POST", "/systems", [crm2])[0] in (200, 201)
    renamed = {}
    for p in c.pipes[:2]:
        renamed[p["_id"]] = {**p, "source": {**p["source"], "system": "crm2"}}
        put(c.master, "pipes", p["_id"], renamed[p["_id"]])
    assert c.master.api("DELETE", "/systems/crm")[0] == 200
    managed = {"s1": ["crm2"], "s2": ["erp"]} if to == "s1" else {"s1": [], "s2": ["erp", "crm2"]}
    cfg = c.config(managed)
    c.clear()
    run_as_planned(c, cfg)
    new = c.slaves[to]
    assert "crm" not in ids(s1, "systems")
    assert copy_in(new, "systems", "crm2") == crm2
    for pid, cfg_ in renamed.items():
        assert copy_in(new, "pipes", pid) == cfg_
        assert the_original(c.master, "pipes", pid) == cfg_
        assert original(c.master, "pipes", pid)["source"]["system"] == "crm2"
    if to == "s2":
        assert not set(CRM_PIPES) & ids(s1, "pipes")
        for pid in CRM_PIPES:
            assert pipe_runtime(c.master, pid)["last-seen"] in (None, "")
    assert_steady(c, cfg)


# An attack from review round 4, survived.
def test_three_slaves_with_crossed_dataset_names_rotate_in_one_run(nodes):
    c = Cluster(nodes, seed=False, slaves=("s1", "s2", "s3"))
    systems = [{**c.systems[0], "_id": sid} for sid in ("a", "b", "g")]
    pipes = [
        # each pipe writes a dataset named like another slave's pipe
        {"_id": "alpha", "type": "pipe", "source": {"type": "json", "system": "a", "url": "people"},
         "sink": {"type": "dataset", "dataset": "beta"}},
        {"_id": "beta", "type": "pipe", "source": {"type": "json", "system": "b", "url": "orders"},
         "sink": {"type": "dataset", "dataset": "alpha"}},
        {"_id": "gamma", "type": "pipe", "source": {"type": "json", "system": "g", "url": "people"}},
        # outbound to g, reading what alpha writes (on another slave: a feeder)
        {"_id": "to-g", "type": "pipe", "source": {"type": "dataset", "dataset": "beta"},
         "sink": {"type": "json", "system": "g", "url": "x"}},
        {"_id": "local", "type": "pipe", "source": {"type": "dataset", "dataset": "alpha"}},
    ]
    c.master.seed(systems=systems, pipes=pipes)
    first = c.config({"s1": ["a"], "s2": ["b"], "s3": ["g"]})
    run_as_planned(c, first)
    s1, s2, s3 = (c.slaves[s] for s in ("s1", "s2", "s3"))
    assert ids(s3, "pipes") == {"gamma", "to-g", "orchestrator-feed-beta"}
    for sid, pid in (("s1", "alpha"), ("s2", "beta"), ("s3", "gamma")):
        start_pipe(c.slaves[sid], pid)
    start_pipe(s3, "orchestrator-feed-beta")
    assert {"beta"} <= dataset_ids(s1) and {"alpha"} <= dataset_ids(s2)
    assert_steady(c, first)
    # rotate: a -> s3 (where to-g reads beta: alpha now writes it there, no feeder),
    # b -> s1, g -> s2 (to-g needs a feeder for beta there)
    rotated = c.config({"s1": ["b"], "s2": ["g"], "s3": ["a"]})
    run_as_planned(c, rotated)
    assert ids(s1, "pipes") == {"beta"} and ids(s1, "systems") == {"b"}
    assert ids(s2, "pipes") == {"gamma", "to-g", "orchestrator-feed-beta"}
    assert ids(s2, "systems") == {"g", "orchestrator-master"}
    assert ids(s3, "pipes") == {"alpha"} and ids(s3, "systems") == {"a"}
    # s1 wrote `beta` for alpha: gone with alpha; s2 wrote `alpha` for beta: gone with beta
    assert "beta" not in dataset_ids(s1)
    assert "alpha" not in dataset_ids(s2)
    for pid, slave in (("alpha", "s3"), ("beta", "s1"), ("gamma", "s2")):
        assert meta(original(c.master, "pipes", pid))["slave"] == slave
    assert_steady(c, rotated)
    # the user deletes alpha from the master: s3 loses it and its dataset `beta`; s2's
    # feeder of the master's `beta` stays (to-g still reads it)
    assert c.master.api("DELETE", "/pipes/alpha")[0] == 200
    run_as_planned(c, rotated)
    assert ids(s3, "pipes") == set() and "beta" not in dataset_ids(s3)
    assert "orchestrator-feed-beta" in ids(s2, "pipes")
    assert_steady(c, rotated)
