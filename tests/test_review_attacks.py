"""Review attacks: inputs and sequences meant to break the orchestrator.

Each test asserts the behaviour the contract (or a user's reasonable expectation) asks for.
The first group are bugs the review found (then xfail, now fixed); each asserts the correct
behaviour. The others are attacks the implementation survived, kept as regression tests.
"""
from __future__ import annotations

import json
import logging

import pytest

from contract_helpers import (copy_in, CRM_PIPES, YEAR, Cluster, entities, has_dataset, ids, meta,
                              original, pipe_runtime, put, start_pipe, the_original)
from orchestration import originals
from service.config import ConfigError, load_config


def _datasets(node) -> set[str]:
    return {d["_id"] for d in node.api("GET", "/datasets")[1]}


def _everything(node) -> tuple:
    return originals(node, "pipes"), originals(node, "systems"), _datasets(node)


def _all_originals_kept(c: Cluster, systems: list[dict], pipes: list[dict]) -> None:
    for s in systems:
        assert the_original(c.master, "systems", s["_id"]) == s, s["_id"]
    for p in pipes:
        assert the_original(c.master, "pipes", p["_id"]) == p, p["_id"]


# --------------------------------------------------------------------------------------
# Bugs the review found, fixed since: each asserts the correct behaviour.
# --------------------------------------------------------------------------------------

def test_managed_system_deleted_from_master_after_move_deletes_nothing(nodes):
    c = Cluster(nodes)
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
    s1 = c.slaves["s1"]
    start_pipe(s1, "crm-person")
    assert has_dataset(s1, "crm-person")
    # the user (or a half-broken master listing) drops the managed system
    assert c.master.api("DELETE", "/systems/crm")[0] == 200
    report = c.run(cfg)
    assert any("crm" in w for w in report.warnings), report.warnings
    assert copy_in(s1, "systems", "crm") == c.systems[0]     # the only copy left
    assert {"crm-person", "crm-order"} <= ids(s1, "pipes")
    assert has_dataset(s1, "crm-person")


def test_master_env_unreadable_does_not_move_env_named_pipes_back(nodes):
    c = Cluster(nodes, seed=False)
    via_env = {"_id": "env-person", "type": "pipe",
               "source": {"type": "json", "system": "$ENV(crm-system)", "url": "people"}}
    c.master.seed(env={"crm-system": "crm"}, systems=c.systems, pipes=[*c.pipes, via_env])
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
    s1 = c.slaves["s1"]
    start_pipe(s1, "env-person")
    assert has_dataset(s1, "env-person")
    before = _everything(s1)
    c.master.add_fault(method="GET", path="^/api/env$", status=403, times=100)
    report = c.run(cfg)
    assert any("env" in w for w in report.warnings), report.warnings
    assert _everything(s1) == before
    assert meta(original(c.master, "pipes", "env-person"))["slave"] == "s1"


def test_user_system_named_like_the_feeder_system(nodes):
    # A slave may not manage a system named like the feeder system: refused up front, in
    # one line naming the field, before the slave's copy could be replaced by the feeder.
    c = Cluster(nodes, seed=False)
    with pytest.raises(ConfigError, match=r"^SLAVE_NODES\[1\]\.managed_systems: ") as exc:
        c.config({"s1": ["crm"], "s2": ["erp", "orchestrator-master"]})
    assert str(exc.value).startswith("SLAVE_NODES[1].managed_systems: 'orchestrator-master'")
    assert "\n" not in str(exc.value)


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


def test_user_disabled_outbound_pipe_stays_disabled_after_move_back(nodes):
    c = Cluster(nodes)
    assert c.master.api("POST", "/pipes/erp-out/pump", {"operation": "disable"})[0] == 200
    assert pipe_runtime(c.master, "erp-out")["is-disabled"] is True
    assert c.run(c.config()).outcome == "ok"
    report = c.run(c.config({"s1": ["crm"], "s2": []}))       # erp moves back
    assert report.outcome == "ok", report.errors
    assert original(c.master, "pipes", "erp-out") == c.pipes[5]
    assert pipe_runtime(c.master, "erp-out")["is-disabled"] is True


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
    cfg = c.config(tokens={"s1": weak})
    assert c.run(cfg).outcome == "ok"
    s1 = c.slaves["s1"]
    start_pipe(s1, "p1")
    start_pipe(s1, "p2")
    assert has_dataset(s1, "shared")
    assert c.master.api("DELETE", "/pipes/p2")[0] == 200       # p1 still writes "shared"
    assert c.run(cfg).outcome == "ok"
    assert "p2" not in ids(s1, "pipes") and "p1" in ids(s1, "pipes")
    assert has_dataset(s1, "shared")


def test_sync_pipe_reset_when_its_dataset_changes(nodes):
    c = Cluster(nodes)
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
    s1 = c.slaves["s1"]
    # bump the slave's "orders" offsets well past what a new dataset will start at
    for i in range(3):
        put(c.src, "pipes", "orders", {"_id": "orders", "type": "pipe", "source": {
            "type": "embedded", "entities": [{"_id": "o1", "total": 10 + i}]}})
        start_pipe(c.src, "orders")
        start_pipe(s1, "crm-order")
    start_pipe(c.master, "crm-order")
    assert pipe_runtime(c.master, "crm-order")["last-seen"] not in (None, "")
    # the user edits the config where the generated description tells them it lives
    sync = original(c.master, "pipes", "crm-order")
    new = {**c.pipes[1], "sink": {"type": "dataset", "dataset": "orders2"}}
    sync["metadata"]["orchestrator"]["original_configuration"] = new
    put(c.master, "pipes", "crm-order", sync)
    assert c.run(cfg).outcome == "ok"
    assert copy_in(s1, "pipes", "crm-order") == new
    assert s1.api("POST", "/pipes/crm-order/pump",
                  {"operation": "update-last-seen", "last-seen": ""})[0] == 200
    start_pipe(s1, "crm-order")
    assert {e["_id"] for e in entities(s1, "orders2")} == {"o1"}
    start_pipe(c.master, "crm-order")
    assert {e["_id"] for e in entities(c.master, "orders2")} == {"o1"}


@pytest.mark.parametrize("dataset", ["a:b", "q?x", "with space"])   # no '/': invalid on a node
def test_odd_dataset_id_flows_through_the_sync_pipe(nodes, dataset):
    c = Cluster(nodes, seed=False)
    odd = {"_id": "odd-in", "type": "pipe", "source": {"type": "json", "system": "crm",
                                                      "url": "people"},
           "sink": {"type": "dataset", "dataset": dataset}}
    c.master.seed(systems=c.systems, pipes=[*c.pipes, odd])
    assert c.run(c.config()).outcome == "ok"
    start_pipe(c.slaves["s1"], "odd-in")
    assert {e["_id"] for e in entities(c.slaves["s1"], dataset)} == {"a", "b"}
    start_pipe(c.master, "odd-in")
    assert {e["_id"] for e in entities(c.master, dataset)} == {"a", "b"}


def test_config_error_is_one_line_for_an_id_with_a_newline():
    def slave(sid: str) -> dict:
        return {"_id": sid, "endpoint": "http://127.0.0.1:1", "jwt_token": "t" * 20,
                "managed_systems": ["crm\nINJECTED"]}
    env = {"MASTER_NODE": json.dumps({"_id": "m", "endpoint": "http://127.0.0.1:1",
                                      "jwt_token": "secret-token-value"}),
           "SLAVE_NODES": json.dumps([slave("s1"), slave("s2")])}
    with pytest.raises(ConfigError, match=r"SLAVE_NODES\[0\]\.managed_systems") as exc:
        load_config(env)
    # Refused for its control character, at the first slave naming it.
    assert "\n" not in str(exc.value) and "SLAVE_NODES[0].managed_systems" in str(exc.value)


def test_env_var_with_null_value_is_copied(nodes):
    c = Cluster(nodes)
    assert c.master.api("POST", "/env", {"optional": None})[0] == 200
    assert c.run(c.config()).outcome == "ok"
    status, env = c.slaves["s1"].api("GET", "/env")
    assert status == 200 and "optional" in env and env["optional"] is None


def test_marker_with_list_slave_and_unreadable_slave_does_not_crash(nodes):
    c = Cluster(nodes)
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
    sync = original(c.master, "pipes", "crm-person")
    sync["metadata"]["orchestrator"]["slave"] = ["s1"]
    put(c.master, "pipes", "crm-person", sync)
    c.slaves["s1"].add_fault(method="GET", path="^/api/pipes$", status=401, times=100)
    report = c.run(cfg)              # must not raise
    assert report.outcome == "failed"
    assert any("s1" in e for e in report.errors)


def test_slave_endpoint_equal_to_the_masters_deletes_nothing_in_the_master(nodes):
    c = Cluster(nodes)
    env = c.environ({"s1": ["crm"], "s2": []})
    slaves = json.loads(env["SLAVE_NODES"])
    slaves[1]["endpoint"] = c.master.url + "/api/"
    slaves[1]["jwt_token"] = c.tokens["master"]
    env["SLAVE_NODES"] = json.dumps(slaves)
    # Refused up front, with one line naming the field: no run can treat the master as a slave.
    with pytest.raises(ConfigError, match=r"^SLAVE_NODES\[1\]\.endpoint: is the endpoint of "
                                          "MASTER_NODE"):
        load_config(env)
    assert ids(c.master, "pipes") == {p["_id"] for p in c.pipes}
    assert ids(c.master, "systems") == {"crm", "erp"}


def test_outbound_pipe_kept_on_old_slave_keeps_its_feeder(nodes):
    c = Cluster(nodes)
    assert c.run(c.config()).outcome == "ok"
    s2 = c.slaves["s2"]
    start_pipe(c.master, "local-data")
    start_pipe(s2, "orchestrator-feed-local-data")
    assert has_dataset(s2, "local-data")
    c.slaves["s1"].add_fault(method="GET", path="^/api/pipes$", status=401, times=100)
    report = c.run(c.config({"s1": ["crm", "erp"], "s2": []}))   # erp -> s1, s1 is down
    assert report.outcome == "failed"
    assert copy_in(s2, "pipes", "erp-out") == c.pipes[5]        # kept where it runs now
    assert "orchestrator-feed-local-data" in ids(s2, "pipes")
    assert "orchestrator-master" in ids(s2, "systems")
    assert has_dataset(s2, "local-data")


# --------------------------------------------------------------------------------------
# Attacks the implementation survives (regression tests).
# --------------------------------------------------------------------------------------

# Odd, but valid on a real node (no '/' in ids).
ODD_SYSTEM = 'crm\\ä "x" 50% <b>'
ODD_PIPES = ['p|1 "q" 50%', "ünï ☃ 'x'", "l" * 300]


def test_odd_ids_move_steady_state_and_move_back(nodes):
    c = Cluster(nodes, seed=False)
    system = {**c.systems[0], "_id": ODD_SYSTEM}
    # (sink datasets with plain ids: odd dataset ids are their own bug, see above)
    pipes = [{"_id": pid, "type": "pipe", "source": {"type": "json", "system": ODD_SYSTEM,
                                                     "url": "people"},
              "sink": {"type": "dataset", "dataset": f"odd-{i}"}}
             for i, pid in enumerate(ODD_PIPES)]
    # the usual pipes, less those naming 'crm', which this master does not hold
    usual = [p for p in c.pipes if p["source"].get("system") != "crm"]
    c.master.seed(systems=[system, c.systems[1]], pipes=[*usual, *pipes])
    cfg = c.config({"s1": [ODD_SYSTEM], "s2": []})
    assert c.run(cfg).outcome == "ok"
    s1 = c.slaves["s1"]
    assert copy_in(s1, "systems", ODD_SYSTEM) == system
    for p in pipes:
        assert copy_in(s1, "pipes", p["_id"]) == p
        assert meta(original(c.master, "pipes", p["_id"]))["slave"] == "s1"
        start_pipe(s1, p["_id"])
        start_pipe(c.master, p["_id"])
        assert {e["_id"] for e in entities(c.master, p["sink"]["dataset"])} == {"a", "b"}
    c.clear()
    assert c.run(cfg).outcome == "ok" and c.no_writes(), c.writes()
    report = c.run(c.config({"s1": [], "s2": []}))
    assert report.outcome == "ok", report.errors
    assert original(c.master, "systems", ODD_SYSTEM) == system
    for p in pipes:
        assert original(c.master, "pipes", p["_id"]) == p
    assert ids(s1, "pipes") == set() and ids(s1, "systems") == set()
    assert not _datasets(s1) & {"odd-0", "odd-1", "odd-2"}


def test_two_pipes_writing_one_slave_dataset_one_removed_keeps_it(nodes):
    c = Cluster(nodes, seed=False)
    two = {"_id": "crm-order-2", "type": "pipe",
           "source": {"type": "json", "system": "crm", "url": "orders"},
           "sink": {"type": "dataset", "dataset": "orders"}}
    c.master.seed(systems=c.systems, pipes=[*c.pipes, two])
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
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


def test_sink_dataset_equal_to_another_pipes_on_different_slaves(nodes):
    c = Cluster(nodes, seed=False)
    from_erp = {"_id": "erp-in", "type": "pipe",
                "source": {"type": "json", "system": "erp", "url": "x"},
                "sink": {"type": "dataset", "dataset": "orders"}}
    c.master.seed(systems=c.systems, pipes=[*c.pipes, from_erp])
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
    for pid, slave in (("crm-order", "s1"), ("erp-in", "s2")):
        sync = original(c.master, "pipes", pid)
        assert sync["sink"] == {"type": "dataset", "dataset": "orders"}
        assert meta(sync)["slave"] == slave
    c.clear()
    assert c.run(cfg).outcome == "ok" and c.no_writes(), c.writes()


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
    _all_originals_kept(c, c.systems, [*c.pipes, clash])
    c.clear()
    again = c.run(cfg)
    assert again.errors == report.errors and c.no_writes(), c.writes()


def test_user_pipe_named_like_a_feeder_but_staying_in_the_master_is_left_alone(nodes):
    c = Cluster(nodes, seed=False)
    lookalike = {"_id": "orchestrator-feed-local-data", "type": "pipe",
                 "source": {"type": "dataset", "dataset": "local-data"}}
    c.master.seed(systems=c.systems, pipes=[*c.pipes, lookalike])
    assert c.run(c.config()).outcome == "ok"
    assert original(c.master, "pipes", "orchestrator-feed-local-data") == lookalike
    feeder = copy_in(c.slaves["s2"], "pipes", "orchestrator-feed-local-data")
    assert meta(feeder) == {"feeder": True, "master": c.master.url}


def test_unmanaged_user_system_named_orchestrator_master_is_left_alone(nodes):
    c = Cluster(nodes, seed=False)
    mine = {"_id": "orchestrator-master", "type": "system:url", "base_url": "http://127.0.0.1:9/"}
    c.master.seed(systems=[*c.systems, mine], pipes=c.pipes)
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
    assert original(c.master, "systems", "orchestrator-master") == mine
    feeder = copy_in(c.slaves["s2"], "systems", "orchestrator-master")
    assert feeder["url_pattern"].startswith(c.master.url) and meta(feeder) == {"feeder": True}
    c.clear()
    assert c.run(cfg).outcome == "ok" and c.no_writes(), c.writes()


def test_system_prefixed_components_on_master_and_slaves_are_never_touched(nodes):
    c = Cluster(nodes)
    s1 = c.slaves["s1"]
    sys_pipe = {"_id": "system:my-pipe", "type": "pipe",
                "source": {"type": "json", "system": "crm", "url": "people"}}
    # Their default sinks write 'system:' datasets, which a node accepts only when forced.
    c.master.seed(pipes=[sys_pipe], force=True)
    s1.seed(pipes=[{"_id": "system:local", "type": "pipe"}], force=True)
    assert c.run(c.config()).outcome == "ok"
    assert original(c.master, "pipes", "system:my-pipe") == sys_pipe
    assert "system:my-pipe" not in {p for p in originals(s1, "pipes")}
    assert original(s1, "pipes", "system:local") == {"_id": "system:local", "type": "pipe"}
    with pytest.raises(ConfigError, match=r"SLAVE_NODES\[0\]\.managed_systems"):
        c.config({"s1": ["system:sesam-node"]})


def test_use_binary_source_toggled_rewrites_without_reset_then_is_steady(nodes):
    c = Cluster(nodes)
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
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


def test_jwt_secret_key_toggled_on_and_off(nodes):
    c = Cluster(nodes)
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
    token = cfg.slave("s1").jwt_token.get_secret_value()
    assert original(c.master, "systems", "crm")["jwt_token"] == token
    keyed = c.config(slave_extra={"s1": {"jwt_secret_key": "s1-token"}})
    report = c.run(keyed)
    # The master lacks the secret: it refuses the rewrite, which is reported, and the
    # system keeps reading the slave with the token it had.
    assert any("s1-token" in w for w in report.warnings)
    assert any("crm" in e and "s1-token" in e for e in report.errors), report.errors
    assert original(c.master, "systems", "crm")["jwt_token"] == token
    assert token not in json.dumps(report.as_json())
    c.master.seed(secrets={"s1-token": token})
    report = c.run(keyed)
    assert report.outcome == "ok", report.errors
    assert original(c.master, "systems", "crm")["jwt_token"] == "$SECRET(s1-token)"
    c.clear()
    c.run(keyed)
    assert c.no_writes(), c.writes()
    assert c.run(cfg).outcome == "ok"
    assert original(c.master, "systems", "crm")["jwt_token"] == token
    assert meta(original(c.master, "systems", "crm"))["original_configuration"] == c.systems[0]


def test_master_env_value_that_is_a_token_never_shows(nodes, caplog):
    c = Cluster(nodes)
    secret_value = c.tokens["s1"]
    assert c.master.api("POST", "/env", {"leaky": secret_value})[0] == 200
    caplog.set_level(logging.DEBUG)
    cfg = c.config()
    c.slaves["s2"].add_fault(method="POST", path="^/api/env$", status=500)
    report = c.run(cfg)
    plan = c.run(cfg, dry_run=True)
    assert c.slaves["s1"].api("GET", "/env")[1]["leaky"] == secret_value
    for text in (json.dumps(report.as_json()), json.dumps(plan.as_json()), caplog.text):
        for token in c.tokens.values():
            assert token not in text
    assert any("set-env" in e for e in report.errors), report.errors


def test_master_secrets_forbidden_is_a_warning_and_the_run_goes_on(nodes):
    c = Cluster(nodes)
    c.master.add_fault(method="GET", path="^/api/secrets$", status=403, times=100)
    report = c.run(c.config())
    assert report.outcome == "ok", report.errors
    assert any("master" in w and "secret" in w for w in report.warnings), report.warnings
    assert all("\n" not in w for w in report.warnings)
    assert ids(c.slaves["s1"], "systems") == {"crm"}


def test_empty_master_env_writes_no_env_and_keeps_slave_vars(nodes):
    c = Cluster(nodes, seed=False)
    c.master.seed(systems=c.systems, pipes=c.pipes)
    c.slaves["s1"].seed(env={"own": "x"})
    c.clear()
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
    assert c.slaves["s1"].api("GET", "/env")[1] == {"own": "x"}
    assert not any(r["path"] == "/api/env" for r in c.writes()["s1"])


@pytest.mark.parametrize("shape", ["a string", ["a", "list"], {"slave": "s1"},
                                   {"slave": "s1", "original_configuration": "text"},
                                   {"slave": "s1", "original_configuration": {"_id": "other"}}])
def test_wrong_shaped_marker_is_a_user_upload_and_nothing_is_lost(nodes, shape):
    c = Cluster(nodes)
    assert c.run(c.config()).outcome == "ok"
    upload = {**c.pipes[0], "metadata": {"orchestrator": shape}}
    put(c.master, "pipes", "crm-person", upload)
    report = c.run(c.config())
    assert report.outcome == "ok", report.errors
    assert copy_in(c.slaves["s1"], "pipes", "crm-person") == upload
    assert meta(original(c.master, "pipes", "crm-person"))["original_configuration"] == upload
    c.clear()
    assert c.run(c.config()).outcome == "ok" and c.no_writes(), c.writes()
    c.run(c.config({"s1": [], "s2": ["erp"]}))
    assert original(c.master, "pipes", "crm-person") == upload


def test_reupload_with_marker_intact_but_new_original_moves_the_new_original(nodes):
    c = Cluster(nodes)
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
    sync = original(c.master, "pipes", "crm-person")
    new = {**c.pipes[0], "description": "edited"}
    sync["metadata"]["orchestrator"]["original_configuration"] = new
    sync["pump"] = {"schedule_interval": 1}          # and a hand edit of the generated part
    put(c.master, "pipes", "crm-person", sync)
    assert c.run(cfg).outcome == "ok"
    assert copy_in(c.slaves["s1"], "pipes", "crm-person") == new
    live = original(c.master, "pipes", "crm-person")
    assert meta(live)["original_configuration"] == new and live["pump"]["schedule_interval"] >= 300
    c.clear()
    assert c.run(cfg).outcome == "ok" and c.no_writes(), c.writes()


def test_master_pipe_deleted_while_on_slave_goes_with_its_dataset_only(nodes):
    c = Cluster(nodes)
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
    s1 = c.slaves["s1"]
    for pid in CRM_PIPES:
        start_pipe(s1, pid)
    assert c.master.api("DELETE", "/pipes/crm-person")[0] == 200
    assert c.run(cfg).outcome == "ok"
    assert ids(s1, "pipes") == {"crm-order"} and not has_dataset(s1, "crm-person")
    assert has_dataset(s1, "orders") and ids(s1, "systems") == {"crm"}


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
    _all_originals_kept(c, c.systems, c.pipes)
    c.clear()
    assert c.run(on_a).outcome == "ok" and c.no_writes(), c.writes()


def test_slave_removed_from_slave_nodes_is_never_contacted_and_its_system_comes_back(nodes):
    c = Cluster(nodes)
    assert c.run(c.config()).outcome == "ok"
    s2 = c.slaves["s2"]
    before = _everything(s2)
    env = c.environ({"s1": ["crm"]})
    c.clear()
    report = c.run(load_config(env))
    assert report.outcome == "ok", report.errors
    assert s2.requests() == []                           # not ours any more: not touched
    assert _everything(s2) == before
    assert original(c.master, "systems", "erp") == c.systems[1]
    assert original(c.master, "pipes", "erp-out") == c.pipes[5]
    assert pipe_runtime(c.master, "erp-out")["is-disabled"] is False


def test_slave_with_no_managed_systems_is_emptied_of_what_we_put_there(nodes):
    c = Cluster(nodes)
    assert c.run(c.config()).outcome == "ok"
    report = c.run(c.config({"s1": ["crm"], "s2": []}))
    assert report.outcome == "ok", report.errors
    assert ids(c.slaves["s2"], "pipes") == set() and ids(c.slaves["s2"], "systems") == set()
    assert not has_dataset(c.slaves["s2"], "local-data")
    _all_originals_kept(c, c.systems, c.pipes)
    c.clear()
    assert c.run(c.config({"s1": ["crm"], "s2": []})).outcome == "ok" and c.no_writes()


def test_partial_failure_mid_move_then_the_system_is_unmanaged(nodes):
    c = Cluster(nodes)
    assert c.run(c.config()).outcome == "ok"
    for pid in CRM_PIPES:
        start_pipe(c.slaves["s1"], pid)
        start_pipe(c.master, pid)
    # the move to s2 breaks on the master's second pipe PUT
    c.master.add_fault(method="PUT", path="^/api/pipes/crm-order/", status=400, times=100)
    report = c.run(c.config({"s1": [], "s2": ["erp", "crm"]}))
    assert report.outcome == "failed"
    _all_originals_kept(c, c.systems, c.pipes)
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


def test_env_named_system_switching_slaves_moves_the_pipe(nodes):
    c = Cluster(nodes, seed=False)
    via_env = {"_id": "env-in", "type": "pipe",
               "source": {"type": "json", "system": "$ENV(which)", "url": "people"}}
    c.master.seed(env={"which": "crm"}, systems=c.systems, pipes=[*c.pipes, via_env])
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
    assert meta(original(c.master, "pipes", "env-in"))["slave"] == "s1"
    assert c.master.api("POST", "/env", {"which": "erp"})[0] == 200
    assert c.run(cfg).outcome == "ok"
    assert meta(original(c.master, "pipes", "env-in"))["slave"] == "s2"
    assert "env-in" not in ids(c.slaves["s1"], "pipes")
    assert copy_in(c.slaves["s2"], "pipes", "env-in") == via_env


def test_errors_and_warnings_are_one_line_each_for_hostile_ids(nodes):
    c = Cluster(nodes, seed=False)
    bad = {"_id": 'two "slaves" | 50%', "type": "pipe",
           "source": {"type": "json", "system": "crm", "url": "x"},
           "sink": {"type": "json", "system": "erp", "url": "y"}}
    c.master.seed(systems=c.systems, pipes=[*c.pipes, bad])
    c.master.add_fault(method="PUT", path="^/api/systems/", status=400, times=100)
    report = c.run(c.config({"s1": ["crm", "ghost"], "s2": ["erp"]}))
    assert report.outcome == "failed"
    assert report.errors and report.warnings
    for line in (*report.errors, *report.warnings):
        assert "\n" not in line
        for token in c.tokens.values():
            assert token not in line
    assert original(c.master, "pipes", bad["_id"]) == bad
