"""A write that fails half-way through a move (an HTTP 500, a connection cut before or after
the node acted), a failing chunk of a bulk create, unreadable slaves: no original is lost,
nothing is planned twice, and the next runs finish the move.
"""
from __future__ import annotations

import pytest

from contract_helpers import (CRM_PIPES, HARD, UNREADABLE, Cluster, assert_originals_kept,
                              assert_steady, clear_faults, has_dataset, ids, meta, original,
                              pipe_runtime, run_as_planned, start_pipe, the_original)
from service import orchestrator


MANY = 130
MANY_SYSTEMS = 105


def _big_cluster(nodes):
    c = Cluster(nodes, seed=False)
    systems = [*c.systems] + [{"_id": f"sys-{i:03d}", "type": "system:url",
                               "base_url": "http://127.0.0.1:9/"} for i in range(MANY_SYSTEMS)]
    pipes = [*c.pipes] + [{"_id": f"p-{i:03d}", "type": "pipe",
                           "source": {"type": "json", "system": "crm", "url": "people"},
                           "sink": {"type": "dataset", "dataset": f"d-{i:03d}"}}
                          for i in range(MANY)]
    c.master.seed(systems=systems, pipes=pipes)
    managed = {"s1": ["crm", *[f"sys-{i:03d}" for i in range(MANY_SYSTEMS)]], "s2": ["erp"]}
    return c, systems, pipes, c.config(managed)


# An attack from review round 1, survived.
def test_partial_failure_mid_move_then_the_system_is_unmanaged(nodes):
    c = Cluster(nodes)
    c.placed()
    for pid in CRM_PIPES:
        start_pipe(c.slaves["s1"], pid)
        start_pipe(c.master, pid)
    # the move to s2 breaks on the master's second pipe PUT
    c.master.add_fault(method="PUT", path="^/api/pipes/crm-order/", status=400, times=100)
    report = c.run(c.config({"s1": [], "s2": ["erp", "crm"]}))
    assert report.outcome == "failed"
    assert_originals_kept(c, c.systems, c.pipes)
    assert "crm" in ids(c.slaves["s1"], "systems")        # nothing deleted in A
    c.master.emulator("DELETE", "/faults")
    report = c.run(c.config({"s1": [], "s2": ["erp"]}))   # the operator gives up on crm
    assert report.outcome == "ok", report.errors
    assert original(c.master, "systems", "crm") == c.systems[0]
    for p in c.pipes[:2]:
        assert original(c.master, "pipes", p["_id"]) == p
    for s in c.slaves.values():
        assert "crm" not in ids(s, "systems") and not set(CRM_PIPES) & ids(s, "pipes")
    c.clear()
    assert c.run(c.config({"s1": [], "s2": ["erp"]})).outcome == "ok" and c.no_writes()


# An attack from review round 2, survived.
@pytest.mark.parametrize("fault", [{"status": 500}, {"drop": True}, {"drop_after": True}])
def test_move_back_crash_between_reset_and_restore(nodes, fault):
    c = Cluster(nodes)
    c.synced_on_s1()
    s1 = c.slaves["s1"]
    back = c.config({"s1": [], "s2": ["erp"]})
    # the restoring PUT of crm-person fails (after its reset went through)
    c.master.add_fault(method="PUT", path="^/api/pipes/crm-person/", times=HARD, **fault)
    report = c.run(back)
    assert report.outcome == "failed"
    assert pipe_runtime(c.master, "crm-person")["last-seen"] in (None, "")
    assert "crm-person" in ids(s1, "pipes") and has_dataset(s1, "crm-person")
    assert_originals_kept(c, c.systems, c.pipes)
    clear_faults(c)
    assert c.run(back).outcome == "ok"
    assert original(c.master, "pipes", "crm-person") == c.pipes[0]
    assert not set(CRM_PIPES) & ids(s1, "pipes") and "crm" not in ids(s1, "systems")
    assert_steady(c, back)


# An attack from review round 2, survived.
@pytest.mark.parametrize("fault", [{"status": 500}, {"drop": True}, {"drop_after": True}])
def test_first_move_with_offset_reset_fault_then_converges(nodes, fault):
    c = Cluster(nodes)
    start_pipe(c.master, "crm-person")                 # runs in the master first: an offset
    assert pipe_runtime(c.master, "crm-person")["last-seen"] not in (None, "")
    c.master.add_fault(method="POST", path="^/api/pipes/crm-person/pump$", **fault)
    cfg = c.config()
    assert c.run(cfg).outcome == "failed"
    sync = original(c.master, "pipes", "crm-person")
    assert meta(sync)["reset_pending"] is True                   # the debt is recorded
    assert_originals_kept(c, c.systems, c.pipes)
    clear_faults(c)
    assert c.run(cfg).outcome == "ok"
    assert "reset_pending" not in meta(original(c.master, "pipes", "crm-person"))
    assert pipe_runtime(c.master, "crm-person")["last-seen"] in (None, "")
    assert_steady(c, cfg)


# An attack from review round 2, survived.
@pytest.mark.parametrize("fault", [{"status": 500}, {"drop": True}, {"drop_after": True}])
def test_slave_dataset_delete_fault_keeps_the_pipe_for_the_next_run(nodes, fault):
    c = Cluster(nodes)
    cfg = c.placed()
    s1 = c.slaves["s1"]
    start_pipe(s1, "crm-person")
    assert c.master.api("DELETE", "/pipes/crm-person")[0] == 200
    s1.add_fault(method="DELETE", path="^/api/datasets/crm-person$", times=HARD, **fault)
    c.run(cfg)
    if fault.get("drop_after"):
        assert not has_dataset(s1, "crm-person")
    else:
        assert has_dataset(s1, "crm-person") and "crm-person" in ids(s1, "pipes")
    clear_faults(c)
    assert c.run(cfg).outcome == "ok"
    assert "crm-person" not in ids(s1, "pipes") and not has_dataset(s1, "crm-person")
    assert_steady(c, cfg)


# An attack from review round 3, survived.
@pytest.mark.usefixtures("no_component_planned_twice")
def test_the_scenario_with_unreadable_slaves_and_faults_plans_nothing_twice(nodes):
    from scenarios import FIRST, NEXT, build, holds_every_original, latest_originals
    sc = build(nodes)
    first = latest_originals(sc.master)
    nxt = sc.config(NEXT)
    sc.s2.add_fault(**UNREADABLE)
    assert orchestrator.run(nxt).outcome == "failed"
    sc.s2.emulator("DELETE", "/faults")
    sc.master.add_fault(method="*", path="^/api/pipes/", writes_only=True, skip=2, times=2,
                        status=500)
    orchestrator.run(nxt)
    sc.master.emulator("DELETE", "/faults")
    sc.s1.add_fault(**UNREADABLE)
    orchestrator.run(sc.config(FIRST))           # back, with the old slave s1 unreadable
    sc.s1.emulator("DELETE", "/faults")
    assert orchestrator.run(sc.config(FIRST)).outcome == "ok"
    assert orchestrator.run(sc.config(FIRST)).actions == []
    assert not holds_every_original(sc.master, first)
    assert latest_originals(sc.master) == first


# An attack from review round 4, survived.
@pytest.mark.parametrize("fault", [{"status": 500}, {"drop": True}, {"drop_after": True}])
def test_a_failing_chunk_of_a_bulk_create_over_100_then_converges(nodes, fault):
    c, systems, pipes, cfg = _big_cluster(nodes)
    s1 = c.slaves["s1"]
    # the second bulk POST of pipes (components 101..) fails; so does the second of systems
    s1.add_fault(method="POST", path="^/api/pipes$", skip=1, times=1, **fault)
    s1.add_fault(method="POST", path="^/api/systems$", skip=1, times=1, **fault)
    report = run_as_planned(c, cfg, outcome="failed")
    # Which chunk of systems fails depends on which POST lands first (they go out together),
    # and with it how many pipe chunks become ready; a failed POST is never sent twice.
    posts = [w for w in c.global_writes() if w[:3] == ("s1", "POST", "/api/pipes")]
    assert len(posts) <= 2, posts
    # nothing lost in the master, and no master pipe points at a copy that is not there
    for s in systems:
        assert the_original(c.master, "systems", s["_id"]) == s
    have = ids(s1, "pipes")
    pointing = set()
    for p in pipes:
        assert the_original(c.master, "pipes", p["_id"]) == p
        m = meta(original(c.master, "pipes", p["_id"]))
        if m and m.get("slave") == "s1":
            pointing.add(p["_id"])
    # Which systems chunk fails depends on which POST is answered first. When crm's chunk
    # was answered, its pipes moved (one of their two chunks at least), so the check below
    # is not vacuous; when it failed, none may point at s1.
    crm_done = any(a["kind"] == "create-system" and a["id"] == "crm" and a["status"] == "done"
                   for a in report.actions)
    assert bool(pointing) == crm_done, sorted(pointing)[:5]
    assert pointing <= have, sorted(pointing - have)[:5]
    assert any(a["status"] in ("failed", "skipped") for a in report.actions)
    clear_faults(c)
    run_as_planned(c, cfg)
    assert {f"p-{i:03d}" for i in range(MANY)} <= ids(s1, "pipes")
    assert {f"sys-{i:03d}" for i in range(MANY_SYSTEMS)} <= ids(s1, "systems")
    assert_steady(c, cfg)
