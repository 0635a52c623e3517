"""Contract 2: which pipes belong to a managed system (judged by the effective config)."""
from __future__ import annotations


from contract_helpers import (ODD_ENV, Cluster, assert_steady, copy_in, entities, ids, meta,
                              original, run_as_planned, start_pipe)


def test_2_inbound_by_source_system_outbound_by_sink_system_others_stay(nodes):
    c = Cluster(nodes)
    c.placed()
    assert {"crm-person", "crm-order"} == ids(c.slaves["s1"], "pipes")
    assert "erp-out" in ids(c.slaves["s2"], "pipes")
    for stays in ("person-report", "order-report", "local-data"):
        assert original(c.master, "pipes", stays) == next(p for p in c.pipes if p["_id"] == stays)
        assert not any(stays in ids(s, "pipes") for s in c.slaves.values())


def test_2_system_named_through_env_is_judged_by_the_effective_config(nodes):
    c = Cluster(nodes, seed=False)
    via_env = {"_id": "env-person", "type": "pipe",
               "source": {"type": "json", "system": "$ENV(crm-system)", "url": "people"}}
    c.master.seed(env={"crm-system": "crm"}, systems=c.systems, pipes=[via_env])
    report = c.run(c.config({"s1": ["crm"]}))
    assert report.outcome == "ok", report.errors
    s1 = c.slaves["s1"]
    assert copy_in(s1, "pipes", "env-person") == via_env
    assert meta(original(c.master, "pipes", "env-person"))["original_configuration"] == via_env
    start_pipe(s1, "env-person")          # the env var was copied to the slave (contract 7)
    start_pipe(c.master, "env-person")
    assert {e["_id"] for e in entities(c.master, "env-person")} == {"a", "b"}
    c.clear()
    assert c.run(c.config({"s1": ["crm"]})).outcome == "ok" and c.no_writes(), c.writes()


def test_2_pipe_touching_systems_on_two_slaves_is_an_error_every_run_and_untouched(nodes):
    c = Cluster(nodes)
    bridge = {"_id": "crm-to-erp", "type": "pipe",
              "source": {"type": "json", "system": "crm", "url": "people"},
              "sink": {"type": "json", "system": "erp", "url": "people"}}
    status, _ = c.master.api("POST", "/pipes", [bridge])
    assert status in (200, 201)
    cfg = c.config()
    for _ in range(2):
        c.clear()
        report = c.run(cfg)
        assert report.outcome == "failed"
        assert any("crm-to-erp" in e for e in report.errors), report.errors
        assert original(c.master, "pipes", "crm-to-erp") == bridge
        assert not any(w["path"].startswith("/api/pipes/crm-to-erp") for w in c.writes()["master"])
        assert not any("crm-to-erp" in ids(s, "pipes") for s in c.slaves.values())
    # Issue 12.2: the systems it needs stay in the master (the pipe must never call a
    # system:url reading a slave), and so do their other pipes; both runs say why.
    for system in ("crm", "erp"):
        assert original(c.master, "systems", system) == next(
            s for s in c.systems if s["_id"] == system)
        assert any(e.startswith(f"system {system}: stays in the master") for e in report.errors)
        assert not any(system in ids(s, "systems") for s in c.slaves.values())
    assert ids(c.slaves["s1"], "pipes") == set()
    assert c.no_writes(), c.writes()


def test_2_pipe_touching_two_systems_on_the_same_slave_is_placed(nodes):
    c = Cluster(nodes)
    both = {"_id": "crm-to-erp", "type": "pipe",
            "source": {"type": "json", "system": "crm", "url": "people"},
            "sink": {"type": "json", "system": "erp", "url": "people"}}
    c.master.api("POST", "/pipes", [both])
    report = c.run(c.config({"s1": ["crm", "erp"]}))
    assert report.outcome == "ok", report.errors
    assert copy_in(c.slaves["s1"], "pipes", "crm-to-erp") == both
    assert meta(original(c.master, "pipes", "crm-to-erp"))["original_configuration"] == both


# An attack from review round 1, survived.
def test_env_named_system_switching_slaves_moves_the_pipe(nodes):
    c = Cluster(nodes, seed=False)
    via_env = {"_id": "env-in", "type": "pipe",
               "source": {"type": "json", "system": "$ENV(which)", "url": "people"}}
    c.master.seed(env={"which": "crm"}, systems=c.systems, pipes=[*c.pipes, via_env])
    cfg = c.placed()
    assert meta(original(c.master, "pipes", "env-in"))["slave"] == "s1"
    assert c.master.api("POST", "/env", {"which": "erp"})[0] == 200
    assert c.run(cfg).outcome == "ok"
    assert meta(original(c.master, "pipes", "env-in"))["slave"] == "s2"
    assert "env-in" not in ids(c.slaves["s1"], "pipes")
    assert copy_in(c.slaves["s2"], "pipes", "env-in") == via_env


# An attack from review round 4, survived.
def test_env_named_sink_whose_value_is_an_object_cannot_be_placed_and_is_not_lost(nodes):
    weird = {"_id": "crm-weird", "type": "pipe",
             "source": {"type": "json", "system": "crm", "url": "people"},
             "sink": {"type": "dataset", "dataset": "$ENV(obj)"}}
    c = Cluster(nodes, seed=False)
    c.master.seed(systems=c.systems, pipes=[*c.pipes, weird], env=ODD_ENV)
    cfg = c.config()
    report = run_as_planned(c, cfg, outcome=None)
    assert original(c.master, "pipes", "crm-weird") == weird
    # It cannot be placed: it stays in the master, as the user wrote it, and the run says so.
    assert "crm-weird" not in ids(c.slaves["s1"], "pipes")
    assert report.outcome == "failed", report.as_json()
    assert any(e.startswith("pipe crm-weird: cannot be placed") for e in report.errors), \
        report.errors
    assert_steady(c, cfg)
