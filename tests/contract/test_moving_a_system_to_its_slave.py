"""Contract 3: moving a system and its pipes to its slave (end state read from the nodes)."""
from __future__ import annotations

import pytest

from contract_helpers import (CRM_PIPES, Cluster, assert_steady, cannot_run, copy_in, described,
                              entities, has_dataset, ids, meta, original, pipe, put, run_as_planned,
                              start_pipe, the_original)
from orchestration import pipe_runtime


def test_3_1_slave_gets_the_system_with_the_masters_original(nodes):
    c = Cluster(nodes)
    report = c.run(c.config())
    assert report.outcome == "ok", report.errors
    assert copy_in(c.slaves["s1"], "systems", "crm") == c.systems[0]
    assert copy_in(c.slaves["s2"], "systems", "erp") == c.systems[1]
    # each slave gets only its own system
    assert "erp" not in ids(c.slaves["s1"], "systems")
    assert "crm" not in ids(c.slaves["s2"], "systems")


def test_3_2_master_system_reads_the_slaves_datasets(nodes):
    c = Cluster(nodes)
    cfg = c.placed()
    s1 = c.slaves["s1"]
    crm = original(c.master, "systems", "crm")
    assert crm["type"] == "system:url"
    assert crm["url_pattern"] == f"{s1.url}/api/datasets/%s/entities?history=false&populated=true"
    assert crm["authentication"] == "jwt"
    assert crm["jwt_token"] == cfg.slave("s1").jwt_token.get_secret_value()
    assert crm["verify_ssl"] is True
    assert crm["read_timeout"] >= 60
    m = meta(crm)
    assert m["slave"] == "s1"
    assert m["url"].startswith(s1.url) and "crm" in m["url"]
    assert m["original_configuration"] == c.systems[0]


def test_3_3_inbound_pipe_becomes_a_synchronising_pipe(nodes):
    c = Cluster(nodes)
    c.placed()
    s1 = c.slaves["s1"]
    for want in c.pipes:
        if want["_id"] in CRM_PIPES:
            assert copy_in(s1, "pipes", want["_id"]) == want
    sync = original(c.master, "pipes", "crm-person")
    assert sync["source"] == {"type": "json", "system": "crm", "url": "crm-person",
                              "supports_since": True, "is_chronological": True}
    assert sync["sink"] == {"type": "dataset", "dataset": "crm-person"}
    assert sync["add_namespaces"] is False
    assert 300 <= sync["pump"]["schedule_interval"] < 600
    assert meta(sync)["slave"] == "s1"
    assert meta(sync)["original_configuration"] == c.pipes[0]
    assert s1.url in meta(sync)["url"]
    assert "generated" in sync["description"].lower() and "not edit" in sync["description"].lower()
    # master pipes reading the dataset are untouched and still valid
    assert original(c.master, "pipes", "person-report") == c.pipes[2]
    assert pipe_runtime(c.master, "person-report")["is-valid-config"] is True
    assert pipe_runtime(c.master, "crm-person")["is-valid-config"] is True


def test_3_3_sink_dataset_not_named_after_its_pipe(nodes):
    c = Cluster(nodes)
    c.placed()
    sync = original(c.master, "pipes", "crm-order")
    assert sync["source"]["url"] == "orders"
    assert sync["sink"] == {"type": "dataset", "dataset": "orders"}
    # data flows into "orders", and the master pipe that reads "orders" keeps working
    start_pipe(c.slaves["s1"], "crm-order")
    assert [e["_id"] for e in entities(c.slaves["s1"], "orders")] == ["o1"]
    start_pipe(c.master, "crm-order")
    start_pipe(c.master, "order-report")
    assert [e["_id"] for e in entities(c.master, "orders")] == ["o1"]
    assert [e["_id"] for e in entities(c.master, "order-report")] == ["o1"]
    assert not has_dataset(c.master, "crm-order")


def test_3_3_data_flows_from_slave_pipe_through_sync_pipe_into_master_dataset(nodes):
    c = Cluster(nodes)
    c.placed()
    s1 = c.slaves["s1"]
    start_pipe(s1, "crm-person")
    assert {e["_id"] for e in entities(s1, "crm-person")} == {"a", "b"}
    assert not has_dataset(c.master, "crm-person")
    start_pipe(c.master, "crm-person")
    got = {e["_id"]: e.get("name") for e in entities(c.master, "crm-person")}
    assert got == {"a": "Ann", "b": "Bob"}
    assert pipe_runtime(c.master, "crm-person")["last-seen"] is not None
    start_pipe(c.master, "person-report")
    assert {e["_id"] for e in entities(c.master, "person-report")} == {"a", "b"}


def test_3_3_use_binary_source(nodes):
    c = Cluster(nodes)
    c.placed(master_extra={"use_binary_source": True})
    sync = original(c.master, "pipes", "crm-person")
    assert sync["source"]["type"] == "binary"
    assert sync["source"]["supports_since"] is True
    start_pipe(c.slaves["s1"], "crm-person")
    start_pipe(c.master, "crm-person")
    assert {e["_id"] for e in entities(c.master, "crm-person")} == {"a", "b"}


def _intervals(c: Cluster) -> dict[str, int]:
    return {pid: original(c.master, "pipes", pid)["pump"]["schedule_interval"]
            for pid in c.extra}


def test_3_3_stagger_is_stable_spread_and_within_range(nodes):
    c = Cluster(nodes)
    c.extra = [f"crm-extra-{i:02d}" for i in range(24)]
    status, _ = c.master.api("POST", "/pipes", [
        {"_id": pid, "type": "pipe", "source": {"type": "json", "system": "crm", "url": pid}}
        for pid in c.extra])
    assert status in (200, 201)
    slave = {"s1": {"sync_interval": 100, "sync_interval_stagger_range": 50}}
    cfg = c.placed(slave_extra=slave)
    first = _intervals(c)
    assert all(100 <= v < 150 for v in first.values()), first
    assert len(set(first.values())) >= 8, "stagger should spread the pipes over the range"
    c.clear()
    assert c.run(cfg).outcome == "ok"
    assert _intervals(c) == first and c.no_writes()
    # a fresh installation derives the same stagger from the same pipe ids
    d = Cluster(nodes)
    d.extra = c.extra
    d.master.api("POST", "/pipes", [
        {"_id": pid, "type": "pipe", "source": {"type": "json", "system": "crm", "url": pid}}
        for pid in d.extra])
    assert d.run(d.config(slave_extra=slave)).outcome == "ok"
    assert _intervals(d) == first


def test_3_3_stagger_range_zero_and_default(nodes):
    c = Cluster(nodes)
    assert c.run(c.config(slave_extra={"s1": {"sync_interval": 120,
                                              "sync_interval_stagger_range": 0}})).outcome == "ok"
    for pid in CRM_PIPES:
        assert original(c.master, "pipes", pid)["pump"]["schedule_interval"] == 120
    # default range = sync_interval
    c.placed(slave_extra={"s1": {"sync_interval": 120}})
    for pid in CRM_PIPES:
        assert 120 <= original(c.master, "pipes", pid)["pump"]["schedule_interval"] < 240


def test_3_4_outbound_pipe_and_feeder(nodes):
    c = Cluster(nodes)
    cfg = c.placed()
    s2 = c.slaves["s2"]
    assert copy_in(s2, "pipes", "erp-out") == c.pipes[5]
    # the master's outbound pipe is a placeholder that cannot run (pump off), keeping the original
    placeholder = original(c.master, "pipes", "erp-out")
    assert meta(placeholder)["original_configuration"] == c.pipes[5]
    assert meta(placeholder)["slave"] == "s2"
    assert cannot_run(c.master, "erp-out")
    # the feeder: a system:url to the master's datasets and a pipe copying "local-data"
    feeders = [p for p in (pipe(s2, pid) for pid in ids(s2, "pipes")) if p
               and p["config"]["effective"]["sink"].get("dataset") == "local-data"]
    assert len(feeders) == 1
    feeder = feeders[0]["config"]["effective"]
    fsys = copy_in(s2, "systems", feeder["source"]["system"])
    assert fsys["type"] == "system:url" and fsys["url_pattern"].startswith(c.master.url + "/api/datasets/")
    assert fsys["jwt_token"] == cfg.master.jwt_token.get_secret_value()
    # data flows master dataset -> feeder -> slave dataset the outbound pipe reads
    start_pipe(c.master, "local-data")
    start_pipe(s2, feeders[0]["_id"])
    assert {e["_id"]: e["v"] for e in entities(s2, "local-data")} == {"x": 1, "y": 2}
    # no feeder where no outbound pipe needs one
    assert ids(c.slaves["s1"], "systems") == {"crm"}


def test_3_5_slave_written_before_master_points_at_it(nodes):
    c = Cluster(nodes)
    c.placed()
    order = c.global_writes()

    def first(node, method, pred):
        return min(i for i, (n, m, p, _) in enumerate(order) if n == node and m == method and pred(p))
    slave_systems = first("s1", "POST", lambda p: p == "/api/systems")
    slave_pipes = first("s1", "POST", lambda p: p == "/api/pipes")
    assert slave_systems < slave_pipes
    assert slave_systems < first("master", "PUT", lambda p: p == "/api/systems/crm/config")
    for pid in CRM_PIPES:
        assert slave_pipes < first("master", "PUT", lambda p: p == f"/api/pipes/{pid}/config")


def _originals_kept(c: Cluster) -> None:
    for cfg in c.systems:
        assert the_original(c.master, "systems", cfg["_id"]) == cfg, cfg["_id"]
    for cfg in c.pipes:
        assert the_original(c.master, "pipes", cfg["_id"]) == cfg, cfg["_id"]


@pytest.mark.parametrize("accepted", [1, 3])
def test_3_5_original_never_lost_when_the_master_fails_halfway(nodes, accepted):
    c = Cluster(nodes)
    cfg = c.config()
    # the master takes `accepted` writes, then fails every write after them
    c.master.add_fault(method="*", path="^/api/", writes_only=True, skip=accepted, times=1000,
                       status=500)
    report = c.run(cfg)
    assert report.outcome == "failed"
    _originals_kept(c)
    c.master.emulator("DELETE", "/faults")
    assert c.run(cfg).outcome == "ok"
    _originals_kept(c)
    assert meta(original(c.master, "pipes", "crm-person"))["slave"] == "s1"


def test_3_5_master_untouched_when_the_slave_write_fails(nodes):
    c = Cluster(nodes)
    c.slaves["s1"].add_fault(method="POST", path="^/api/pipes$", times=1000, status=500)
    report = c.run(c.config())
    assert report.outcome == "failed"
    for cfg in c.pipes[:2]:
        # the slave does not hold the pipe, so the master must still hold it as it was
        assert original(c.master, "pipes", cfg["_id"]) == cfg
    _originals_kept(c)
    got = c.writes()["master"]
    assert not any(w["path"].startswith("/api/pipes/crm-") for w in got), got


def test_3_3_first_move_syncs_the_slave_dataset_from_its_start(nodes):
    c = Cluster(nodes)
    # the master ran its pipe against the source for a while before the orchestrator came
    put(c.master, "systems", "crm", {**c.systems[0], "url_pattern":
                                     c.src.url + "/api/datasets/%s/entities?history=false"})

    def source(version: str) -> None:
        put(c.src, "pipes", "people", {"_id": "people", "type": "pipe", "source": {
            "type": "embedded", "entities": [{"_id": "a", "name": version},
                                             {"_id": "b", "name": version}]}})
        start_pipe(c.src, "people")
    for version in ("v1", "v2", "v3"):
        source(version)
        start_pipe(c.master, "crm-person")
    c.placed()
    source("v4")
    start_pipe(c.slaves["s1"], "crm-person")
    start_pipe(c.master, "crm-person")
    latest = {e["_id"]: e["name"] for e in entities(c.master, "crm-person")}
    assert latest == {"a": "v4", "b": "v4"}


# An attack from review round 1, survived.
def test_sink_dataset_equal_to_another_pipes_on_different_slaves(nodes):
    c = Cluster(nodes, seed=False)
    from_erp = {"_id": "erp-in", "type": "pipe",
                "source": {"type": "json", "system": "erp", "url": "x"},
                "sink": {"type": "dataset", "dataset": "orders"}}
    c.master.seed(systems=c.systems, pipes=[*c.pipes, from_erp])
    cfg = c.placed()
    for pid, slave in (("crm-order", "s1"), ("erp-in", "s2")):
        sync = original(c.master, "pipes", pid)
        assert sync["sink"] == {"type": "dataset", "dataset": "orders"}
        assert meta(sync)["slave"] == slave
    c.clear()
    assert c.run(cfg).outcome == "ok" and c.no_writes(), c.writes()


# An attack from review round 1, survived.
def test_use_binary_source_toggled_rewrites_without_reset_then_is_steady(nodes):
    c = Cluster(nodes)
    cfg = c.placed()
    start_pipe(c.slaves["s1"], "crm-person")
    start_pipe(c.master, "crm-person")
    seen = pipe_runtime(c.master, "crm-person")["last-seen"]
    assert seen not in (None, "")
    binary = c.config(master_extra={"use_binary_source": True})
    c.clear()
    report = c.run(binary)
    assert report.outcome == "ok", report.errors
    assert original(c.master, "pipes", "crm-person")["source"]["type"] == "binary"
    assert pipe_runtime(c.master, "crm-person")["last-seen"] == seen
    assert not c.writes()["s1"] and not c.writes()["s2"]
    c.clear()
    assert c.run(binary).outcome == "ok" and c.no_writes(), c.writes()
    assert c.run(cfg).outcome == "ok"
    assert original(c.master, "pipes", "crm-person")["source"]["type"] == "json"


# An attack from review round 4, survived.
@pytest.mark.parametrize("stagger", [0, 1])
def test_stagger_range_0_and_1_mean_no_stagger_and_changing_it_rewrites_without_reset(nodes,
                                                                                    stagger):
    c = Cluster(nodes)
    extra = {"s1": {"sync_interval": 1, "sync_interval_stagger_range": stagger}}
    cfg = c.config(slave_extra=extra)
    run_as_planned(c, cfg)
    for pid in CRM_PIPES:
        assert original(c.master, "pipes", pid)["pump"]["schedule_interval"] == 1
    for pid in CRM_PIPES:
        start_pipe(c.slaves["s1"], pid)
        start_pipe(c.master, pid)
    assert_steady(c, cfg)
    wider = c.config(slave_extra={"s1": {"sync_interval": 1,
                                         "sync_interval_stagger_range": 1000}})
    report = run_as_planned(c, wider)
    assert not [a for a in described(report) if a[0] == "reset-pipe"]
    for pid in CRM_PIPES:
        assert 1 <= original(c.master, "pipes", pid)["pump"]["schedule_interval"] < 1001
        assert pipe_runtime(c.master, pid)["last-seen"] not in (None, "")
    assert_steady(c, wider)
