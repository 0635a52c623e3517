"""An outbound pipe on a slave reads a master dataset through a feeder (contract 3.4): a
feeder only where the slave does not write that dataset itself, kept while a pipe kept on
its slave still reads it, dropped and brought back as writers come and go; a user's pipe or
system with a feeder's id is never overwritten.
"""
from __future__ import annotations

import pytest

from contract_helpers import (ENV_403, UNREADABLE, Cluster, assert_originals_kept, assert_steady,
                              clear_faults, copy_in, entities, has_dataset, ids, meta, original,
                              put, start_pipe)
from orchestration import originals


HR = {"_id": "hr", "type": "system:url", "base_url": "http://127.0.0.1:9/"}


# Found in review round 1 (fixed since).
def test_no_feeder_for_a_dataset_the_slave_itself_produces(nodes):
    c = Cluster(nodes, seed=False)
    back = {"_id": "crm-back", "type": "pipe",
            "source": {"type": "dataset", "dataset": "crm-person"},
            "sink": {"type": "json", "system": "crm", "url": "back"}}
    c.master.seed(systems=c.systems, pipes=[*c.pipes, back])
    report = c.run(c.config({"s1": ["crm"], "s2": ["erp"]}))
    assert report.outcome == "ok", report.errors
    s1 = c.slaves["s1"]
    assert copy_in(s1, "pipes", "crm-back") == back
    writers = [pid for pid, cfg in originals(s1, "pipes").items()
               if (cfg.get("sink") or {"dataset": pid}).get("dataset", pid) == "crm-person"]
    assert writers == ["crm-person"], writers


# Found in review round 1 (fixed since).
def test_outbound_pipe_kept_on_old_slave_keeps_its_feeder(nodes):
    c = Cluster(nodes)
    c.placed()
    s2 = c.feed_local_data()
    assert has_dataset(s2, "local-data")
    c.slaves["s1"].add_fault(method="GET", path="^/api/pipes$", status=401, times=100)
    report = c.run(c.config({"s1": ["crm", "erp"], "s2": []}))   # erp -> s1, s1 is down
    assert report.outcome == "failed"
    assert copy_in(s2, "pipes", "erp-out") == c.pipes[5]        # kept where it runs now
    assert "orchestrator-feed-local-data" in ids(s2, "pipes")
    assert "orchestrator-master" in ids(s2, "systems")
    assert has_dataset(s2, "local-data")


# An attack from review round 1, survived.
def test_feeder_id_clash_with_a_user_pipe_is_an_error_and_the_user_pipe_wins(nodes):
    c = Cluster(nodes, seed=False)
    clash = {"_id": "orchestrator-feed-local-data", "type": "pipe",
             "source": {"type": "json", "system": "erp", "url": "x"}}
    c.master.seed(systems=c.systems, pipes=[*c.pipes, clash])
    cfg = c.config()
    report = c.run(cfg)
    assert report.outcome == "failed"
    assert any("orchestrator-feed-local-data" in e for e in report.errors), report.errors
    assert copy_in(c.slaves["s2"], "pipes", "orchestrator-feed-local-data") == clash
    assert_originals_kept(c, c.systems, [*c.pipes, clash])
    c.clear()
    again = c.run(cfg)
    assert again.errors == report.errors and c.no_writes(), c.writes()


# An attack from review round 1, survived.
def test_user_pipe_named_like_a_feeder_but_staying_in_the_master_is_left_alone(nodes):
    c = Cluster(nodes, seed=False)
    lookalike = {"_id": "orchestrator-feed-local-data", "type": "pipe",
                 "source": {"type": "dataset", "dataset": "local-data"}}
    c.master.seed(systems=c.systems, pipes=[*c.pipes, lookalike])
    c.placed()
    assert original(c.master, "pipes", "orchestrator-feed-local-data") == lookalike
    feeder = copy_in(c.slaves["s2"], "pipes", "orchestrator-feed-local-data")
    assert meta(feeder) == {"feeder": True, "master": c.master.url}


# An attack from review round 1, survived.
def test_unmanaged_user_system_named_orchestrator_master_is_left_alone(nodes):
    c = Cluster(nodes, seed=False)
    mine = {"_id": "orchestrator-master", "type": "system:url", "base_url": "http://127.0.0.1:9/"}
    c.master.seed(systems=[*c.systems, mine], pipes=c.pipes)
    cfg = c.placed()
    assert original(c.master, "systems", "orchestrator-master") == mine
    feeder = copy_in(c.slaves["s2"], "systems", "orchestrator-master")
    assert feeder["url_pattern"].startswith(c.master.url) and meta(feeder) == {"feeder": True}
    c.clear()
    assert c.run(cfg).outcome == "ok" and c.no_writes(), c.writes()


# An attack from review round 2, survived.
def test_kept_outbound_feeder_dataset_is_also_a_deleted_pipes_sink(nodes):
    # erp-out is kept on s2 (its new slave s1 is unreadable); the feeder's dataset
    # local-data on s2 is also the sink of an s2 pipe whose master pipe is deleted.
    c = Cluster(nodes, seed=False)
    writer = {"_id": "erp-local", "type": "pipe",
              "source": {"type": "json", "system": "erp", "url": "x"},
              "sink": {"type": "dataset", "dataset": "local-data2"}}
    c.master.seed(systems=c.systems, pipes=[*c.pipes, writer])
    c.placed()
    s2 = c.feed_local_data()
    assert has_dataset(s2, "local-data")
    # the user re-points the writer at local-data, by hand in the slave (a stray edit that
    # keeps the copy's config group: still the orchestrator's copy) ...
    put(s2, "pipes", "erp-local", {**writer, "sink": {"type": "dataset", "dataset": "local-data"},
                                   "metadata": {"$config-group": "orchestrator-master"}})
    # ... and deletes it from the master; erp moves to the unreadable s1
    assert c.master.api("DELETE", "/pipes/erp-local")[0] == 200
    c.slaves["s1"].add_fault(**UNREADABLE)
    report = c.run(c.config({"s1": ["crm", "erp"], "s2": []}))
    assert report.outcome == "failed"
    assert "erp-local" not in ids(s2, "pipes")                   # its master pipe is gone
    assert copy_in(s2, "pipes", "erp-out") == c.pipes[5]        # kept where it runs
    assert "orchestrator-feed-local-data" in ids(s2, "pipes")
    assert has_dataset(s2, "local-data")                          # the feeder still writes it
    clear_faults(c)
    final = c.placed({"s1": ["crm", "erp"], "s2": []})
    assert ids(s2, "pipes") == set() and ids(s2, "systems") == set()
    assert_steady(c, final)


# An attack from review round 2, survived.
def test_feeder_dropped_when_the_slave_starts_writing_the_dataset_and_back(nodes):
    c = Cluster(nodes)
    cfg = c.placed()
    s2 = c.feed_local_data()
    assert {e["_id"] for e in entities(s2, "local-data")} == {"x", "y"}
    # a new erp pipe on s2 writes local-data: the feeder must go, the dataset must stay
    maker = {"_id": "erp-local", "type": "pipe",
             "source": {"type": "json", "system": "erp", "url": "x"},
             "sink": {"type": "dataset", "dataset": "local-data"}}
    assert c.master.api("POST", "/pipes", [maker])[0] in (200, 201)
    assert c.run(cfg).outcome == "ok"
    assert "orchestrator-feed-local-data" not in ids(s2, "pipes")
    assert "orchestrator-master" not in ids(s2, "systems")
    assert has_dataset(s2, "local-data")
    assert copy_in(s2, "pipes", "erp-local") == maker
    assert_steady(c, cfg)
    # and it goes again: the feeder comes back, the dataset is never deleted
    assert c.master.api("DELETE", "/pipes/erp-local")[0] == 200
    c.clear()
    assert c.run(cfg).outcome == "ok"
    assert not [w for w in c.writes()["s2"] if w["method"] == "DELETE"
                and w["path"].startswith("/api/datasets/")]
    assert "orchestrator-feed-local-data" in ids(s2, "pipes")
    assert has_dataset(s2, "local-data")
    assert_steady(c, cfg)


# An attack from review round 3, survived.
@pytest.mark.usefixtures("no_component_planned_twice")
def test_feeder_system_stays_while_a_kept_outbound_pipe_uses_it_after_the_last_one_leaves(nodes):
    c = Cluster(nodes, seed=False, slaves=("s1", "s2", "s3"))
    hr_out = {"_id": "hr-out", "type": "pipe", "source": {"type": "dataset", "dataset": "orders"},
              "sink": {"type": "json", "system": "hr", "url": "x"}}
    c.master.seed(systems=[*c.systems, HR], pipes=[*c.pipes, hr_out])
    c.placed({"s1": ["crm"], "s2": ["erp", "hr"]})
    s2 = c.slaves["s2"]
    assert {"orchestrator-feed-local-data", "orchestrator-feed-orders"} <= ids(s2, "pipes")
    start_pipe(c.master, "local-data")
    start_pipe(s2, "orchestrator-feed-local-data")
    # hr goes to the unreadable s3 (hr-out kept on s2), erp leaves s2 for s1: the last
    # outbound pipe s2 may drop is gone, but the kept hr-out still needs the feeder system
    c.slaves["s3"].add_fault(**UNREADABLE)
    report = c.run(c.config({"s1": ["crm", "erp"], "s2": [], "s3": ["hr"]}))
    assert report.outcome == "failed"
    assert copy_in(s2, "pipes", "hr-out") == hr_out
    assert "orchestrator-feed-orders" in ids(s2, "pipes")
    assert "orchestrator-master" in ids(s2, "systems")
    assert "hr" in ids(s2, "systems")
    assert "erp-out" not in ids(s2, "pipes") and "erp" not in ids(s2, "systems")
    assert "orchestrator-feed-local-data" not in ids(s2, "pipes")
    assert not has_dataset(s2, "local-data")
    assert copy_in(c.slaves["s1"], "pipes", "erp-out") == c.pipes[5]
    c.clear()
    c.run(c.config({"s1": ["crm", "erp"], "s2": [], "s3": ["hr"]}))   # s3 still down
    assert c.no_writes(), c.writes()
    clear_faults(c)
    final = c.placed({"s1": ["crm", "erp"], "s2": [], "s3": ["hr"]})
    assert ids(s2, "pipes") == set() and ids(s2, "systems") == set()
    assert copy_in(c.slaves["s3"], "pipes", "hr-out") == hr_out
    assert_steady(c, final)


# An attack from review round 3, survived.
@pytest.mark.usefixtures("no_component_planned_twice")
def test_untouched_pipe_writing_a_dataset_drops_the_feeder_only_on_its_own_slave(nodes):
    # env-in (an $ENV-named system, env unreadable) is kept on s2 and writes local-data there;
    # s1 has its own outbound pipe reading local-data, whose feeder must stay.
    c = Cluster(nodes, seed=False)
    env_in = {"_id": "env-in", "type": "pipe",
              "source": {"type": "json", "system": "$ENV(erp-sys)", "url": "x"},
              "sink": {"type": "dataset", "dataset": "local-data2"}}
    crm_out = {"_id": "crm-out", "type": "pipe",
               "source": {"type": "dataset", "dataset": "local-data2"},
               "sink": {"type": "json", "system": "crm", "url": "y"}}
    c.master.seed(env={"erp-sys": "erp"}, systems=c.systems, pipes=[*c.pipes, env_in, crm_out])
    cfg = c.placed()
    s1 = c.slaves["s1"]
    assert "orchestrator-feed-local-data2" in ids(s1, "pipes")
    c.master.add_fault(**ENV_403)
    c.clear()
    c.run(cfg)
    assert not c.writes()["s1"] and not c.writes()["s2"]
    assert "orchestrator-feed-local-data2" in ids(s1, "pipes")
    assert "orchestrator-master" in ids(s1, "systems")
    clear_faults(c)
    assert_steady(c, cfg)


# An attack from review round 3, survived.
@pytest.mark.usefixtures("no_component_planned_twice")
def test_kept_writer_means_no_feeder_then_the_feeder_comes_when_it_leaves(nodes):
    c = Cluster(nodes, seed=False)
    out = {"_id": "orders-out", "type": "pipe", "source": {"type": "dataset", "dataset": "orders"},
           "sink": {"type": "json", "system": "erp", "url": "o"}}
    c.master.seed(systems=c.systems, pipes=[*c.pipes, out])
    c.placed({"s1": ["crm", "erp"], "s2": []})
    s1, s2 = c.slaves["s1"], c.slaves["s2"]
    assert "orchestrator-feed-orders" not in ids(s1, "pipes")     # s1 writes orders itself
    start_pipe(s1, "crm-order")
    assert has_dataset(s1, "orders")
    moved = c.config({"s1": ["erp"], "s2": ["crm"]})
    s2.add_fault(**UNREADABLE)
    c.clear()
    c.run(moved)
    # crm-order is kept on s1 (s2 is down) and still writes orders there: no feeder yet
    assert not c.writes()["s1"] and not c.writes()["master"], c.writes()
    c.clear()
    c.run(moved)
    assert c.no_writes()
    clear_faults(c)
    c.clear()
    assert c.run(moved).outcome == "ok"
    assert "crm-order" not in ids(s1, "pipes") and "crm" not in ids(s1, "systems")
    assert {"orchestrator-feed-orders", "orders-out"} <= ids(s1, "pipes")
    assert "orchestrator-master" in ids(s1, "systems")
    assert has_dataset(s1, "orders")
    assert not [w for w in c.writes()["s1"] if w["method"] == "DELETE"
                and w["path"] == "/api/datasets/orders"]
    assert_steady(c, moved)
