"""While the master's env cannot be read, a pipe naming its system through `$ENV(..)` cannot
be judged: it stays where it runs, with what it reads and the feeders it needs, and nothing
is written on its account; once the env is readable again the runs converge (contract 2).
"""
from __future__ import annotations


from contract_helpers import (CRM_PIPES, ENV_403, UNREADABLE, Cluster, assert_originals_kept,
                              assert_steady, clear_faults, copy_in, dataset_ids, entities,
                              has_dataset, ids, meta, node_state, original, pipe_runtime,
                              start_pipe)
from orchestration import originals


VIA_ENV = {"_id": "env-person", "type": "pipe",
           "source": {"type": "json", "system": "$ENV(crm-system)", "url": "people"}}


# Found in review round 1 (fixed since).
def test_master_env_unreadable_does_not_move_env_named_pipes_back(nodes):
    c = Cluster(nodes, seed=False)
    via_env = {"_id": "env-person", "type": "pipe",
               "source": {"type": "json", "system": "$ENV(crm-system)", "url": "people"}}
    c.master.seed(env={"crm-system": "crm"}, systems=c.systems, pipes=[*c.pipes, via_env])
    cfg = c.placed()
    s1 = c.slaves["s1"]
    start_pipe(s1, "env-person")
    assert has_dataset(s1, "env-person")
    before = node_state(s1)
    c.master.add_fault(method="GET", path="^/api/env$", status=403, times=100)
    report = c.run(cfg)
    assert any("env" in w for w in report.warnings), report.warnings
    assert node_state(s1) == before
    assert meta(original(c.master, "pipes", "env-person"))["slave"] == "s1"


# Found in review round 2 (fixed since).
def test_env_unreadable_system_moves_untouched_pipe_keeps_its_system(nodes):
    c = Cluster(nodes, seed=False)
    c.master.seed(env={"crm-system": "crm"}, systems=c.systems, pipes=[*c.pipes, VIA_ENV])
    c.placed()
    s1 = c.slaves["s1"]
    start_pipe(s1, "env-person")
    start_pipe(c.master, "env-person")
    c.master.add_fault(**ENV_403)
    report = c.run(c.config({"s1": [], "s2": ["erp", "crm"]}))
    assert any("env-person" in w for w in report.warnings)
    assert copy_in(s1, "pipes", "env-person") == VIA_ENV           # kept: cannot be judged
    # ... and so is what it reads through: a kept pipe whose system is gone is dead, while
    # the master's sync pipe (source system crm) now reads s2, which has no env-person.
    assert copy_in(s1, "systems", "crm") == c.systems[0]


# Found in review round 2 (fixed since).
def test_env_unreadable_no_feeder_for_a_dataset_an_untouched_pipe_writes(nodes):
    c = Cluster(nodes, seed=False)
    erp_in = {"_id": "erp-in", "type": "pipe",
              "source": {"type": "json", "system": "$ENV(erp-sys)", "url": "x"},
              "sink": {"type": "dataset", "dataset": "erp-data"}}
    erp_back = {"_id": "erp-back", "type": "pipe",
                "source": {"type": "dataset", "dataset": "erp-data"},
                "sink": {"type": "json", "system": "erp", "url": "y"}}
    c.master.seed(env={"erp-sys": "erp"}, systems=c.systems,
                  pipes=[*c.pipes, erp_in, erp_back])
    cfg = c.placed()
    s2 = c.slaves["s2"]
    assert copy_in(s2, "pipes", "erp-in") == erp_in
    assert "orchestrator-feed-erp-data" not in ids(s2, "pipes")      # s2 writes erp-data itself
    c.master.add_fault(**ENV_403)
    c.clear()
    c.run(cfg)
    # Nothing changed but the master's env became unreadable: no second writer of erp-data.
    assert "orchestrator-feed-erp-data" not in ids(s2, "pipes")
    assert not c.writes()["s2"], c.writes()["s2"]


# An attack from review round 2, survived.
def test_env_unreadable_system_moves_then_env_back_converges(nodes):
    c = Cluster(nodes, seed=False)
    c.master.seed(env={"crm-system": "crm"}, systems=c.systems, pipes=[*c.pipes, VIA_ENV])
    c.placed()
    s1, s2 = c.slaves["s1"], c.slaves["s2"]
    start_pipe(s1, "env-person")
    start_pipe(c.master, "env-person")
    moved = c.config({"s1": [], "s2": ["erp", "crm"]})
    c.master.add_fault(**ENV_403)
    c.run(moved)
    assert meta(original(c.master, "pipes", "env-person"))["slave"] == "s1"   # untouched
    clear_faults(c)
    assert c.run(moved).outcome == "ok"
    sync = original(c.master, "pipes", "env-person")
    assert meta(sync)["slave"] == "s2" and "reset_pending" not in meta(sync)
    assert pipe_runtime(c.master, "env-person")["last-seen"] in (None, "")   # re-reads s2
    assert copy_in(s2, "pipes", "env-person") == VIA_ENV
    assert ids(s1, "pipes") == set() and ids(s1, "systems") == set()
    assert "env-person" not in dataset_ids(s1)
    start_pipe(s2, "env-person")
    start_pipe(c.master, "env-person")
    assert {e["_id"] for e in entities(c.master, "env-person")} == {"a", "b"}
    assert_originals_kept(c, c.systems, [*c.pipes, VIA_ENV])
    assert_steady(c, moved)


# An attack from review round 2, survived.
def test_env_unreadable_and_new_slave_unreadable_together_move_nothing(nodes):
    c = Cluster(nodes, seed=False)
    c.master.seed(env={"crm-system": "crm"}, systems=c.systems, pipes=[*c.pipes, VIA_ENV])
    c.placed()
    s1, s2 = c.slaves["s1"], c.slaves["s2"]
    for pid in (*CRM_PIPES, "env-person"):
        start_pipe(s1, pid)
    before = (originals(s1, "pipes"), originals(s1, "systems"), dataset_ids(s1))
    moved = c.config({"s1": [], "s2": ["erp", "crm"]})
    c.master.add_fault(**ENV_403)
    s2.add_fault(**UNREADABLE)
    c.clear()
    report = c.run(moved)
    assert report.outcome == "failed" and any("s2" in e for e in report.errors)
    assert (originals(s1, "pipes"), originals(s1, "systems"), dataset_ids(s1)) == before
    assert not c.writes()["master"] and not c.writes()["s1"]
    clear_faults(c)
    assert c.run(moved).outcome == "ok"
    assert {"crm", "erp"} <= ids(s2, "systems")
    assert {*CRM_PIPES, "env-person"} <= ids(s2, "pipes")
    assert ids(s1, "pipes") == set() and ids(s1, "systems") == set()
    assert_originals_kept(c, c.systems, [*c.pipes, VIA_ENV])
    assert_steady(c, moved)


# An attack from review round 2, survived.
def test_untouched_outbound_pipe_keeps_its_feeder_while_env_unreadable(nodes):
    c = Cluster(nodes, seed=False)
    out = {"_id": "env-out", "type": "pipe", "source": {"type": "dataset", "dataset": "local-data"},
           "sink": {"type": "json", "system": "$ENV(erp-sys)", "url": "x"}}
    pipes = [p for p in c.pipes if p["_id"] != "erp-out"] + [out]
    c.master.seed(env={"erp-sys": "erp"}, systems=c.systems, pipes=pipes)
    cfg = c.placed()
    s2 = c.feed_local_data()
    c.master.add_fault(**ENV_403)
    c.clear()
    c.run(cfg)
    assert not c.writes()["s2"], c.writes()["s2"]
    assert {"env-out", "orchestrator-feed-local-data"} <= ids(s2, "pipes")
    assert has_dataset(s2, "local-data")
    clear_faults(c)
    assert_steady(c, cfg)
