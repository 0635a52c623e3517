"""A slave that cannot be read during a move: nothing the master still reads is deleted
there, a pipe that cannot move yet keeps running (or stays a placeholder) with the dataset it
reads, and once the slave answers the runs converge.
"""
from __future__ import annotations

import pytest

from contract_helpers import (CRM_PIPES, HARD, UNREADABLE, Cluster, assert_steady, cannot_run,
                              clear_faults, copy_in, disabled, has_dataset, ids, meta, original,
                              put, start_pipe)


# Found in review round 2 (fixed since).
def test_half_done_move_then_new_slave_unreadable_deletes_nothing_the_master_reads(nodes):
    c = Cluster(nodes)
    c.synced_on_s1()
    s1, s2 = c.slaves["s1"], c.slaves["s2"]
    moved = c.config({"s1": [], "s2": ["erp", "crm"]})
    # the master's system rewrite fails; the pipes are rewritten (flagged) all the same
    c.master.add_fault(method="PUT", path="^/api/systems/crm/", status=400, times=1000)
    assert c.run(moved).outcome == "failed"
    assert meta(original(c.master, "systems", "crm"))["slave"] == "s1"
    assert meta(original(c.master, "pipes", "crm-person"))["slave"] == "s2"
    clear_faults(c)
    s2.add_fault(**UNREADABLE)
    report = c.run(moved)
    assert report.outcome == "failed"
    # The master's crm still reads s1's datasets: nothing of crm may go from s1 yet (5).
    assert meta(original(c.master, "systems", "crm"))["slave"] == "s1"
    assert set(CRM_PIPES) <= ids(s1, "pipes")
    assert has_dataset(s1, "crm-person") and has_dataset(s1, "orders")


# Found in review round 3 (fixed since).
@pytest.mark.usefixtures("no_component_planned_twice")
def test_kept_outbound_pipe_keeps_the_dataset_it_reads_on_its_slave(nodes):
    c = Cluster(nodes, seed=False, slaves=("s1", "s2", "s3"))
    out = {"_id": "person-out", "type": "pipe",
           "source": {"type": "dataset", "dataset": "crm-person"},
           "sink": {"type": "json", "system": "erp", "url": "people"}}
    c.master.seed(systems=c.systems, pipes=[*c.pipes, out])
    c.placed({"s1": ["crm", "erp"]})
    s1 = c.slaves["s1"]
    assert "orchestrator-feed-crm-person" not in ids(s1, "pipes")   # s1 writes it itself
    start_pipe(s1, "crm-person")
    assert has_dataset(s1, "crm-person")
    # crm moves to s2; erp to s3, which does not answer: person-out is kept on s1
    c.slaves["s3"].add_fault(**UNREADABLE)
    c.run(c.config({"s1": [], "s2": ["crm"], "s3": ["erp"]}))
    assert copy_in(s1, "pipes", "person-out") == out
    # what the kept pipe reads must still be there (or be fed)
    assert has_dataset(s1, "crm-person")


# An attack from review round 3, survived.
@pytest.mark.usefixtures("no_component_planned_twice")
def test_blocked_move_with_a_user_reupload_keeps_the_old_copy_and_converges(nodes):
    c = Cluster(nodes)
    c.placed()
    s1, s2 = c.slaves["s1"], c.slaves["s2"]
    start_pipe(s1, "crm-person")
    edited = {**c.pipes[0], "description": "edited while s2 is down"}
    put(c.master, "pipes", "crm-person", edited)
    s2.add_fault(**UNREADABLE)
    moved = c.config({"s1": [], "s2": ["erp", "crm"]})
    c.clear()
    assert c.run(moved).outcome == "failed"
    assert not c.writes()["master"]
    assert original(c.master, "pipes", "crm-person") == edited     # nothing lost
    assert copy_in(s1, "pipes", "crm-person") == c.pipes[0]
    assert has_dataset(s1, "crm-person") and "crm" in ids(s1, "systems")
    clear_faults(c)
    assert c.run(moved).outcome == "ok"
    assert copy_in(s2, "pipes", "crm-person") == edited
    assert ids(s1, "pipes") == set() and not has_dataset(s1, "crm-person")
    assert_steady(c, moved)


# An attack from review round 3, survived.
@pytest.mark.usefixtures("no_component_planned_twice")
def test_outbound_pipe_stays_a_placeholder_while_its_slave_is_down(nodes):
    # erp is given up while s2 (where erp-out pushes to erp) cannot be read: restoring
    # erp-out in the master now would make two writers to erp, the copy in s2 still running.
    c = Cluster(nodes)
    c.placed()
    back = c.config({"s1": ["crm"], "s2": []})
    c.slaves["s2"].add_fault(method="GET", path="^/api/pipes$", status=401, times=HARD)
    assert c.run(back).outcome == "failed"
    assert meta(original(c.master, "pipes", "erp-out")) is not None      # still our placeholder
    assert cannot_run(c.master, "erp-out")
    clear_faults(c)
    assert c.run(back).outcome == "ok"                                    # s2 answers again
    assert original(c.master, "pipes", "erp-out") == c.pipes[5]
    assert not disabled(c.master, "erp-out") and "erp-out" not in ids(c.slaves["s2"], "pipes")
    assert_steady(c, back)
