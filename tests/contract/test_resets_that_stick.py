"""Issue 12.4: whenever a synchronising pipe starts reading a dataset new to it, its offset
is reset, and the owed reset survives crashes, failed writes, runs in flight and pipes still
deploying. Disabled pipes are never enabled on a slave; deleted datasets stay deleted."""
from __future__ import annotations

import threading
import time

import pytest

from contract_helpers import Cluster, copy_in, clear_faults, disabled, entities, meta, original, pipe_runtime, start_pipe
from emulator import EmulatorNode
from service.nodes.client import SesamClient

HARD = 4          # a PUT/DELETE is tried four times: four hits make it fail


@pytest.fixture(autouse=True)
def _no_retry_backoff(monkeypatch):
    monkeypatch.setitem(SesamClient.__init__.__kwdefaults__, "backoff", 0.0)


def _master_ran_against_the_source(c: Cluster) -> str:
    """Before the orchestrator: the master's crm-person ran against the on-premise source,
    whose dataset has many versions (its offsets are far from a new copy's)."""
    for version in range(8):
        c.src.api("PUT", "/pipes/people/config", {"_id": "people", "type": "pipe", "source": {
            "type": "embedded", "entities": [{"_id": "a", "v": version}, {"_id": "b", "v": version}]}})
        start_pipe(c.src, "people")
    start_pipe(c.master, "crm-person")
    seen = pipe_runtime(c.master, "crm-person")["last-seen"]
    assert seen not in (None, "") and int(seen) > 10
    return seen


def _reset(node: EmulatorNode, pid: str) -> bool:
    return pipe_runtime(node, pid)["last-seen"] in (None, "")


def test_a_first_move_interrupted_after_the_copy_exists_still_resets(nodes):
    c = Cluster(nodes)
    _master_ran_against_the_source(c)
    cfg = c.config()
    c.master.add_fault(method="PUT", path="^/api/pipes/crm-person/config$", times=HARD, status=500)
    assert c.run(cfg).outcome == "failed"
    assert "crm-person" in {p["_id"] for p in c.slaves["s1"].api("GET", "/pipes")[1]}
    assert not _reset(c.master, "crm-person")          # the foreign offset is still there
    clear_faults(c)
    assert c.run(cfg).outcome == "ok"
    assert _reset(c.master, "crm-person")
    assert not meta(original(c.master, "pipes", "crm-person")).get("reset_pending")


@pytest.mark.parametrize("rebuilt", ["copy deleted by hand", "slave rebuilt empty"])
def test_a_recreated_copy_resets_the_sync_pipe_even_after_a_crash(nodes, rebuilt):
    c = Cluster(nodes)
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
    s1 = c.slaves["s1"]
    c.sync(s1)
    assert not _reset(c.master, "crm-person")
    if rebuilt == "copy deleted by hand":
        s1.api("DELETE", "/pipes/crm-person")
        s1.api("DELETE", "/datasets/crm-person")
    else:
        for kind in ("pipes", "systems", "datasets"):
            for comp in s1.api("GET", f"/{kind}")[1]:
                s1.api("DELETE", f"/{kind}/{EmulatorNode.quote(comp['_id'])}")
    # The run crashes after the copy is made again, before the master's reset.
    c.clear()
    c.master.add_fault(method="POST", path="^/api/pipes/crm-person/pump$", times=100, status=500)
    assert c.run(cfg).outcome == "failed"
    assert "crm-person" in {p["_id"] for p in s1.api("GET", "/pipes")[1]}
    assert meta(original(c.master, "pipes", "crm-person"))["reset_pending"] is True
    clear_faults(c)
    assert c.run(cfg).outcome == "ok"
    assert _reset(c.master, "crm-person")
    # The owed reset was recorded in the master before the copy was created again.
    order = [(n, m, p) for n, m, p, _ in c.global_writes()]
    flagged = order.index(("master", "PUT", "/api/pipes/crm-person/config"))
    created = order.index(("s1", "POST", "/api/pipes"))
    assert flagged < created


def test_a_reset_is_not_lost_to_a_run_in_flight(nodes):
    c = Cluster(nodes)
    assert c.run(c.config()).outcome == "ok"
    s1 = c.slaves["s1"]
    c.sync(s1)
    # A slow sync run against s1 is in flight when crm moves to s2 (it reads since=1:
    # give it more to read, in slow batches).
    for version in range(3):
        c.src.api("PUT", "/pipes/people/config", {"_id": "people", "type": "pipe", "source": {
            "type": "embedded", "entities": [{"_id": k, "v": version} for k in "abcdef"]}})
        start_pipe(c.src, "people")
    start_pipe(s1, "crm-person")
    c.master.set_knobs(batch_size=1, batch_delay_ms=400)     # 6 entities: over 2 s
    assert c.master.api("POST", "/pipes/crm-person/pump", {"operation": "start"})[0] == 200
    assert pipe_runtime(c.master, "crm-person")["is-running"] is True
    assert c.run(c.config({"s1": [], "s2": ["erp", "crm"]})).outcome == "ok"
    pump = c.master.wait_idle("crm-person")
    assert "stopped" in (pump["runtime"]["last-error"] or "")   # the reset met the run ...
    assert _reset(c.master, "crm-person")           # ... which did not write its offset back
    assert meta(original(c.master, "pipes", "crm-person"))["slave"] == "s2"


def test_pump_operations_refused_while_deploying_are_retried(nodes):
    c = Cluster(nodes)
    assert c.run(c.config()).outcome == "ok"
    c.sync(c.slaves["s1"])
    c.master.set_knobs(deploy_ms=300)
    c.slaves["s2"].set_knobs(deploy_ms=300)
    report = c.run(c.config({"s1": [], "s2": ["erp", "crm"]}))
    assert report.outcome == "ok", report.errors
    assert _reset(c.master, "crm-person")
    refused = [r for r in c.master.requests() if r["status"] == 503]
    assert refused and all(r["path"].endswith("/pump") for r in refused)


def _copy_states(slave: EmulatorNode, pid: str) -> list[tuple[bool, str]]:
    """After every request the slave answers: (disabled, pump mode) of its copy of `pid`."""
    states: list[tuple[bool, str]] = []

    def watch(method: str, path: str, status: int) -> None:
        with slave.store.lock:
            copy = slave.store.pipes.get(pid)
            if copy is not None:
                states.append((copy.disabled, copy.effective["pump"].get("mode", "scheduled")))
    slave.add_observer(watch)
    return states


def test_a_user_disabled_pipe_is_never_enabled_on_a_slave_not_even_for_a_moment(nodes):
    c = Cluster(nodes)
    assert c.master.api("POST", "/pipes/crm-order/pump", {"operation": "disable"})[0] == 200
    s1 = c.slaves["s1"]
    states = _copy_states(s1, "crm-order")
    c.clear()
    assert c.run(c.config()).outcome == "ok"
    assert disabled(s1, "crm-order") and copy_in(s1, "pipes", "crm-order") == c.pipes[1]
    assert states and all(off or mode != "scheduled" for off, mode in states), states
    # A node runs a disabled pipe on a manual `start` (docs/emulator.md): the orchestrator
    # sends none, to any pipe, and the disabled copy has never run.
    assert c.pump_operations("start", "enable") == []
    assert ("s1", "/api/pipes/crm-order/pump", "disable") in c.pump_operations("disable")
    assert s1.api("GET", "/pipes/crm-order/pump")[1]["runtime"]["last-run"] is None


def test_no_run_can_recreate_a_dataset_the_orchestrator_deleted(nodes):
    c = Cluster(nodes)
    assert c.run(c.config()).outcome == "ok"
    s1 = c.slaves["s1"]
    c.sync(s1)
    moved = c.config({"s1": [], "s2": ["erp", "crm"]})
    # A crash after the dataset went, before the pipe did.
    s1.add_fault(method="DELETE", path="^/api/pipes/crm-person$", times=HARD, status=500)
    assert c.run(moved).outcome == "failed"
    assert s1.api("GET", "/datasets/crm-person")[0] == 404
    status, pump = s1.api("GET", "/pipes/crm-person/pump")
    assert status == 200 and pump["runtime"]["is-disabled"] is True   # cannot run on schedule
    order = [(m, p) for n, m, p, _ in c.global_writes() if n == "s1" and "crm-person" in p]
    assert order.index(("POST", "/api/pipes/crm-person/pump")) < \
        order.index(("DELETE", "/api/datasets/crm-person"))
    clear_faults(c)
    assert c.run(moved).outcome == "ok"
    assert "crm-person" not in {p["_id"] for p in s1.api("GET", "/pipes")[1]}
    assert s1.api("GET", "/datasets/crm-person")[0] == 404


def test_with_a_scheduler_a_disabled_copy_never_runs_and_deleted_datasets_stay_gone(nodes):
    c = Cluster(nodes)
    assert c.master.api("POST", "/pipes/crm-order/pump", {"operation": "disable"})[0] == 200
    s1, s2 = c.slaves["s1"], c.slaves["s2"]
    for slave in (s1, s2):
        slave.set_knobs(schedule_ms=20)     # the slaves' schedulers start every due pipe
    c.clear()
    assert c.run(c.config()).outcome == "ok"
    s1.wait_ticks(3)
    s1.wait_idle("crm-person")
    assert pipe_runtime(s1, "crm-person") and \
        s1.api("GET", "/pipes/crm-person/pump")[1]["runtime"]["last-run"] is not None
    assert s1.api("GET", "/pipes/crm-order/pump")[1]["runtime"]["last-run"] is None
    assert c.run(c.config({"s1": [], "s2": ["erp", "crm"]})).outcome == "ok"
    s1.wait_ticks(3)
    s2.wait_ticks(3)
    assert {p["_id"] for p in s1.api("GET", "/pipes")[1]} & {"crm-person", "crm-order"} == set()
    assert s1.api("GET", "/datasets/crm-person")[0] == 404
    assert s1.api("GET", "/datasets/orders")[0] == 404
    assert s2.api("GET", "/pipes/crm-order/pump")[1]["runtime"]["last-run"] is None
    # Only the slaves' schedulers ran pipes: the orchestrator started or enabled none, in
    # either run (a manual start would have run the disabled copy: docs/emulator.md).
    assert c.pump_operations("start", "enable") == []


# --- adversarial review (breaker) ---

def test_a_user_disabled_pipe_whose_pump_mode_comes_from_env_is_never_enabled(nodes):
    """The pump mode is read from the env (`$ENV(pump-mode)` = scheduled): the copy of a pipe
    the user had disabled must never be an enabled, scheduled pump on the slave."""
    c = Cluster(nodes, seed=False)
    order = {**c.pipes[1], "pump": {"mode": "$ENV(pump-mode)"}}
    c.master.seed(systems=c.systems, pipes=[c.pipes[0], order, *c.pipes[2:]],
                  env={"region": "eu", "pump-mode": "scheduled"})
    assert c.master.api("POST", "/pipes/crm-order/pump", {"operation": "disable"})[0] == 200
    s1 = c.slaves["s1"]
    states = _copy_states(s1, "crm-order")
    c.clear()
    assert c.run(c.config()).outcome == "ok"
    assert disabled(s1, "crm-order") and copy_in(s1, "pipes", "crm-order") == order
    assert states and all(off or mode != "scheduled" for off, mode in states), states
    assert c.pump_operations("start", "enable") == []
    assert s1.api("GET", "/pipes/crm-order/pump")[1]["runtime"]["last-run"] is None


@pytest.mark.xfail(strict=True, reason=(
    "silent loss of changes: the only sign the planner uses for a re-created copy is its "
    "absence from the slave's listing. When the copy is re-created by someone else before "
    "the next run (a slave rebuilt empty and its config restored from a backup), its new "
    "dataset restarts its offsets at 0 while the master's sync pipe keeps its old last-seen, "
    "so the master skips every version below it. Needs another sign, e.g. the slave "
    "dataset's X-Dataset-Generation recorded in the sync pipe's metadata and a reset when "
    "it changes"))
def test_a_copy_restored_from_a_backup_on_a_rebuilt_slave_resets_the_sync_pipe(nodes):
    c = Cluster(nodes)
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
    s1 = c.slaves["s1"]
    c.sync(s1)
    assert not _reset(c.master, "crm-person")
    backup = {kind: [comp["config"]["original"] for comp in s1.api("GET", f"/{kind}")[1]]
              for kind in ("systems", "pipes")}
    for kind in ("pipes", "systems", "datasets"):            # the slave is rebuilt empty ...
        for comp in s1.api("GET", f"/{kind}")[1]:
            s1.api("DELETE", f"/{kind}/{EmulatorNode.quote(comp['_id'])}")
    for kind in ("systems", "pipes"):                        # ... and its config restored
        assert s1.api("POST", f"/{kind}", backup[kind])[0] in (200, 201)
    # Meanwhile Ann became Anna in the source (its dataset compacted to the latest versions);
    # the restored copy reads everything afresh.
    c.src.api("DELETE", "/datasets/people")
    c.src.api("PUT", "/pipes/people/config", {"_id": "people", "type": "pipe", "source": {
        "type": "embedded", "entities": [{"_id": "a", "name": "Anna"}, {"_id": "b", "name": "Bob"}]}})
    start_pipe(c.src, "people")
    assert start_pipe(s1, "crm-person")["runtime"]["success"] is True
    assert c.run(cfg).outcome == "ok"
    assert start_pipe(c.master, "crm-person")["runtime"]["success"] is True
    latest = {e["_id"]: e.get("name") for e in entities(c.master, "crm-person")}
    assert latest["a"] == "Anna", latest
