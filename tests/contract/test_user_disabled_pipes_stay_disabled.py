"""A pipe the user disabled stays disabled wherever it runs: on its first move, between
slaves, back in the master, through a failed disable on the new slave and a re-upload; one
the user enables and uploads again runs on the slave.
"""
from __future__ import annotations

import pytest

from contract_helpers import (CRM_PIPES, HARD, Cluster, assert_steady, cannot_run, clear_faults,
                              copy_in, disabled, ids, meta, original, pipe_runtime, pump, pump_mode,
                              put, run_as_planned, the_original)


# Found in review round 1 (fixed since).
def test_user_disabled_outbound_pipe_stays_disabled_after_move_back(nodes):
    c = Cluster(nodes)
    assert c.master.api("POST", "/pipes/erp-out/pump", {"operation": "disable"})[0] == 200
    assert pipe_runtime(c.master, "erp-out")["is-disabled"] is True
    c.placed()
    report = c.run(c.config({"s1": ["crm"], "s2": []}))       # erp moves back
    assert report.outcome == "ok", report.errors
    assert original(c.master, "pipes", "erp-out") == c.pipes[5]
    assert pipe_runtime(c.master, "erp-out")["is-disabled"] is True


# Found in review round 2 (fixed since).
def test_user_disabled_outbound_pipe_is_disabled_on_the_slave(nodes):
    c = Cluster(nodes)
    assert c.master.api("POST", "/pipes/erp-out/pump", {"operation": "disable"})[0] == 200
    c.placed()
    assert copy_in(c.slaves["s2"], "pipes", "erp-out") == c.pipes[5]
    assert pipe_runtime(c.slaves["s2"], "erp-out")["is-disabled"] is True


# Found in review round 3 (fixed since).
@pytest.mark.usefixtures("no_component_planned_twice")
def test_user_enables_and_reuploads_a_disabled_pipe_and_it_runs_on_the_slave(nodes):
    c = Cluster(nodes)
    pump(c.master, "crm-person", "disable")
    cfg = c.placed()
    s1 = c.slaves["s1"]
    assert disabled(s1, "crm-person")
    assert meta(original(c.master, "pipes", "crm-person"))["disabled"] is True
    # README: "To run it, enable it and upload it again (which makes it a new original)."
    pump(c.master, "crm-person", "enable")
    put(c.master, "pipes", "crm-person", c.pipes[0])
    assert c.run(cfg).outcome == "ok"
    assert not meta(original(c.master, "pipes", "crm-person")).get("disabled")
    assert not disabled(s1, "crm-person")
    assert_steady(c, cfg)


# An attack from review round 3, survived.
@pytest.mark.usefixtures("no_component_planned_twice")
def test_user_disabled_pipe_stays_disabled_through_a_move_between_slaves_and_back(nodes):
    c = Cluster(nodes)
    pump(c.master, "crm-order", "disable")
    c.placed()
    s1, s2 = c.slaves["s1"], c.slaves["s2"]
    assert disabled(s1, "crm-order") and not disabled(s1, "crm-person")
    moved = c.placed({"s1": [], "s2": ["erp", "crm"]})
    assert disabled(s2, "crm-order") and not disabled(s2, "crm-person")
    assert meta(original(c.master, "pipes", "crm-order"))["disabled"] is True
    assert_steady(c, moved)
    back = c.placed({"s2": ["erp"]})
    assert original(c.master, "pipes", "crm-order") == c.pipes[1]
    assert disabled(c.master, "crm-order")
    assert not set(CRM_PIPES) & ids(s2, "pipes")
    assert_steady(c, back)


# An attack from review round 3, survived.
@pytest.mark.usefixtures("no_component_planned_twice")
@pytest.mark.parametrize("fault", [{"status": 500}, {"drop": True}])
def test_disabled_flag_survives_a_failed_disable_on_the_new_slave(nodes, fault):
    c = Cluster(nodes)
    pump(c.master, "crm-order", "disable")
    c.placed()
    s2 = c.slaves["s2"]
    moved = c.config({"s1": [], "s2": ["erp", "crm"]})
    # created on s2, then its disable fails (the crash between create and disable): the
    # copy was created in `manual` mode, so it is never scheduled while not yet disabled
    s2.add_fault(method="POST", path="^/api/pipes/crm-order/pump$", times=HARD, **fault)
    assert c.run(moved).outcome == "failed"
    assert pump_mode(s2, "crm-order") == "manual" and not disabled(s2, "crm-order")
    assert the_original(c.master, "pipes", "crm-order") == c.pipes[1]
    clear_faults(c)
    assert c.run(moved).outcome == "ok"
    assert disabled(s2, "crm-order")
    assert_steady(c, moved)


# An attack from review round 3, survived.
@pytest.mark.usefixtures("no_component_planned_twice")
def test_first_move_of_a_disabled_pipe_with_a_failed_slave_disable_converges(nodes):
    c = Cluster(nodes)
    pump(c.master, "erp-out", "disable")
    s2 = c.slaves["s2"]
    s2.add_fault(method="POST", path="^/api/pipes/erp-out/pump$", status=500, times=HARD)
    cfg = c.config()
    assert c.run(cfg).outcome == "failed"
    assert not disabled(s2, "erp-out") and pump_mode(s2, "erp-out") == "manual"   # not scheduled
    clear_faults(c)
    assert c.run(cfg).outcome == "ok"
    assert disabled(s2, "erp-out")
    assert meta(original(c.master, "pipes", "erp-out"))["disabled"] is True
    assert_steady(c, cfg)
    back = c.placed({"s1": ["crm"]})
    assert original(c.master, "pipes", "erp-out") == c.pipes[5]
    assert disabled(c.master, "erp-out")       # the user's choice, not our placeholder's
    assert_steady(c, back)


# An attack from review round 3, survived.
@pytest.mark.usefixtures("no_component_planned_twice")
def test_user_disabled_outbound_pipe_reuploaded_while_still_disabled_stays_disabled(nodes):
    c = Cluster(nodes)
    pump(c.master, "erp-out", "disable")
    cfg = c.placed()
    s2 = c.slaves["s2"]
    assert disabled(s2, "erp-out")
    edited = {**c.pipes[5], "description": "edited, still disabled"}
    put(c.master, "pipes", "erp-out", edited)
    assert c.run(cfg).outcome == "ok"
    assert copy_in(s2, "pipes", "erp-out") == edited and disabled(s2, "erp-out")
    assert meta(original(c.master, "pipes", "erp-out"))["disabled"] is True
    back = c.placed({"s1": ["crm"], "s2": []})
    assert original(c.master, "pipes", "erp-out") == edited and disabled(c.master, "erp-out")
    assert_steady(c, back)


# Found in review round 4 (fixed since).
def test_user_enables_and_reuploads_a_disabled_outbound_pipe_and_it_runs_on_the_slave(nodes):
    # README: to run it, upload it again (a new original) and enable it. The placeholder
    # itself cannot be enabled: its pump is off.
    c = Cluster(nodes)
    assert c.master.api("POST", "/pipes/erp-out/pump", {"operation": "disable"})[0] == 200
    cfg = c.config()
    run_as_planned(c, cfg)
    s2 = c.slaves["s2"]
    assert disabled(s2, "erp-out")
    assert meta(original(c.master, "pipes", "erp-out"))["disabled"] is True
    assert c.master.api("POST", "/pipes/erp-out/pump", {"operation": "enable"})[0] == 400
    put(c.master, "pipes", "erp-out", c.pipes[5])
    assert c.master.api("POST", "/pipes/erp-out/pump", {"operation": "enable"})[0] == 200
    run_as_planned(c, cfg)
    assert not meta(original(c.master, "pipes", "erp-out")).get("disabled")
    assert not disabled(s2, "erp-out")
    assert cannot_run(c.master, "erp-out")        # the placeholder never runs
    assert_steady(c, cfg)
