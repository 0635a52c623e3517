"""Review round 2: attacks on the logic the first review's fixes added, and their interplay.

Untouched pipes (missing managed systems, $ENV names while the master env is unreadable),
kept outbound pipes and their feeders, resets (first move, move between slaves, dataset
change, move back) interrupted by faults, slave delete ordering, user-disabled pipes, and
the "no feeder for a dataset the slave writes" rule.

The first group are the bugs this round found (fixed since), each asserting the correct
behaviour; the rest are attacks the implementation survived, kept as regression tests.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from contract_helpers import (copy_in, CRM_PIPES, assert_steady, clear_faults, Cluster, entities,
                              has_dataset, ids, meta, original, pipe_runtime, put, start_pipe,
                              the_original)
from orchestration import as_copy, config_for, originals, writes
from write_faults import arm_first_writing
from scenarios import holds_every_original, latest_originals
from service import orchestrator
from service.nodes.client import SesamClient

ENV_403 = {"method": "GET", "path": "^/api/env$", "status": 403, "times": 1000}
UNREADABLE = {"method": "GET", "path": "^/api/pipes$", "status": 401, "times": 1000}
# PUT and DELETE are retried three times by the client: four hits make the write fail.
HARD = 4


@pytest.fixture(autouse=True)
def _no_retry_backoff(monkeypatch):
    # Retried PUTs and DELETEs still happen (same requests), only without the sleeps.
    monkeypatch.setitem(SesamClient.__init__.__kwdefaults__, "backoff", 0.0)


def _datasets(node) -> set[str]:
    return {d["_id"] for d in node.api("GET", "/datasets")[1]}


def _all_originals_kept(c: Cluster, systems: list[dict], pipes: list[dict]) -> None:
    for s in systems:
        assert the_original(c.master, "systems", s["_id"]) == s, s["_id"]
    for p in pipes:
        assert the_original(c.master, "pipes", p["_id"]) == p, p["_id"]




def _bump_offsets(c: Cluster, slave, rounds: int = 3) -> None:
    """Make the slave's crm-order dataset offsets run well ahead of a fresh dataset's."""
    for i in range(rounds):
        put(c.src, "pipes", "orders", {"_id": "orders", "type": "pipe", "source": {
            "type": "embedded", "entities": [{"_id": "o1", "total": 10 + i}]}})
        start_pipe(c.src, "orders")
        start_pipe(slave, "crm-order")


VIA_ENV = {"_id": "env-person", "type": "pipe",
           "source": {"type": "json", "system": "$ENV(crm-system)", "url": "people"}}


# --------------------------------------------------------------------------------------
# Bugs found in round 2 (fixed since): each asserts the correct behaviour.
# --------------------------------------------------------------------------------------

def test_env_unreadable_system_moves_untouched_pipe_keeps_its_system(nodes):
    c = Cluster(nodes, seed=False)
    c.master.seed(env={"crm-system": "crm"}, systems=c.systems, pipes=[*c.pipes, VIA_ENV])
    assert c.run(c.config()).outcome == "ok"
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
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
    s2 = c.slaves["s2"]
    assert copy_in(s2, "pipes", "erp-in") == erp_in
    assert "orchestrator-feed-erp-data" not in ids(s2, "pipes")      # s2 writes erp-data itself
    c.master.add_fault(**ENV_403)
    c.clear()
    c.run(cfg)
    # Nothing changed but the master's env became unreadable: no second writer of erp-data.
    assert "orchestrator-feed-erp-data" not in ids(s2, "pipes")
    assert not c.writes()["s2"], c.writes()["s2"]


def test_half_done_move_then_new_slave_unreadable_deletes_nothing_the_master_reads(nodes):
    c = Cluster(nodes)
    assert c.run(c.config()).outcome == "ok"
    s1, s2 = c.slaves["s1"], c.slaves["s2"]
    c.sync(s1)
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


def test_owed_reset_is_done_even_when_the_new_slave_is_unreadable(nodes):
    c = Cluster(nodes)
    assert c.run(c.config()).outcome == "ok"
    s1, s2 = c.slaves["s1"], c.slaves["s2"]
    c.sync(s1)
    moved = c.config({"s1": [], "s2": ["erp", "crm"]})
    c.master.add_fault(method="POST", path="^/api/pipes/crm-person/pump$", status=500)
    assert c.run(moved).outcome == "failed"
    sync = original(c.master, "pipes", "crm-person")
    assert meta(sync)["slave"] == "s2" and meta(sync)["reset_pending"] is True
    assert pipe_runtime(c.master, "crm-person")["last-seen"] not in (None, "")
    s2.add_fault(**UNREADABLE)
    c.run(moved)
    # The sync pipe reads s2 (its system points there) with s1's offsets until reset.
    assert pipe_runtime(c.master, "crm-person")["last-seen"] in (None, "")


def test_slave_endpoint_change_resets_the_sync_pipes(nodes):
    c = Cluster(nodes, slaves=("s1", "s2", "s3"))
    cfg = c.config({"s1": ["crm"], "s2": ["erp"]})
    assert c.run(cfg).outcome == "ok"
    s1, s3 = c.slaves["s1"], c.slaves["s3"]
    _bump_offsets(c, s1)
    start_pipe(c.master, "crm-order")
    assert pipe_runtime(c.master, "crm-order")["last-seen"] not in (None, "")
    # s1 is replaced by a fresh node (s3's): same slave id, new endpoint and token
    replaced = c.replaced({"s1": ["crm"], "s2": ["erp"]}, "s1", by="s3")
    assert c.run(replaced).outcome == "ok"
    assert copy_in(s3, "pipes", "crm-order") == c.pipes[1]
    put(c.src, "pipes", "orders", {"_id": "orders", "type": "pipe", "source": {
        "type": "embedded", "entities": [{"_id": "o1", "total": 99}, {"_id": "o2", "total": 1}]}})
    start_pipe(c.src, "orders")
    start_pipe(s3, "crm-order")
    start_pipe(c.master, "crm-order")
    assert {e["_id"] for e in entities(c.master, "orders")} == {"o1", "o2"}


def test_user_disabled_outbound_pipe_is_disabled_on_the_slave(nodes):
    c = Cluster(nodes)
    assert c.master.api("POST", "/pipes/erp-out/pump", {"operation": "disable"})[0] == 200
    assert c.run(c.config()).outcome == "ok"
    assert copy_in(c.slaves["s2"], "pipes", "erp-out") == c.pipes[5]
    assert pipe_runtime(c.slaves["s2"], "erp-out")["is-disabled"] is True


# --------------------------------------------------------------------------------------
# Attacks the implementation survives (regression tests).
# --------------------------------------------------------------------------------------

def test_env_unreadable_system_moves_then_env_back_converges(nodes):
    c = Cluster(nodes, seed=False)
    c.master.seed(env={"crm-system": "crm"}, systems=c.systems, pipes=[*c.pipes, VIA_ENV])
    assert c.run(c.config()).outcome == "ok"
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
    assert "env-person" not in _datasets(s1)
    start_pipe(s2, "env-person")
    start_pipe(c.master, "env-person")
    assert {e["_id"] for e in entities(c.master, "env-person")} == {"a", "b"}
    _all_originals_kept(c, c.systems, [*c.pipes, VIA_ENV])
    assert_steady(c, moved)


def test_env_unreadable_and_new_slave_unreadable_together_move_nothing(nodes):
    c = Cluster(nodes, seed=False)
    c.master.seed(env={"crm-system": "crm"}, systems=c.systems, pipes=[*c.pipes, VIA_ENV])
    assert c.run(c.config()).outcome == "ok"
    s1, s2 = c.slaves["s1"], c.slaves["s2"]
    for pid in (*CRM_PIPES, "env-person"):
        start_pipe(s1, pid)
    before = (originals(s1, "pipes"), originals(s1, "systems"), _datasets(s1))
    moved = c.config({"s1": [], "s2": ["erp", "crm"]})
    c.master.add_fault(**ENV_403)
    s2.add_fault(**UNREADABLE)
    c.clear()
    report = c.run(moved)
    assert report.outcome == "failed" and any("s2" in e for e in report.errors)
    assert (originals(s1, "pipes"), originals(s1, "systems"), _datasets(s1)) == before
    assert not c.writes()["master"] and not c.writes()["s1"]
    clear_faults(c)
    assert c.run(moved).outcome == "ok"
    assert {"crm", "erp"} <= ids(s2, "systems")
    assert {*CRM_PIPES, "env-person"} <= ids(s2, "pipes")
    assert ids(s1, "pipes") == set() and ids(s1, "systems") == set()
    _all_originals_kept(c, c.systems, [*c.pipes, VIA_ENV])
    assert_steady(c, moved)


def test_missing_system_reuploaded_by_the_user_moves_again_and_converges(nodes):
    c = Cluster(nodes)
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
    s1 = c.slaves["s1"]
    c.sync(s1)
    seen = pipe_runtime(c.master, "crm-person")["last-seen"]
    assert c.master.api("DELETE", "/systems/crm")[0] == 200
    c.clear()
    c.run(cfg)
    assert not c.writes()["s1"]                      # untouched while missing
    new_crm = {**c.systems[0], "description": "re-uploaded"}
    assert c.master.api("POST", "/systems", [new_crm])[0] in (200, 201)
    assert c.run(cfg).outcome == "ok"
    assert copy_in(s1, "systems", "crm") == new_crm
    assert meta(original(c.master, "systems", "crm"))["original_configuration"] == new_crm
    assert pipe_runtime(c.master, "crm-person")["last-seen"] == seen    # same source: no reset
    assert has_dataset(s1, "crm-person")
    _all_originals_kept(c, [new_crm, c.systems[1]], c.pipes)
    assert_steady(c, cfg)


def test_missing_system_reappears_under_another_slave_moves_with_reset(nodes):
    c = Cluster(nodes)
    assert c.run(c.config()).outcome == "ok"
    s1, s2 = c.slaves["s1"], c.slaves["s2"]
    c.sync(s1)
    saved = original(c.master, "systems", "crm")          # the generated one, with the marker
    assert c.master.api("DELETE", "/systems/crm")[0] == 200
    moved = c.config({"s1": [], "s2": ["erp", "crm"]})
    c.clear()
    report = c.run(moved)
    assert any("crm" in w for w in report.warnings)
    assert not c.writes()["s1"] and set(CRM_PIPES) <= ids(s1, "pipes")
    assert "crm" not in ids(s2, "systems")
    # the listing comes back as it was (a half-broken answer healed)
    assert c.master.api("POST", "/systems", [saved])[0] in (200, 201)
    assert c.run(moved).outcome == "ok"
    assert copy_in(s2, "systems", "crm") == c.systems[0]
    for pid in CRM_PIPES:
        assert meta(original(c.master, "pipes", pid))["slave"] == "s2"
        assert pipe_runtime(c.master, pid)["last-seen"] in (None, "")
    assert "crm" not in ids(s1, "systems") and not set(CRM_PIPES) & ids(s1, "pipes")
    _all_originals_kept(c, c.systems, c.pipes)
    assert_steady(c, moved)


def test_untouched_pipe_edited_while_its_system_is_missing_moves_when_it_returns(nodes):
    c = Cluster(nodes)
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
    s1 = c.slaves["s1"]
    saved = original(c.master, "systems", "crm")
    assert c.master.api("DELETE", "/systems/crm")[0] == 200
    edited = {**c.pipes[0], "description": "edited while crm was missing"}
    # a user upload, no marker; naming a missing system, a node takes it only when forced
    assert c.master.api("PUT", "/pipes/crm-person/config?force=true", edited)[0] == 200
    c.clear()
    c.run(cfg)
    assert not c.writes()["s1"] and copy_in(s1, "pipes", "crm-person") == c.pipes[0]
    assert original(c.master, "pipes", "crm-person") == edited   # nothing lost either
    assert c.master.api("POST", "/systems", [saved])[0] in (200, 201)
    assert c.run(cfg).outcome == "ok"
    assert copy_in(s1, "pipes", "crm-person") == edited
    assert meta(original(c.master, "pipes", "crm-person"))["original_configuration"] == edited
    assert_steady(c, cfg)


def test_kept_outbound_feeder_dataset_is_also_a_deleted_pipes_sink(nodes):
    # erp-out is kept on s2 (its new slave s1 is unreadable); the feeder's dataset
    # local-data on s2 is also the sink of an s2 pipe whose master pipe is deleted.
    c = Cluster(nodes, seed=False)
    writer = {"_id": "erp-local", "type": "pipe",
              "source": {"type": "json", "system": "erp", "url": "x"},
              "sink": {"type": "dataset", "dataset": "local-data2"}}
    c.master.seed(systems=c.systems, pipes=[*c.pipes, writer])
    assert c.run(c.config()).outcome == "ok"
    s2 = c.slaves["s2"]
    start_pipe(c.master, "local-data")
    start_pipe(s2, "orchestrator-feed-local-data")
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
    final = c.config({"s1": ["crm", "erp"], "s2": []})
    assert c.run(final).outcome == "ok"
    assert ids(s2, "pipes") == set() and ids(s2, "systems") == set()
    assert_steady(c, final)


def test_feeder_dropped_when_the_slave_starts_writing_the_dataset_and_back(nodes):
    c = Cluster(nodes)
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
    s2 = c.slaves["s2"]
    start_pipe(c.master, "local-data")
    start_pipe(s2, "orchestrator-feed-local-data")
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


@pytest.mark.parametrize("fault", [{"status": 500}, {"drop": True}, {"drop_after": True}])
def test_move_back_crash_between_reset_and_restore(nodes, fault):
    c = Cluster(nodes)
    assert c.run(c.config()).outcome == "ok"
    s1 = c.slaves["s1"]
    c.sync(s1)
    back = c.config({"s1": [], "s2": ["erp"]})
    # the restoring PUT of crm-person fails (after its reset went through)
    c.master.add_fault(method="PUT", path="^/api/pipes/crm-person/", times=HARD, **fault)
    report = c.run(back)
    assert report.outcome == "failed"
    assert pipe_runtime(c.master, "crm-person")["last-seen"] in (None, "")
    assert "crm-person" in ids(s1, "pipes") and has_dataset(s1, "crm-person")
    _all_originals_kept(c, c.systems, c.pipes)
    clear_faults(c)
    assert c.run(back).outcome == "ok"
    assert original(c.master, "pipes", "crm-person") == c.pipes[0]
    assert not set(CRM_PIPES) & ids(s1, "pipes") and "crm" not in ids(s1, "systems")
    assert_steady(c, back)


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
    _all_originals_kept(c, c.systems, c.pipes)
    clear_faults(c)
    assert c.run(cfg).outcome == "ok"
    assert "reset_pending" not in meta(original(c.master, "pipes", "crm-person"))
    assert pipe_runtime(c.master, "crm-person")["last-seen"] in (None, "")
    assert_steady(c, cfg)


def test_move_between_slaves_then_back_while_a_reset_is_owed(nodes):
    c = Cluster(nodes)
    on_a = c.config()
    assert c.run(on_a).outcome == "ok"
    s1, s2 = c.slaves["s1"], c.slaves["s2"]
    c.sync(s1)
    on_b = c.config({"s1": [], "s2": ["erp", "crm"]})
    c.master.add_fault(method="POST", path="^/api/pipes/crm-order/pump$", status=500)
    assert c.run(on_b).outcome == "failed"
    assert meta(original(c.master, "pipes", "crm-order"))["reset_pending"] is True
    clear_faults(c)
    back = c.config({"s1": [], "s2": ["erp"]})          # the operator gives crm up instead
    assert c.run(back).outcome == "ok"
    for p in c.pipes[:2]:
        assert original(c.master, "pipes", p["_id"]) == p
        assert pipe_runtime(c.master, p["_id"])["last-seen"] in (None, "")
    for s in (s1, s2):
        assert "crm" not in ids(s, "systems") and not set(CRM_PIPES) & ids(s, "pipes")
    assert_steady(c, back)


@pytest.mark.parametrize("fault", [{"status": 500}, {"drop": True}, {"drop_after": True}])
def test_slave_dataset_delete_fault_keeps_the_pipe_for_the_next_run(nodes, fault):
    c = Cluster(nodes)
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
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


def test_untouched_outbound_pipe_keeps_its_feeder_while_env_unreadable(nodes):
    c = Cluster(nodes, seed=False)
    out = {"_id": "env-out", "type": "pipe", "source": {"type": "dataset", "dataset": "local-data"},
           "sink": {"type": "json", "system": "$ENV(erp-sys)", "url": "x"}}
    pipes = [p for p in c.pipes if p["_id"] != "erp-out"] + [out]
    c.master.seed(env={"erp-sys": "erp"}, systems=c.systems, pipes=pipes)
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
    s2 = c.slaves["s2"]
    start_pipe(c.master, "local-data")
    start_pipe(s2, "orchestrator-feed-local-data")
    c.master.add_fault(**ENV_403)
    c.clear()
    c.run(cfg)
    assert not c.writes()["s2"], c.writes()["s2"]
    assert {"env-out", "orchestrator-feed-local-data"} <= ids(s2, "pipes")
    assert has_dataset(s2, "local-data")
    clear_faults(c)
    assert_steady(c, cfg)


# --------------------------------------------------------------------------------------
# Property: random masters, random (placement, fault) steps, then one clean run converges.
# --------------------------------------------------------------------------------------

P_SYSTEMS = ["crm", "erp", "hr"]
P_PIPES = ["p0", "p1", "p2", "p3", "p4", "p5"]
P_SLAVES = ("s1", "s2")
P_NODES = ("master",) + P_SLAVES
SECRET = "round-two-property-secret-0123456789-abcdefgh"


@st.composite
def _scenarios(draw):
    systems = draw(st.lists(st.sampled_from(P_SYSTEMS), min_size=1, unique=True))
    pipes = []
    for pid in draw(st.lists(st.sampled_from(P_PIPES), min_size=1, max_size=5, unique=True)):
        source = draw(st.one_of(
            st.builds(lambda s: {"type": "json", "system": s, "url": "things"},
                      st.sampled_from(systems)),
            # "out-a" is also a sink below: outbound pipes reading what a slave writes
            st.builds(lambda d: {"type": "dataset", "dataset": d}, st.sampled_from(["d1", "out-a"])),
            st.just({"type": "embedded", "entities": [{"_id": "e"}]})))
        sink = draw(st.one_of(
            st.none(),
            st.builds(lambda d: {"type": "dataset", "dataset": d},
                      st.sampled_from(["out-a", "out-b"])),
            st.builds(lambda s: {"type": "json", "system": s, "url": "x"},
                      st.sampled_from(systems))))
        pipe = {"_id": pid, "type": "pipe", "source": source}
        if sink is not None:
            pipe["sink"] = sink
        pipes.append(pipe)
    placement = st.fixed_dictionaries({s: st.sampled_from(("s1", "s2", None, "s1", "s2"))
                                          for s in systems})
    fault = st.one_of(st.none(), st.tuples(
        st.sampled_from(P_NODES), st.integers(0, 2),
        st.sampled_from(["500", "drop", "drop_after"])))
    steps = draw(st.lists(st.tuples(placement, fault), min_size=1, max_size=3))
    return systems, pipes, steps


def _kept_in_master(pipes, placement):
    """Issue 12.2: every managed system a pipe that cannot be placed uses stays in the
    master; repeated, since keeping one may leave another pipe unplaceable."""
    placement = dict(placement)
    while True:
        kept = set()
        for pipe in pipes:
            source, sink = pipe["source"], pipe.get("sink") or {"type": "dataset"}
            src, snk = placement.get(source.get("system")), placement.get(sink.get("system"))
            used = {x for x in (source.get("system"), sink.get("system")) if placement.get(x)}
            ok = (not used or (len({placement[x] for x in used}) == 1
                  and (src or source["type"] == "dataset")
                  and (snk or sink["type"] == "dataset")))
            if not ok:
                kept |= used
        if not kept:
            return placement
        placement.update({x: None for x in kept})


def _moved(placement: dict, system: str) -> dict:
    """The placement with `system` on the next place in (master, s1, s2)."""
    places = (None,) + P_SLAVES
    return {**placement, system: places[(places.index(placement.get(system)) + 1) % 3]}


def _oracle(pipes, placement):
    """Contract 2-3 and the design's feeder rule, written out independently."""
    placement = _kept_in_master(pipes, placement)
    on = {s: {"systems": set(), "pipes": set(), "feeds": set(), "writes": set()}
          for s in P_SLAVES}
    for system, slave in placement.items():
        if slave:
            on[slave]["systems"].add(system)
    outbound = []
    for pipe in pipes:
        source, sink = pipe["source"], pipe.get("sink") or {"type": "dataset",
                                                           "dataset": pipe["_id"]}
        src = placement.get(source.get("system")) if source["type"] == "json" else None
        snk = placement.get(sink.get("system")) if sink["type"] == "json" else None
        if src and snk and src != snk:
            continue
        if src and (sink["type"] == "dataset" or snk == src):
            on[src]["pipes"].add(pipe["_id"])
            if sink["type"] == "dataset":
                on[src]["writes"].add(sink["dataset"])
        elif not src and snk and source["type"] == "dataset":
            on[snk]["pipes"].add(pipe["_id"])
            outbound.append((snk, source["dataset"]))
    for slave, dataset in outbound:
        if dataset not in on[slave]["writes"]:
            on[slave]["feeds"].add(dataset)
    for slave in P_SLAVES:
        if on[slave]["feeds"]:
            on[slave]["systems"].add("orchestrator-master")
            on[slave]["pipes"] |= {"orchestrator-feed-" + d for d in on[slave]["feeds"]}
    return on


@pytest.mark.long
def test_random_placement_and_fault_steps_then_a_clean_run_converges(nodes, fault_tally):
    started = {nid: nodes(jwt_secret=SECRET) for nid in P_NODES}
    master = started["master"]
    watch: dict = {"expected": None, "violations": []}

    def check(method: str, path: str, status: int) -> None:
        if watch["expected"] is not None:
            watch["violations"].extend(holds_every_original(master, watch["expected"]))

    def config(placement):
        return config_for(master, {s: (started[s], [k for k, v in sorted(placement.items())
                                                   if v == s]) for s in P_SLAVES})

    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(_scenarios())
    # A slave writing the dataset an outbound pipe on it reads (no feeder), moved with a fault.
    @example((["crm", "erp"], [
        {"_id": "p0", "type": "pipe", "source": {"type": "json", "system": "crm", "url": "t"},
         "sink": {"type": "dataset", "dataset": "out-a"}},
        {"_id": "p1", "type": "pipe", "source": {"type": "dataset", "dataset": "out-a"},
         "sink": {"type": "json", "system": "crm", "url": "x"}},
        {"_id": "p2", "type": "pipe", "source": {"type": "dataset", "dataset": "out-a"},
         "sink": {"type": "json", "system": "erp", "url": "x"}}],
        [({"crm": "s1", "erp": "s2"}, None), ({"crm": "s2", "erp": "s1"}, ("master", 3, "500")),
         ({"crm": "s1", "erp": "s1"}, ("s1", 1, "drop_after"))]))
    def check_example(drawn):
        systems, pipes, steps = drawn
        for n in started.values():
            n.reset()   # as if started afresh (faults, request log, knobs, observers too)
            n.add_observer(check)
        master.seed(systems=[{"_id": s, "type": "system:url", "base_url": "http://x/"}
                             for s in systems], pipes=pipes)
        first = latest_originals(master)
        watch["expected"], watch["violations"] = first, []
        try:
            placement: dict = {s: None for s in systems}     # what the seed places
            for drawn, fault in steps:
                armed, placement = None, drawn
                if fault is not None:
                    # On a write this step makes, found by a probe run from the same state;
                    # when the drawn placement writes nothing, one system moves on.
                    candidates = [drawn] + [_moved(drawn, s) for s in systems]
                    placement, armed = arm_first_writing(
                        started, candidates, lambda p: orchestrator.run(config(p)), *fault,
                        fault_tally)
                report = orchestrator.run(config(placement))
                assert report.outcome in ("ok", "failed"), report.as_json()
                if armed is not None:
                    armed.settle(started, report, fault_tally)
                for n in started.values():
                    n.emulator("DELETE", "/faults")
            final = config(placement)
            report = orchestrator.run(final)
            assert all(a["status"] == "done" for a in report.actions), report.as_json()
            for n in started.values():
                n.emulator("DELETE", "/requests")
            again = orchestrator.run(final)
            assert again.actions == [], again.as_json()
            assert not [w for n in started.values() for w in writes(n.requests())]
        finally:
            watch["expected"] = None
        assert not watch["violations"], watch["violations"][:3]
        assert latest_originals(master) == first
        want = _oracle(pipes, placement)
        for slave in P_SLAVES:
            held_systems = originals(started[slave], "systems")
            held_pipes = originals(started[slave], "pipes")
            assert set(held_systems) == want[slave]["systems"], (slave, held_systems.keys())
            assert set(held_pipes) == want[slave]["pipes"], (slave, held_pipes.keys())
            for pid in held_pipes.keys() & {p["_id"] for p in pipes}:
                assert held_pipes[pid] == as_copy(first["pipes", pid])
            for sid in held_systems.keys() & set(systems):
                assert held_systems[sid] == as_copy(first["systems", sid])
    check_example()
    assert fault_tally.fired == fault_tally.armed > 0
