"""Contract 6: removing things, moving systems back, and the safety stops."""
from __future__ import annotations

import pytest

from contract_helpers import (CRM_PIPES, HARD, YEAR, Cluster, assert_originals_kept, assert_steady,
                              cannot_run, clear_faults, copy_in, disabled, entities, has_dataset,
                              ids, meta, node_state, original, originals, pipe_runtime, put,
                              start_pipe, the_original)
from service.config import load_config


def _stray(slave, *, ours: bool = False):
    """Things the master no longer explains: put into a slave by hand, or (`ours`) copies
    this orchestrator wrote there earlier (they carry its config group)."""
    mark = {"metadata": {"$config-group": "orchestrator-master"}} if ours else {}
    slave.seed(systems=[{"_id": "stray-system", "type": "system:url", "base_url": "http://127.0.0.1:9/",
                         **mark}],
               pipes=[{"_id": "stray-pipe", "type": "pipe", "source": {"type": "embedded", "entities": [
                   {"_id": "z"}]}, "sink": {"type": "dataset", "dataset": "stray-data"}, **mark}])
    start_pipe(slave, "stray-pipe")
    assert has_dataset(slave, "stray-data")


def test_6_slave_loses_only_the_orchestrators_own_stray_copies(nodes):
    c = Cluster(nodes)
    s1, s2 = c.slaves["s1"], c.slaves["s2"]
    _stray(s1, ours=True)
    _stray(s2)                      # a person's work: left alone, and reported
    report = c.run(c.config())
    assert report.outcome == "ok", report.errors
    assert ids(s1, "systems") == {"crm"}
    assert ids(s1, "pipes") == set(CRM_PIPES)
    assert not has_dataset(s1, "stray-data")
    assert {"stray-system"} < ids(s2, "systems") and "stray-pipe" in ids(s2, "pipes")
    assert has_dataset(s2, "stray-data")
    assert "slave s2 holds 2 components the orchestrator did not put there; left alone" \
        in report.warnings


def test_6_pipe_gone_from_master_is_deleted_in_slave_with_its_dataset(nodes):
    c = Cluster(nodes)
    cfg = c.placed()
    s1 = c.slaves["s1"]
    start_pipe(s1, "crm-order")
    start_pipe(s1, "crm-person")
    assert has_dataset(s1, "orders")
    status, _ = c.master.api("DELETE", "/pipes/crm-order")
    assert status == 200
    assert c.run(cfg).outcome == "ok"
    assert ids(s1, "pipes") == {"crm-person"}
    assert not has_dataset(s1, "orders")
    assert has_dataset(s1, "crm-person")
    assert "crm" in ids(s1, "systems")
    c.clear()
    assert c.run(cfg).outcome == "ok" and c.no_writes()


def test_6_system_no_longer_managed_is_moved_back_to_the_master(nodes):
    c = Cluster(nodes)
    c.placed()
    s1, s2 = c.slaves["s1"], c.slaves["s2"]
    start_pipe(s1, "crm-person")
    c.clear()
    cfg = c.config({"s1": [], "s2": []})
    report = c.run(cfg)
    assert report.outcome == "ok", report.errors
    # the master holds the user's originals again, live
    assert originals(c.master, "systems") == {s["_id"]: s for s in c.systems}
    assert originals(c.master, "pipes") == {p["_id"]: p for p in c.pipes}
    assert pipe_runtime(c.master, "erp-out")["is-disabled"] is False
    # the slaves are clean, datasets included
    for slave in (s1, s2):
        assert ids(slave, "systems") == set() and ids(slave, "pipes") == set()
    assert not has_dataset(s1, "crm-person")
    # each slave copy was deleted only after the master had that component's original back
    order = c.global_writes()
    restored = {p: i for i, (n, m, p, _) in enumerate(order) if n == "master" and m == "PUT"}
    deleted = [(p, i) for i, (n, m, p, _) in enumerate(order) if n != "master" and m == "DELETE"]
    copies = [(p, i) for p, i in deleted if not p.startswith("/api/datasets/")
              and p.split("/")[-1] in {x["_id"] for x in c.pipes + c.systems}]
    assert len(copies) == 5, deleted      # crm, erp, crm-person, crm-order, erp-out
    for path, i in copies:
        assert restored[path + "/config"] < i, (path, order)
    # and a slave's system only after the master had it and every pipe using it back
    for cid, users in (("crm", ("crm-person", "crm-order")), ("erp", ("erp-out",))):
        system_deleted = dict(deleted)[f"/api/systems/{cid}"]
        mine = [f"/api/systems/{cid}/config"] + [f"/api/pipes/{p}/config" for p in users]
        assert max(restored[path] for path in mine) < system_deleted, (cid, order)
    # the master runs the pipe itself again
    start_pipe(c.master, "crm-person")
    assert {e["_id"] for e in entities(c.master, "crm-person")} == {"a", "b"}
    c.clear()
    assert c.run(cfg).outcome == "ok" and c.no_writes()


def test_6_managed_system_absent_from_the_master_is_reported_and_nothing_else(nodes):
    c = Cluster(nodes, seed=False)
    c.master.seed(systems=c.systems, pipes=c.pipes)
    c.clear()
    before = {n: (originals(node, "pipes"), originals(node, "systems"))
              for n, node in c.named().items()}
    report = c.run(c.config({"s1": ["no-such-system"]}))
    assert report.outcome == "ok", report.errors
    assert any("no-such-system" in w for w in report.warnings), report.warnings
    assert c.no_writes(), c.writes()
    assert {n: (originals(node, "pipes"), originals(node, "systems"))
            for n, node in c.named().items()} == before


def _everything(c: Cluster) -> dict:
    return {n: (originals(node, "pipes"), originals(node, "systems"),
                sorted(d["_id"] for d in node.api("GET", "/datasets")[1]))
            for n, node in c.named().items()}


def _armed(nodes) -> Cluster:
    """An installation where a run would write and delete a lot, on every node."""
    c = Cluster(nodes)
    c.placed()
    for slave in c.slaves.values():
        _stray(slave, ours=True)
    c.clear()
    return c


def test_6_master_answering_500_aborts_before_any_write(nodes):
    c = _armed(nodes)
    before = _everything(c)
    c.master.add_fault(method="GET", path="^/api/pipes$", status=500, times=10)
    report = c.run(c.config({"s1": [], "s2": ["crm"]}))
    assert report.outcome == "aborted"
    assert c.no_writes(), c.writes()
    c.master.emulator("DELETE", "/faults")
    assert _everything(c) == before


@pytest.mark.parametrize("empty", ["pipes", "systems"])
def test_6_master_listing_no_pipes_or_no_systems_aborts_before_any_write(nodes, empty):
    c = _armed(nodes)
    for cid in ids(c.master, empty):
        status, _ = c.master.api("DELETE", f"/{empty}/{cid}")
        assert status == 200
    c.clear()
    before = _everything(c)
    report = c.run(c.config({"s1": [], "s2": ["crm"]}))
    assert report.outcome == "aborted"
    assert c.no_writes(), c.writes()
    c.master.emulator("DELETE", "/faults")
    assert _everything(c) == before


def test_6_master_answering_something_that_is_not_a_list_aborts(nodes):
    c = _armed(nodes)
    before = _everything(c)
    # the node answers 200, but not with a list of pipes
    c.master.add_fault(method="GET", path="^/api/pipes$", status=200, times=10)
    report = c.run(c.config({"s1": [], "s2": ["crm"]}))
    assert report.outcome == "aborted"
    assert c.no_writes(), c.writes()
    c.master.emulator("DELETE", "/faults")
    assert _everything(c) == before


def test_6_nothing_deleted_in_a_slave_that_could_not_be_read(nodes):
    c = _armed(nodes)
    s1, s2 = c.slaves["s1"], c.slaves["s2"]
    before_s1 = (originals(s1, "pipes"), originals(s1, "systems"))
    c.clear()
    s1.add_fault(method="GET", path="^/api/pipes$", status=500, times=10)
    report = c.run(c.config())
    s1.emulator("DELETE", "/faults")
    assert report.outcome == "failed"
    assert any("s1" in e for e in report.errors), report.errors
    assert c.writes()["s1"] == []
    assert (originals(s1, "pipes"), originals(s1, "systems")) == before_s1
    assert has_dataset(s1, "stray-data")
    # the readable slave was reconciled as usual
    assert "stray-pipe" not in ids(s2, "pipes") and not has_dataset(s2, "stray-data")
    assert meta(original(c.master, "systems", "crm"))["slave"] == "s1"


def test_6_outbound_pipe_gone_from_master_takes_its_feeder_with_it(nodes):
    c = Cluster(nodes)
    cfg = c.placed()
    s2 = c.feed_local_data()
    assert has_dataset(s2, "local-data")
    assert c.master.api("DELETE", "/pipes/erp-out")[0] == 200
    assert c.run(cfg).outcome == "ok"
    assert ids(s2, "pipes") == set()
    assert ids(s2, "systems") == {"erp"}
    assert not has_dataset(s2, "local-data")
    # the master's own dataset is not touched
    assert {e["_id"] for e in entities(c.master, "local-data")} == {"x", "y"}
    c.clear()
    assert c.run(cfg).outcome == "ok" and c.no_writes()


def test_6_move_back_that_breaks_halfway_loses_nothing_and_finishes_next_run(nodes):
    c = Cluster(nodes)
    c.placed()
    s1 = c.slaves["s1"]
    start_pipe(s1, "crm-person")
    cfg = c.config({"s1": [], "s2": ["erp"]})
    c.master.add_fault(method="PUT", path="^/api/", skip=1, times=1000, status=500)
    assert c.run(cfg).outcome == "failed"
    c.master.emulator("DELETE", "/faults")
    # every original is still in the master, live or in the metadata
    for cfg_ in c.systems:
        assert the_original(c.master, "systems", cfg_["_id"]) == cfg_
    for cfg_ in c.pipes:
        assert the_original(c.master, "pipes", cfg_["_id"]) == cfg_
    # The fault let one master PUT through (which one depends on the order the writes went
    # out): one of the three is back in the master, the other two are halfway.
    back = {cid for kind, cid in (("systems", "crm"), *(("pipes", p) for p in CRM_PIPES))
            if not meta(original(c.master, kind, cid))}
    assert len(back) == 1, back
    # A slave copy goes only once its pipe's and its system's master writes have both
    # landed, which one PUT cannot be: s1 still holds everything the master reads from it.
    assert ids(s1, "pipes") == set(CRM_PIPES) and "crm" in ids(s1, "systems")
    assert has_dataset(s1, "crm-person")
    assert c.run(cfg).outcome == "ok"
    assert originals(c.master, "systems")["crm"] == c.systems[0]
    assert ids(s1, "systems") == set() and ids(s1, "pipes") == set()


def test_6_pipe_reuploaded_for_an_unmanaged_system_leaves_the_slave(nodes):
    c = Cluster(nodes)
    cfg = c.placed()
    s1 = c.slaves["s1"]
    start_pipe(s1, "crm-person")
    other = {"_id": "other", "type": "system:url", "base_url": "http://127.0.0.1:9/"}
    assert c.master.api("POST", "/systems", [other])[0] in (200, 201)
    new = {"_id": "crm-person", "type": "pipe", "source": {"type": "json", "system": "other",
                                                           "url": "people"}}
    put(c.master, "pipes", "crm-person", new)
    assert c.run(cfg).outcome == "ok"
    assert original(c.master, "pipes", "crm-person") == new
    assert ids(s1, "pipes") == {"crm-order"}
    assert not has_dataset(s1, "crm-person")
    c.clear()
    assert c.run(cfg).outcome == "ok" and c.no_writes()


# Found in review round 1 (fixed since).
def test_dataset_kept_on_slave_when_its_writer_names_it_through_env(nodes):
    c = Cluster(nodes, seed=False)
    p1 = {"_id": "p1", "type": "pipe", "source": {"type": "json", "system": "crm",
                                                  "url": "people"},
          "sink": {"type": "dataset", "dataset": "$ENV(shared-ds)"}}
    p2 = {"_id": "p2", "type": "pipe", "source": {"type": "json", "system": "crm",
                                                  "url": "orders"},
          "sink": {"type": "dataset", "dataset": "shared"}}
    c.master.seed(env={"shared-ds": "shared"}, systems=c.systems, pipes=[*c.pipes, p1, p2])
    weak = c.slaves["s1"].token(admin=False, expires_in=YEAR)
    # the slave's env is set by hand (the orchestrator cannot: no group:Admin)
    assert c.slaves["s1"].api("POST", "/env", {"shared-ds": "shared"})[0] == 200
    cfg = c.placed(tokens={"s1": weak})
    s1 = c.slaves["s1"]
    start_pipe(s1, "p1")
    start_pipe(s1, "p2")
    assert has_dataset(s1, "shared")
    assert c.master.api("DELETE", "/pipes/p2")[0] == 200       # p1 still writes "shared"
    assert c.run(cfg).outcome == "ok"
    assert "p2" not in ids(s1, "pipes") and "p1" in ids(s1, "pipes")
    assert has_dataset(s1, "shared")


# An attack from review round 1, survived.
def test_two_pipes_writing_one_slave_dataset_one_removed_keeps_it(nodes):
    c = Cluster(nodes, seed=False)
    two = {"_id": "crm-order-2", "type": "pipe",
           "source": {"type": "json", "system": "crm", "url": "orders"},
           "sink": {"type": "dataset", "dataset": "orders"}}
    c.master.seed(systems=c.systems, pipes=[*c.pipes, two])
    cfg = c.placed()
    s1 = c.slaves["s1"]
    start_pipe(s1, "crm-order-2")
    assert has_dataset(s1, "orders")
    assert c.master.api("DELETE", "/pipes/crm-order-2")[0] == 200
    assert c.run(cfg).outcome == "ok"
    assert "crm-order-2" not in ids(s1, "pipes")
    assert has_dataset(s1, "orders")                    # crm-order still writes it
    # and the other way round: removing the last writer takes the dataset
    assert c.master.api("DELETE", "/pipes/crm-order")[0] == 200
    assert c.run(cfg).outcome == "ok"
    assert not has_dataset(s1, "orders") and "crm-order" not in ids(s1, "pipes")
    assert original(c.master, "pipes", "order-report") == c.pipes[3]


# An attack from review round 1, survived.
def test_master_pipe_deleted_while_on_slave_goes_with_its_dataset_only(nodes):
    c = Cluster(nodes)
    cfg = c.placed()
    s1 = c.slaves["s1"]
    for pid in CRM_PIPES:
        start_pipe(s1, pid)
    assert c.master.api("DELETE", "/pipes/crm-person")[0] == 200
    assert c.run(cfg).outcome == "ok"
    assert ids(s1, "pipes") == {"crm-order"} and not has_dataset(s1, "crm-person")
    assert has_dataset(s1, "orders") and ids(s1, "systems") == {"crm"}


# An attack from review round 1, survived.
def test_slave_removed_from_slave_nodes_is_never_contacted_and_its_system_comes_back(nodes):
    c = Cluster(nodes)
    c.placed()
    s2 = c.slaves["s2"]
    before = node_state(s2)
    env = c.environ({"s1": ["crm"]})
    c.clear()
    report = c.run(load_config(env))
    assert report.outcome == "ok", report.errors
    assert s2.requests() == []                           # not ours any more: not touched
    assert node_state(s2) == before
    assert original(c.master, "systems", "erp") == c.systems[1]
    assert original(c.master, "pipes", "erp-out") == c.pipes[5]
    assert pipe_runtime(c.master, "erp-out")["is-disabled"] is False


# An attack from review round 1, survived.
def test_slave_with_no_managed_systems_is_emptied_of_what_we_put_there(nodes):
    c = Cluster(nodes)
    c.placed()
    report = c.run(c.config({"s1": ["crm"], "s2": []}))
    assert report.outcome == "ok", report.errors
    assert ids(c.slaves["s2"], "pipes") == set() and ids(c.slaves["s2"], "systems") == set()
    assert not has_dataset(c.slaves["s2"], "local-data")
    assert_originals_kept(c, c.systems, c.pipes)
    c.clear()
    assert c.run(c.config({"s1": ["crm"], "s2": []})).outcome == "ok" and c.no_writes()


# Found in review round 3 (fixed since).
@pytest.mark.usefixtures("no_component_planned_twice")
@pytest.mark.parametrize("fault", [{"status": 500}, {"drop": True}])
def test_move_back_of_an_outbound_pipe_needs_no_pump_operation(nodes, fault):
    # The placeholder's pump is `off` (it cannot run) and is never disabled: coming back
    # needs no enable, so a node refusing pump operations cannot hold the move back.
    c = Cluster(nodes)
    c.placed()
    assert cannot_run(c.master, "erp-out") and not disabled(c.master, "erp-out")
    back = c.config({"s1": ["crm"], "s2": []})
    c.master.add_fault(method="POST", path="^/api/pipes/erp-out/pump$", times=HARD, **fault)
    assert c.run(back).outcome == "ok"
    assert original(c.master, "pipes", "erp-out") == c.pipes[5]
    assert not disabled(c.master, "erp-out")                   # running again
    assert not [r for r in c.master.requests()
                if r["method"] == "POST" and r["path"] == "/api/pipes/erp-out/pump"]
    clear_faults(c)
    assert_steady(c, back)


# An attack from review round 3, survived.
@pytest.mark.usefixtures("no_component_planned_twice")
def test_inbound_placeholder_pipe_moved_back_runs_again_in_the_master(nodes):
    # An inbound pipe writing to another system on the same slave gets a placeholder (pump
    # off, never disabled); given back, it is restored and runs (the user never disabled it).
    c = Cluster(nodes, seed=False)
    to_erp = {"_id": "crm-to-erp", "type": "pipe",
              "source": {"type": "json", "system": "crm", "url": "people"},
              "sink": {"type": "json", "system": "erp", "url": "x"}}
    c.master.seed(systems=c.systems, pipes=[*c.pipes, to_erp])
    c.placed({"s1": ["crm", "erp"]})
    assert cannot_run(c.master, "crm-to-erp") and not disabled(c.slaves["s1"], "crm-to-erp")
    back = c.placed({"s1": []})
    assert original(c.master, "pipes", "crm-to-erp") == to_erp
    assert not disabled(c.master, "crm-to-erp")
    assert_steady(c, back)


# An attack from review round 3, survived.
@pytest.mark.usefixtures("no_component_planned_twice")
def test_a_moved_pipe_repointed_at_another_dataset_leaves_no_orphan_in_its_slave(nodes):
    c = Cluster(nodes)
    cfg = c.placed()
    s1 = c.slaves["s1"]
    start_pipe(s1, "crm-order")
    assert has_dataset(s1, "orders")
    edited = {**c.pipes[1], "sink": {"type": "dataset", "dataset": "orders-v2"}}
    put(c.master, "pipes", "crm-order", edited)             # the user re-uploads it
    c.clear()
    assert c.run(cfg).outcome == "ok"
    assert copy_in(s1, "pipes", "crm-order") == edited
    assert not has_dataset(s1, "orders")                     # the old dataset went ...
    order = [(n, m, p) for n, m, p, _ in c.global_writes()]
    gone = order.index(("s1", "DELETE", "/api/datasets/orders"))
    assert order.index(("s1", "PUT", "/api/pipes/crm-order/config")) < gone   # ... after the copy
    assert max(i for i, (n, m, p) in enumerate(order)
               if n == "master" and "crm-order" in p) < gone                  # and the master
    start_pipe(s1, "crm-order")
    start_pipe(c.master, "crm-order")
    assert has_dataset(c.master, "orders-v2")
    assert_steady(c, cfg)
