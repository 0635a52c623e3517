"""Review round 4: several systems and pipes changing in one run (swaps, a pipe whose source
and sink systems both move, splits), systems renamed in the master, big bulk creates with a
failing chunk, use_binary_source with a reset owed, env values that are objects and lists,
stagger edge values, the dry run against the real run, and one-line reports and log lines
for ids holding newlines and quotes.

Every scenario ends with a run that must plan nothing and write nothing; every real run here
is compared with the dry run made just before it on the same state. The bugs this round
found (disabled outbound pipes, lax config types, multi-line messages) are fixed since; their
tests assert the correct behaviour.
"""
from __future__ import annotations

import json
import logging

import pytest

from contract_helpers import (copy_in, CRM_PIPES, assert_steady, cannot_run, clear_faults, Cluster, described, disabled,
                              ids, meta, original, pipe_runtime, put, start_pipe, the_original)
from service import orchestrator
from service.nodes.client import SesamClient

HARD = 4          # a PUT/DELETE is tried four times: four hits make it fail
HR = {"_id": "hr", "type": "system:url", "base_url": "http://127.0.0.1:9/"}


@pytest.fixture(autouse=True)
def _no_retry_backoff(monkeypatch):
    monkeypatch.setitem(SesamClient.__init__.__kwdefaults__, "backoff", 0.0)



def _datasets(node) -> set[str]:
    return {d["_id"] for d in node.api("GET", "/datasets")[1]}



def _run(c: Cluster, cfg, *, outcome: str | None = "ok"):
    """A dry run, then the real run on the same state: the same actions, in the same order."""
    plan = c.run(cfg, dry_run=True)
    report = c.run(cfg)
    assert described(plan) == described(report), (described(plan), described(report))
    if outcome is not None:
        assert report.outcome == outcome, report.as_json()
    return report



def _user_ids(node, kind: str) -> set[str]:
    return ids(node, kind)


# --------------------------------------------------------------------------------------
# Several things change in one run
# --------------------------------------------------------------------------------------

ORDERS_OUT = {"_id": "orders-out", "type": "pipe",
              "source": {"type": "dataset", "dataset": "orders"},
              "sink": {"type": "json", "system": "erp", "url": "orders"}}


def test_two_systems_swap_slaves_with_a_chained_outbound_pipe(nodes):
    # crm (s1) writes `orders`; orders-out sends `orders` to erp (s2) through a feeder.
    # Swapping the two systems makes s2 write `orders` itself (no feeder) and s1 need one.
    c = Cluster(nodes, seed=False)
    c.master.seed(systems=c.systems, pipes=[*c.pipes, ORDERS_OUT])
    first = c.config({"s1": ["crm"], "s2": ["erp"]})
    _run(c, first)
    s1, s2 = c.slaves["s1"], c.slaves["s2"]
    assert "orchestrator-feed-orders" in ids(s2, "pipes")
    c.sync(s1)
    start_pipe(s2, "orchestrator-feed-orders")
    swapped = c.config({"s1": ["erp"], "s2": ["crm"]})
    c.clear()
    _run(c, swapped)
    assert ids(s1, "systems") == {"erp", "orchestrator-master"}
    assert ids(s2, "systems") == {"crm"}
    assert ids(s1, "pipes") == {"erp-out", "orders-out", "orchestrator-feed-local-data",
                                "orchestrator-feed-orders"}
    assert ids(s2, "pipes") == set(CRM_PIPES)
    for pid in CRM_PIPES:
        assert meta(original(c.master, "pipes", pid))["slave"] == "s2"
        assert pipe_runtime(c.master, pid)["last-seen"] in (None, "")     # reset
    assert s2.url in original(c.master, "systems", "crm")["url_pattern"]
    # s1 lost crm only after the master's crm pointed at s2
    order = c.global_writes()
    put_crm = next(i for i, w in enumerate(order)
                   if w[0] == "master" and w[1] == "PUT" and w[2] == "/api/systems/crm/config")
    del_crm = next(i for i, w in enumerate(order)
                   if w[0] == "s1" and w[1] == "DELETE" and w[2] == "/api/systems/crm")
    assert put_crm < del_crm
    # the data flows from the new place
    for pid in CRM_PIPES:
        start_pipe(s2, pid)
    start_pipe(c.master, "crm-order")
    assert {e["_id"] for e in c.master.api("GET", "/datasets/orders/entities")[1]} == {"o1"}
    assert_steady(c, swapped)


BRIDGE = {"_id": "crm-to-erp", "type": "pipe", "source": {"type": "json", "system": "crm", "url": "people"},
          "sink": {"type": "json", "system": "erp", "url": "people"}}


def test_a_pipe_whose_source_and_sink_systems_both_move_then_split(nodes):
    c = Cluster(nodes, seed=False, slaves=("s1", "s2", "s3"))
    c.master.seed(systems=c.systems, pipes=[*c.pipes, BRIDGE])
    together = c.config({"s1": ["crm", "erp"]})
    _run(c, together)
    s1, s2, s3 = (c.slaves[s] for s in ("s1", "s2", "s3"))
    assert copy_in(s1, "pipes", "crm-to-erp") == BRIDGE
    assert cannot_run(c.master, "crm-to-erp") and not disabled(s1, "crm-to-erp")
    # both systems move to s2 in one run
    both = c.config({"s1": [], "s2": ["crm", "erp"]})
    c.clear()
    _run(c, both)
    assert copy_in(s2, "pipes", "crm-to-erp") == BRIDGE and not disabled(s2, "crm-to-erp")
    assert "crm-to-erp" not in ids(s1, "pipes") and ids(s1, "systems") == set()
    assert meta(original(c.master, "pipes", "crm-to-erp"))["slave"] == "s2"
    assert_steady(c, both)
    # then they split: the pipe cannot be placed; it must run in exactly one place (the
    # master, with its original) and the error shows on every run
    split = c.config({"s2": ["crm"], "s3": ["erp"]})
    report = _run(c, split, outcome="failed")
    assert any("crm-to-erp" in e for e in report.errors)
    assert original(c.master, "pipes", "crm-to-erp") == BRIDGE
    assert not disabled(c.master, "crm-to-erp")
    assert "crm-to-erp" not in ids(s2, "pipes") | ids(s3, "pipes")
    plan = c.run(split, dry_run=True)
    assert plan.actions == [] and any("crm-to-erp" in e for e in plan.errors)
    c.clear()
    again = c.run(split)
    assert again.actions == [] and c.no_writes() and again.outcome == "failed"


@pytest.mark.parametrize("to", ["s1", "s2"])
def test_a_system_renamed_in_the_master_moves_under_its_new_name(nodes, to):
    c = Cluster(nodes)
    _run(c, c.config({"s1": ["crm"], "s2": ["erp"]}))
    s1 = c.slaves["s1"]
    c.sync(s1)
    # The user renames crm to crm2: uploads crm2 and the pipes using it, deletes crm.
    crm2 = {**c.systems[0], "_id": "crm2"}
    assert c.master.api("POST", "/systems", [crm2])[0] in (200, 201)
    renamed = {}
    for p in c.pipes[:2]:
        renamed[p["_id"]] = {**p, "source": {**p["source"], "system": "crm2"}}
        put(c.master, "pipes", p["_id"], renamed[p["_id"]])
    assert c.master.api("DELETE", "/systems/crm")[0] == 200
    managed = {"s1": ["crm2"], "s2": ["erp"]} if to == "s1" else {"s1": [], "s2": ["erp", "crm2"]}
    cfg = c.config(managed)
    c.clear()
    _run(c, cfg)
    new = c.slaves[to]
    assert "crm" not in ids(s1, "systems")
    assert copy_in(new, "systems", "crm2") == crm2
    for pid, cfg_ in renamed.items():
        assert copy_in(new, "pipes", pid) == cfg_
        assert the_original(c.master, "pipes", pid) == cfg_
        assert original(c.master, "pipes", pid)["source"]["system"] == "crm2"
    if to == "s2":
        assert not set(CRM_PIPES) & ids(s1, "pipes")
        for pid in CRM_PIPES:
            assert pipe_runtime(c.master, pid)["last-seen"] in (None, "")
    assert_steady(c, cfg)


# --------------------------------------------------------------------------------------
# Big bulk creates
# --------------------------------------------------------------------------------------

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


@pytest.mark.parametrize("fault", [{"status": 500}, {"drop": True}, {"drop_after": True}])
def test_a_failing_chunk_of_a_bulk_create_over_100_then_converges(nodes, fault):
    c, systems, pipes, cfg = _big_cluster(nodes)
    s1 = c.slaves["s1"]
    # the second bulk POST of pipes (components 101..) fails; so does the second of systems
    s1.add_fault(method="POST", path="^/api/pipes$", skip=1, times=1, **fault)
    s1.add_fault(method="POST", path="^/api/systems$", skip=1, times=1, **fault)
    report = _run(c, cfg, outcome="failed")
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
    _run(c, cfg)
    assert {f"p-{i:03d}" for i in range(MANY)} <= ids(s1, "pipes")
    assert {f"sys-{i:03d}" for i in range(MANY_SYSTEMS)} <= ids(s1, "systems")
    assert_steady(c, cfg)


# --------------------------------------------------------------------------------------
# One line per report entry and per log line, whatever the ids hold
# --------------------------------------------------------------------------------------

NL_BAD = {"_id": 'split\nERROR forged "line"', "type": "pipe",
          "source": {"type": "json", "system": "crm", "url": "x"},
          "sink": {"type": "json", "system": "erp", "url": "y"}}
NL_IN = {"_id": 'in\nINFO forged "q"', "type": "pipe",
         "source": {"type": "json", "system": "crm", "url": "people"}}


def _newline_cluster(nodes):
    c = Cluster(nodes, seed=False)
    c.master.seed(systems=c.systems, pipes=[*c.pipes, NL_BAD, NL_IN])
    return c


def test_report_errors_are_one_line_for_ids_with_newlines(nodes):
    c = _newline_cluster(nodes)
    report = c.run(c.config())
    assert report.outcome == "failed"                 # NL_BAD cannot be placed
    assert any("split" in e for e in report.errors)
    for line in (*report.errors, *report.warnings):
        assert "\n" not in line and "\r" not in line, line


def test_once_log_lines_are_one_line_for_ids_with_newlines(nodes, caplog):
    # README: logs name the component with "ids quoted, so an id cannot forge a second
    # line"; --once logs a run's lines as the served process does (service.runs).
    from service.__main__ import once
    c = _newline_cluster(nodes)
    with caplog.at_level(logging.INFO, logger="service"):
        once(c.config(), dry_run=False)
    moved = [r for r in caplog.records if "forged" in r.getMessage()]
    assert moved
    for record in moved:
        assert "\n" not in record.getMessage(), record.getMessage()


def test_serving_log_lines_are_one_line_for_ids_with_newlines(nodes, caplog):
    # The service's own lines (web/runner.py's Runner) quote ids and fold errors onto one line.
    from service.web.runner import Runner
    c = _newline_cluster(nodes)
    runner = Runner(config=c.config(), run=orchestrator.run)
    with caplog.at_level(logging.INFO, logger="service.runs"):
        report = runner.sync()
    assert report.outcome == "failed"
    lines = [r.getMessage() for r in caplog.records if r.name == "service.runs"]
    assert any("forged" in line for line in lines)
    assert all("\n" not in line for line in lines), [x for x in lines if "\n" in x]


# --------------------------------------------------------------------------------------
# use_binary_source, env values, stagger
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("fault", [{"status": 500}, {"drop_after": True}])
def test_use_binary_source_switched_on_while_a_reset_is_owed(nodes, fault):
    c = Cluster(nodes)
    _run(c, c.config({"s1": ["crm"], "s2": ["erp"]}))
    s1 = c.slaves["s1"]
    c.sync(s1)
    moved = {"s1": [], "s2": ["erp", "crm"]}
    c.master.add_fault(method="POST", path="^/api/pipes/crm-person/pump$", times=1, **fault)
    c.run(c.config(moved))
    assert meta(original(c.master, "pipes", "crm-person"))["reset_pending"] is True
    clear_faults(c)
    binary = c.config(moved, master_extra={"use_binary_source": True})
    c.clear()
    report = _run(c, binary)
    assert ("reset-pipe", "master", "crm-person") in described(report)
    for pid in CRM_PIPES:
        cfg = original(c.master, "pipes", pid)
        assert cfg["source"]["type"] == "binary"
        assert "reset_pending" not in meta(cfg)
        assert meta(cfg)["slave"] == "s2"
        assert pipe_runtime(c.master, pid)["last-seen"] in (None, "")
    assert_steady(c, binary)
    # and back to json: a rewrite, no reset (the source is the same dataset on the same slave)
    start_pipe(c.slaves["s2"], "crm-person")
    start_pipe(c.master, "crm-person")
    json_cfg = c.config(moved)
    report = _run(c, json_cfg)
    assert not [a for a in described(report) if a[0] == "reset-pipe"]
    assert original(c.master, "pipes", "crm-person")["source"]["type"] == "json"
    assert_steady(c, json_cfg)


ODD_ENV = {"region": "eu", "obj": {"a": [1, {"b": None}], "c": "d"}, "lst": [1, "x", [2]],
           "num": 1.5, "flag": False, "zero": 0, "empty": "", "nested_secret": "$SECRET(nope)",
           "quote": 'a "b"\nc'}


def test_env_values_that_are_objects_and_lists_are_copied_once(nodes):
    c = Cluster(nodes, seed=False)
    c.master.seed(systems=c.systems, pipes=c.pipes, env=ODD_ENV)
    for s in c.slaves.values():
        s.seed(env={"slave-only": {"k": 1}, "lst": [1, "x"], "flag": True})
    cfg = c.config()
    _run(c, cfg)
    for s in c.slaves.values():
        env = s.api("GET", "/env")[1]
        assert {k: env[k] for k in ODD_ENV} == ODD_ENV
        assert env["slave-only"] == {"k": 1}
    assert_steady(c, cfg)
    # a changed nested value is copied again, alone
    c.master.api("POST", "/env", {"obj": {"a": [1, {"b": 2}], "c": "d"}})
    c.clear()
    _run(c, cfg)
    posts = [w for w in c.global_writes() if w[1] == "POST" and w[2] == "/api/env"]
    assert len(posts) == 2
    assert c.slaves["s1"].api("GET", "/env")[1]["obj"] == {"a": [1, {"b": 2}], "c": "d"}
    assert_steady(c, cfg)


def test_env_named_sink_whose_value_is_an_object_cannot_be_placed_and_is_not_lost(nodes):
    weird = {"_id": "crm-weird", "type": "pipe",
             "source": {"type": "json", "system": "crm", "url": "people"},
             "sink": {"type": "dataset", "dataset": "$ENV(obj)"}}
    c = Cluster(nodes, seed=False)
    c.master.seed(systems=c.systems, pipes=[*c.pipes, weird], env=ODD_ENV)
    cfg = c.config()
    report = _run(c, cfg, outcome=None)
    assert original(c.master, "pipes", "crm-weird") == weird
    # It cannot be placed: it stays in the master, as the user wrote it, and the run says so.
    assert "crm-weird" not in ids(c.slaves["s1"], "pipes")
    assert report.outcome == "failed", report.as_json()
    assert any(e.startswith("pipe crm-weird: cannot be placed") for e in report.errors), \
        report.errors
    assert_steady(c, cfg)


@pytest.mark.parametrize("stagger", [0, 1])
def test_stagger_range_0_and_1_mean_no_stagger_and_changing_it_rewrites_without_reset(nodes,
                                                                                    stagger):
    c = Cluster(nodes)
    extra = {"s1": {"sync_interval": 1, "sync_interval_stagger_range": stagger}}
    cfg = c.config(slave_extra=extra)
    _run(c, cfg)
    for pid in CRM_PIPES:
        assert original(c.master, "pipes", pid)["pump"]["schedule_interval"] == 1
    for pid in CRM_PIPES:
        start_pipe(c.slaves["s1"], pid)
        start_pipe(c.master, pid)
    assert_steady(c, cfg)
    wider = c.config(slave_extra={"s1": {"sync_interval": 1,
                                         "sync_interval_stagger_range": 1000}})
    report = _run(c, wider)
    assert not [a for a in described(report) if a[0] == "reset-pipe"]
    for pid in CRM_PIPES:
        assert 1 <= original(c.master, "pipes", pid)["pump"]["schedule_interval"] < 1001
        assert pipe_runtime(c.master, pid)["last-seen"] not in (None, "")
    assert_steady(c, wider)


# --------------------------------------------------------------------------------------
# Disabled pipes
# --------------------------------------------------------------------------------------

def test_user_enables_and_reuploads_a_disabled_outbound_pipe_and_it_runs_on_the_slave(nodes):
    # README: to run it, upload it again (a new original) and enable it. The placeholder
    # itself cannot be enabled: its pump is off.
    c = Cluster(nodes)
    assert c.master.api("POST", "/pipes/erp-out/pump", {"operation": "disable"})[0] == 200
    cfg = c.config()
    _run(c, cfg)
    s2 = c.slaves["s2"]
    assert disabled(s2, "erp-out")
    assert meta(original(c.master, "pipes", "erp-out"))["disabled"] is True
    assert c.master.api("POST", "/pipes/erp-out/pump", {"operation": "enable"})[0] == 400
    put(c.master, "pipes", "erp-out", c.pipes[5])
    assert c.master.api("POST", "/pipes/erp-out/pump", {"operation": "enable"})[0] == 200
    _run(c, cfg)
    assert not meta(original(c.master, "pipes", "erp-out")).get("disabled")
    assert not disabled(s2, "erp-out")
    assert cannot_run(c.master, "erp-out")        # the placeholder never runs
    assert_steady(c, cfg)


# --------------------------------------------------------------------------------------
# Many slaves, names that cross
# --------------------------------------------------------------------------------------

def test_three_slaves_with_crossed_dataset_names_rotate_in_one_run(nodes):
    c = Cluster(nodes, seed=False, slaves=("s1", "s2", "s3"))
    systems = [{**c.systems[0], "_id": sid} for sid in ("a", "b", "g")]
    pipes = [
        # each pipe writes a dataset named like another slave's pipe
        {"_id": "alpha", "type": "pipe", "source": {"type": "json", "system": "a", "url": "people"},
         "sink": {"type": "dataset", "dataset": "beta"}},
        {"_id": "beta", "type": "pipe", "source": {"type": "json", "system": "b", "url": "orders"},
         "sink": {"type": "dataset", "dataset": "alpha"}},
        {"_id": "gamma", "type": "pipe", "source": {"type": "json", "system": "g", "url": "people"}},
        # outbound to g, reading what alpha writes (on another slave: a feeder)
        {"_id": "to-g", "type": "pipe", "source": {"type": "dataset", "dataset": "beta"},
         "sink": {"type": "json", "system": "g", "url": "x"}},
        {"_id": "local", "type": "pipe", "source": {"type": "dataset", "dataset": "alpha"}},
    ]
    c.master.seed(systems=systems, pipes=pipes)
    first = c.config({"s1": ["a"], "s2": ["b"], "s3": ["g"]})
    _run(c, first)
    s1, s2, s3 = (c.slaves[s] for s in ("s1", "s2", "s3"))
    assert ids(s3, "pipes") == {"gamma", "to-g", "orchestrator-feed-beta"}
    for sid, pid in (("s1", "alpha"), ("s2", "beta"), ("s3", "gamma")):
        start_pipe(c.slaves[sid], pid)
    start_pipe(s3, "orchestrator-feed-beta")
    assert {"beta"} <= _datasets(s1) and {"alpha"} <= _datasets(s2)
    assert_steady(c, first)
    # rotate: a -> s3 (where to-g reads beta: alpha now writes it there, no feeder),
    # b -> s1, g -> s2 (to-g needs a feeder for beta there)
    rotated = c.config({"s1": ["b"], "s2": ["g"], "s3": ["a"]})
    _run(c, rotated)
    assert ids(s1, "pipes") == {"beta"} and ids(s1, "systems") == {"b"}
    assert ids(s2, "pipes") == {"gamma", "to-g", "orchestrator-feed-beta"}
    assert ids(s2, "systems") == {"g", "orchestrator-master"}
    assert ids(s3, "pipes") == {"alpha"} and ids(s3, "systems") == {"a"}
    # s1 wrote `beta` for alpha: gone with alpha; s2 wrote `alpha` for beta: gone with beta
    assert "beta" not in _datasets(s1)
    assert "alpha" not in _datasets(s2)
    for pid, slave in (("alpha", "s3"), ("beta", "s1"), ("gamma", "s2")):
        assert meta(original(c.master, "pipes", pid))["slave"] == slave
    assert_steady(c, rotated)
    # the user deletes alpha from the master: s3 loses it and its dataset `beta`; s2's
    # feeder of the master's `beta` stays (to-g still reads it)
    assert c.master.api("DELETE", "/pipes/alpha")[0] == 200
    _run(c, rotated)
    assert ids(s3, "pipes") == set() and "beta" not in _datasets(s3)
    assert "orchestrator-feed-beta" in ids(s2, "pipes")
    assert_steady(c, rotated)


# --------------------------------------------------------------------------------------
# Configuration: mistyped values
# --------------------------------------------------------------------------------------

def _env_with(master_extra: dict | None = None, slave_extra: dict | None = None) -> dict:
    m = {"_id": "m", "endpoint": "http://m.example", "jwt_token": "t", **(master_extra or {})}
    s = [{"_id": "s", "endpoint": "http://s.example", "jwt_token": "u", "managed_systems": ["a"],
          **(slave_extra or {})}]
    return {"MASTER_NODE": json.dumps(m), "SLAVE_NODES": json.dumps(s)}


@pytest.mark.parametrize("env, field", [
    (_env_with(slave_extra={"sync_interval": True}), r"SLAVE_NODES\[0\]\.sync_interval: "),
    (_env_with(slave_extra={"sync_interval_stagger_range": True}),
     r"SLAVE_NODES\[0\]\.sync_interval_stagger_range: "),
    (_env_with(master_extra={"use_binary_source": "yes"}), r"MASTER_NODE\.use_binary_source: "),
    (_env_with(master_extra={"use_binary_source": 1}), r"MASTER_NODE\.use_binary_source: "),
], ids=["interval-true", "stagger-true", "binary-yes", "binary-1"])
def test_mistyped_interval_and_binary_flag_are_refused(env, field):
    from service.config import ConfigError, load_config
    with pytest.raises(ConfigError, match="^" + field):
        load_config(env)


@pytest.mark.parametrize("extra,interval", [
    ({"sync_interval": 1, "sync_interval_stagger_range": 0}, 1),
    ({"sync_interval": 2592000, "sync_interval_stagger_range": 2592000}, None),
])
def test_interval_edges_are_accepted_and_land_in_range(extra, interval):
    from service.config import load_config
    from service.core.generated import stagger
    cfg = load_config(_env_with(slave_extra=extra))
    slave = cfg.slaves[0]
    for pid in ("a", "b\nc", 'q"', "%2F"):
        value = slave.sync_interval + stagger(pid, slave.stagger_range)
        assert slave.sync_interval <= value < slave.sync_interval + max(1, slave.stagger_range)
        if interval is not None:
            assert value == interval
