"""Contract 5: moving a system from slave A to slave B (reset, clean A, and in that order)."""
from __future__ import annotations

from contract_helpers import (CRM_PIPES, Cluster, assert_originals_kept, copy_in, entities,
                              has_dataset, ids, meta, original, pipe_runtime, put, start_pipe)

A_TO_B = {"s1": [], "s2": ["erp", "crm"]}


def _synced_on_a(c: Cluster):
    cfg = c.placed()
    a = c.slaves["s1"]
    for pid in CRM_PIPES:
        start_pipe(a, pid)
        start_pipe(c.master, pid)
        assert pipe_runtime(c.master, pid)["last-seen"] not in (None, "")
    assert {e["_id"] for e in entities(c.master, "crm-person")} == {"a", "b"}
    return cfg


def _change_source(c: Cluster) -> None:
    """The source system's data changes: only a full re-read from B would find `a` v2."""
    put(c.src, "pipes", "people", {"_id": "people", "type": "pipe", "source": {
        "type": "embedded", "entities": [{"_id": "a", "name": "Ann v2"}]}})
    start_pipe(c.src, "people")


def test_5_move_resets_sync_pipes_and_cleans_the_old_slave_after_the_master_points_at_b(nodes):
    c = Cluster(nodes)
    _synced_on_a(c)
    a, b = c.slaves["s1"], c.slaves["s2"]
    assert has_dataset(a, "crm-person") and has_dataset(a, "orders")
    c.clear()
    report = c.run(c.config(A_TO_B))
    assert report.outcome == "ok", report.errors

    # B holds the system and its pipes, from the originals in the master's metadata
    assert copy_in(b, "systems", "crm") == c.systems[0]
    for cfg in c.pipes[:2]:
        assert copy_in(b, "pipes", cfg["_id"]) == cfg
    # the master reads B, and each synchronising pipe was reset
    crm = original(c.master, "systems", "crm")
    assert crm["url_pattern"].startswith(b.url + "/api/datasets/")
    assert meta(crm)["slave"] == "s2"
    for pid in CRM_PIPES:
        sync = original(c.master, "pipes", pid)
        assert meta(sync)["slave"] == "s2" and b.url in meta(sync)["url"]
        assert not meta(sync).get("reset_pending")
        assert pipe_runtime(c.master, pid)["last-seen"] in (None, "")
    # A is clean: no system, no pipes, no sink datasets
    assert "crm" not in ids(a, "systems")
    assert not ids(a, "pipes") & set(CRM_PIPES)
    assert not has_dataset(a, "crm-person") and not has_dataset(a, "orders")

    # order, across all nodes: nothing of crm deleted in A before the master points at B.
    # Per component: the master's system crm and the pipe P (rewritten and reset) before A's
    # copy of P and P's sink dataset; everything of crm in the master before A's system crm.
    order = c.global_writes()
    a_deletes = {p: i for i, (n, m, p, _) in enumerate(order) if n == "s1" and m == "DELETE"}
    assert set(a_deletes) == {"/api/pipes/crm-person", "/api/pipes/crm-order",
                              "/api/datasets/crm-person", "/api/datasets/orders",
                              "/api/systems/crm"}, order
    master = {}
    for i, (n, m, p, _) in enumerate(order):
        if n == "master":
            master.setdefault(p, []).append((m, i))
    assert [m for m, _ in master["/api/systems/crm/config"]] == ["PUT"]
    system_put = master["/api/systems/crm/config"][0][1]
    assert system_put < min(a_deletes.values())
    for pid, dataset in (("crm-person", "crm-person"), ("crm-order", "orders")):
        assert master[f"/api/pipes/{pid}/pump"], f"{pid} was not reset"
        last = max(i for path in (f"/api/pipes/{pid}/config", f"/api/pipes/{pid}/pump")
                   for _, i in master[path])
        # The dataset before its pipe: a crash in between leaves the pipe, which is how the
        # next run finds the dataset to delete.
        assert last < a_deletes[f"/api/datasets/{dataset}"] < a_deletes[f"/api/pipes/{pid}"]
    crm_master = [i for path, hits in master.items() if "crm" in path for _, i in hits]
    assert max(crm_master) < a_deletes["/api/systems/crm"]
    # and B got its copies before the master pointed at them (3.5)
    def at(node, method, path):
        return min(i for i, (n, m, p, _) in enumerate(order) if (n, m, p) == (node, method, path))
    assert at("s2", "POST", "/api/systems") < at("master", "PUT", "/api/systems/crm/config")
    for pid in CRM_PIPES:
        assert at("s2", "POST", "/api/pipes") < at("master", "PUT", f"/api/pipes/{pid}/config")

    # resync works: B's data, re-read from the start, reaches the master
    _change_source(c)
    start_pipe(b, "crm-person")
    start_pipe(c.master, "crm-person")
    assert {e["_id"]: e["name"] for e in entities(c.master, "crm-person")}["a"] == "Ann v2"

    c.clear()
    c.placed(A_TO_B)
    assert c.no_writes(), c.writes()


def test_5_move_that_breaks_before_the_reset_finishes_it_next_run(nodes):
    c = Cluster(nodes)
    _synced_on_a(c)
    a = c.slaves["s1"]
    c.master.add_fault(method="POST", path="^/api/pipes/crm-person/pump$", times=1, status=500)
    report = c.run(c.config(A_TO_B))
    assert report.outcome == "failed"
    # the reset did not happen: A still holds that pipe and its dataset
    assert "crm-person" in ids(a, "pipes") and has_dataset(a, "crm-person")
    # the master kept the original either way
    assert meta(original(c.master, "pipes", "crm-person"))["original_configuration"] == c.pipes[0]

    report = c.run(c.config(A_TO_B))
    assert report.outcome == "ok", report.errors
    assert pipe_runtime(c.master, "crm-person")["last-seen"] in (None, "")
    assert not meta(original(c.master, "pipes", "crm-person")).get("reset_pending")
    assert not ids(a, "pipes") and not ids(a, "systems")
    assert not has_dataset(a, "crm-person")
    _change_source(c)
    start_pipe(c.slaves["s2"], "crm-person")
    start_pipe(c.master, "crm-person")
    assert {e["_id"]: e["name"] for e in entities(c.master, "crm-person")}["a"] == "Ann v2"


def test_5_nothing_deleted_in_a_when_b_cannot_take_the_system(nodes):
    c = Cluster(nodes)
    _synced_on_a(c)
    a, b = c.slaves["s1"], c.slaves["s2"]
    b.add_fault(method="POST", path="^/api/(systems|pipes)$", times=1000, status=500)
    report = c.run(c.config(A_TO_B))
    assert report.outcome == "failed"
    assert "crm" in ids(a, "systems") and set(CRM_PIPES) <= ids(a, "pipes")
    assert has_dataset(a, "crm-person") and has_dataset(a, "orders")
    # the master still reads A
    assert meta(original(c.master, "systems", "crm"))["slave"] == "s1"
    assert not any(w["method"] == "DELETE" for w in c.writes()["s1"])


def test_5_nothing_moves_to_a_slave_that_cannot_be_read(nodes):
    c = Cluster(nodes)
    _synced_on_a(c)
    a, b = c.slaves["s1"], c.slaves["s2"]
    c.clear()
    b.add_fault(method="GET", path="^/api/systems$", times=10, status=500)
    report = c.run(c.config(A_TO_B))
    b.emulator("DELETE", "/faults")
    assert report.outcome == "failed"
    assert c.writes()["s2"] == [] and c.writes()["s1"] == []
    assert meta(original(c.master, "systems", "crm"))["slave"] == "s1"
    for pid in CRM_PIPES:
        assert meta(original(c.master, "pipes", pid))["slave"] == "s1"
    assert "crm" in ids(a, "systems") and has_dataset(a, "crm-person")
    # once B answers again, the move happens
    c.placed(A_TO_B)
    assert meta(original(c.master, "systems", "crm"))["slave"] == "s2"
    assert "crm" not in ids(a, "systems")


# An attack from review round 1, survived.
def test_back_and_forth_quickly_with_a_failed_cleanup_in_between(nodes):
    c = Cluster(nodes)
    on_a, on_b = c.config({"s1": ["crm"], "s2": ["erp"]}), c.config({"s1": [], "s2": ["erp", "crm"]})
    assert c.run(on_a).outcome == "ok"
    a, b = c.slaves["s1"], c.slaves["s2"]
    c.sync(a)
    a.add_fault(method="DELETE", path="^/api/", status=400, times=100)   # A cannot be cleaned
    report = c.run(on_b)
    assert report.outcome == "failed"
    assert meta(original(c.master, "systems", "crm"))["slave"] == "s2"
    a.emulator("DELETE", "/faults")
    report = c.run(on_a)                                                  # and straight back
    assert report.outcome == "ok", report.errors
    assert meta(original(c.master, "systems", "crm"))["slave"] == "s1"
    for pid in CRM_PIPES:
        sync = original(c.master, "pipes", pid)
        assert meta(sync)["slave"] == "s1" and "reset_pending" not in meta(sync)
        assert pipe_runtime(c.master, pid)["last-seen"] in (None, "")   # re-reads from A
    assert "crm" not in ids(b, "systems") and not set(CRM_PIPES) & ids(b, "pipes")
    assert set(CRM_PIPES) <= ids(a, "pipes")
    start_pipe(a, "crm-person")
    start_pipe(c.master, "crm-person")
    assert {e["_id"] for e in entities(c.master, "crm-person")} == {"a", "b"}
    assert_originals_kept(c, c.systems, c.pipes)
    c.clear()
    assert c.run(on_a).outcome == "ok" and c.no_writes(), c.writes()
