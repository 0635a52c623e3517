"""Issue 12.4: whenever a synchronising pipe starts reading a dataset new to it, its offset
is reset, and the owed reset survives crashes, failed writes, runs in flight and pipes still
deploying. Disabled pipes are never enabled on a slave; deleted datasets stay deleted."""
from __future__ import annotations

import json
import pytest

from contract_helpers import (CRM_PIPES, HARD, UNREADABLE, Cluster, assert_steady, clear_faults,
                              copy_in, described, disabled, entities, ids, meta, original,
                              pipe_runtime, pump, put, run_as_planned, start_pipe, the_original)
from emulator import EmulatorNode
from service.config import Config, load_config

def _synced_on_s1_then_s1_replaced(nodes) -> tuple[Cluster, Config]:
    """crm moved to s1 and its data synced once; then s1's entry points at node s3 (a
    replaced node: same slave id, new address). Returns the cluster and that configuration."""
    c = Cluster(nodes, slaves=("s1", "s2", "s3"))
    c.placed({"s1": ["crm"], "s2": ["erp"]})
    c.sync(c.slaves["s1"])
    return c, c.replaced({"s1": ["crm"], "s2": ["erp"]}, "s1", by="s3")


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
    cfg = c.synced_on_s1()
    s1 = c.slaves["s1"]
    assert not _reset(c.master, "crm-person")
    if rebuilt == "copy deleted by hand":
        s1.api("DELETE", "/pipes/crm-person")
        s1.api("DELETE", "/datasets/crm-person")
    else:
        for kind in ("pipes", "systems", "datasets"):
            for comp in s1.api("GET", f"/{kind}")[1]:
                s1.api("DELETE", f"/{kind}/{EmulatorNode.quote(comp['_id'])}")
    # The run crashes after the copy is made again, before the master's reset. Whether s1
    # holds crm-person's copy at each master write of crm-person is noted in process: the
    # request log does not say which bulk POST carried which pipe (crm-order's may go first).
    copy_there: list[bool] = []
    c.master.add_observer(lambda method, path, status: copy_there.append(
        "crm-person" in s1.store.pipes) if (method, path) == (
            "PUT", "/api/pipes/crm-person/config") else None)
    c.clear()
    c.master.add_fault(method="POST", path="^/api/pipes/crm-person/pump$", times=100, status=500)
    assert c.run(cfg).outcome == "failed"
    assert "crm-person" in {p["_id"] for p in s1.api("GET", "/pipes")[1]}
    assert meta(original(c.master, "pipes", "crm-person"))["reset_pending"] is True
    clear_faults(c)
    assert c.run(cfg).outcome == "ok"
    assert _reset(c.master, "crm-person")
    # The owed reset was recorded in the master (the crashed run's first write of
    # crm-person) before the copy was created again.
    assert copy_there and copy_there[0] is False, copy_there


def test_a_reset_is_not_lost_to_a_run_in_flight(nodes):
    c = Cluster(nodes)
    c.synced_on_s1()
    s1 = c.slaves["s1"]
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
    c.placed({"s1": [], "s2": ["erp", "crm"]})
    pump = c.master.wait_idle("crm-person")
    assert "stopped" in (pump["runtime"]["last-error"] or "")   # the reset met the run ...
    assert _reset(c.master, "crm-person")           # ... which did not write its offset back
    assert meta(original(c.master, "pipes", "crm-person"))["slave"] == "s2"


def test_pump_operations_refused_while_deploying_are_retried(nodes):
    c = Cluster(nodes)
    c.placed()
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
    c.placed()
    assert disabled(s1, "crm-order") and copy_in(s1, "pipes", "crm-order") == c.pipes[1]
    assert states and all(off or mode != "scheduled" for off, mode in states), states
    # A node runs a disabled pipe on a manual `start` (docs/emulator.md): the orchestrator
    # sends none, to any pipe, and the disabled copy has never run.
    assert c.pump_operations("start", "enable") == []
    assert ("s1", "/api/pipes/crm-order/pump", "disable") in c.pump_operations("disable")
    assert s1.api("GET", "/pipes/crm-order/pump")[1]["runtime"]["last-run"] is None


def test_no_run_can_recreate_a_dataset_the_orchestrator_deleted(nodes):
    c = Cluster(nodes)
    c.synced_on_s1()
    s1 = c.slaves["s1"]
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
    c.placed()
    s1.wait_ticks(3)
    s1.wait_idle("crm-person")
    assert pipe_runtime(s1, "crm-person") and \
        s1.api("GET", "/pipes/crm-person/pump")[1]["runtime"]["last-run"] is not None
    assert s1.api("GET", "/pipes/crm-order/pump")[1]["runtime"]["last-run"] is None
    c.placed({"s1": [], "s2": ["erp", "crm"]})
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
    c.placed()
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
    cfg = c.synced_on_s1()
    s1 = c.slaves["s1"]
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


def _bump_offsets(c: Cluster, slave, rounds: int = 3) -> None:
    """Make the slave's crm-order dataset offsets run well ahead of a fresh dataset's."""
    for i in range(rounds):
        put(c.src, "pipes", "orders", {"_id": "orders", "type": "pipe", "source": {
            "type": "embedded", "entities": [{"_id": "o1", "total": 10 + i}]}})
        start_pipe(c.src, "orders")
        start_pipe(slave, "crm-order")


# Found in review round 1 (fixed since).
def test_sync_pipe_reset_when_its_dataset_changes(nodes):
    c = Cluster(nodes)
    cfg = c.placed()
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


# Found in review round 2 (fixed since).
def test_owed_reset_is_done_even_when_the_new_slave_is_unreadable(nodes):
    c = Cluster(nodes)
    c.synced_on_s1()
    s2 = c.slaves["s2"]
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


# Found in review round 2 (fixed since).
def test_slave_endpoint_change_resets_the_sync_pipes(nodes):
    c = Cluster(nodes, slaves=("s1", "s2", "s3"))
    c.placed({"s1": ["crm"], "s2": ["erp"]})
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


# An attack from review round 2, survived.
def test_move_between_slaves_then_back_while_a_reset_is_owed(nodes):
    c = Cluster(nodes)
    c.synced_on_s1()
    s1, s2 = c.slaves["s1"], c.slaves["s2"]
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


# Found in review round 3 (fixed since).
@pytest.mark.usefixtures("no_component_planned_twice")
def test_owed_reset_while_slave_unreadable_then_endpoint_change_resets_again(nodes):
    c = Cluster(nodes, slaves=("s1", "s2", "s3"))
    c.placed({"s1": ["crm"], "s2": ["erp"]})
    s1, s2, s3 = (c.slaves[s] for s in ("s1", "s2", "s3"))
    c.sync(s1)
    moved = c.config({"s1": [], "s2": ["erp", "crm"]})
    c.master.add_fault(method="POST", path="^/api/pipes/crm-person/pump$", status=500)
    assert c.run(moved).outcome == "failed"
    assert meta(original(c.master, "pipes", "crm-person"))["reset_pending"] is True
    clear_faults(c)
    # s2 is replaced by a new node (s3's endpoint and token) that does not answer yet
    env = c.environ({"s1": [], "s2": ["erp", "crm"]})
    slaves = json.loads(env["SLAVE_NODES"])
    slaves[1]["endpoint"], slaves[1]["jwt_token"] = s3.url, c.tokens["s3"]
    env["SLAVE_NODES"] = json.dumps(slaves)
    replaced = load_config(env)
    s3.add_fault(**UNREADABLE)
    c.run(replaced)
    assert s2.url in original(c.master, "systems", "crm")["url_pattern"]   # still the old node
    start_pipe(s2, "crm-person")
    start_pipe(c.master, "crm-person")            # the sync pipe reads the old node meanwhile
    assert pipe_runtime(c.master, "crm-person")["last-seen"] not in (None, "")
    clear_faults(c)
    assert c.run(replaced).outcome == "ok"
    assert s3.url in original(c.master, "systems", "crm")["url_pattern"]
    # it now reads s3 through crm: the old node's offsets must be gone
    assert pipe_runtime(c.master, "crm-person")["last-seen"] in (None, "")


# An attack from review round 3, survived.
@pytest.mark.usefixtures("no_component_planned_twice")
def test_owed_reset_while_unreadable_deletes_only_what_the_master_no_longer_reads(nodes):
    c = Cluster(nodes)
    c.synced_on_s1()
    s1, s2 = c.slaves["s1"], c.slaves["s2"]
    moved = c.config({"s1": [], "s2": ["erp", "crm"]})
    c.master.add_fault(method="POST", path="^/api/pipes/crm-person/pump$", status=500)
    assert c.run(moved).outcome == "failed"
    # s1 still holds crm-person: its master pipe has not been reset yet
    assert "crm-person" in ids(s1, "pipes") and "crm" in ids(s1, "systems")
    s2.add_fault(**UNREADABLE)
    c.clear()
    c.run(moved)
    assert not c.writes()["s2"]
    assert pipe_runtime(c.master, "crm-person")["last-seen"] in (None, "")
    assert "reset_pending" not in meta(original(c.master, "pipes", "crm-person"))
    # the master reads crm-person from s2 now: s1's copy may go, and went after the reset
    order = [(n, m, p) for n, m, p, s in c.global_writes()]
    reset = order.index(("master", "POST", "/api/pipes/crm-person/pump"))
    gone = order.index(("s1", "DELETE", "/api/pipes/crm-person"))
    assert reset < gone
    assert ids(s1, "pipes") == set() and ids(s1, "systems") == set()
    clear_faults(c)
    assert c.run(moved).outcome == "ok"
    assert_steady(c, moved)


# An attack from review round 3, survived.
@pytest.mark.usefixtures("no_component_planned_twice")
def test_reset_on_endpoint_change_waits_for_the_system_rewrite(nodes):
    c, replaced = _synced_on_s1_then_s1_replaced(nodes)
    s3 = c.slaves["s3"]
    # the master's system rewrite fails: the pipes must not be reset against the old node
    c.master.add_fault(method="PUT", path="^/api/systems/crm/", status=500, times=HARD)
    assert c.run(replaced).outcome == "failed"
    for pid in CRM_PIPES:
        assert meta(original(c.master, "pipes", pid))["reset_pending"] is True
    clear_faults(c)
    start_pipe(c.master, "crm-person")         # still reading s1 through crm: gains offsets
    assert c.run(replaced).outcome == "ok"
    for pid in CRM_PIPES:
        assert pipe_runtime(c.master, pid)["last-seen"] in (None, "")
        assert "reset_pending" not in meta(original(c.master, "pipes", pid))
    assert copy_in(s3, "pipes", "crm-person") == c.pipes[0]
    assert_steady(c, replaced)


# An attack from review round 3, survived.
@pytest.mark.usefixtures("no_component_planned_twice")
def test_endpoint_change_while_the_slave_is_unreadable_moves_nothing_then_resets(nodes):
    c, replaced = _synced_on_s1_then_s1_replaced(nodes)
    s3 = c.slaves["s3"]
    s3.add_fault(**UNREADABLE)
    c.clear()
    c.run(replaced)
    assert not c.writes()["master"]
    clear_faults(c)
    pump(c.master, "crm-order", "disable")     # ignored: disabled after the move, not before
    start_pipe(c.master, "crm-person")
    assert c.run(replaced).outcome == "ok"
    for pid in CRM_PIPES:
        assert pipe_runtime(c.master, pid)["last-seen"] in (None, "")
        assert copy_in(s3, "pipes", pid) == the_original(c.master, "pipes", pid)
    assert not disabled(s3, "crm-order") and disabled(c.master, "crm-order")
    assert_steady(c, replaced)


# An attack from review round 3, survived.
@pytest.mark.usefixtures("no_component_planned_twice")
def test_feeders_are_reset_when_the_master_endpoint_changes(nodes):
    # The master is reached at a new address (a new DNS name, say): the feeders' offsets are
    # from reading the old address; the same node or not, they re-read from the start.
    c = Cluster(nodes)
    c.placed()
    s2 = c.feed_local_data()
    assert pipe_runtime(s2, "orchestrator-feed-local-data")["last-seen"] not in (None, "")
    new_endpoint = c.master.url.replace("127.0.0.1", "localhost")
    moved = c.config(master_extra={"endpoint": new_endpoint})
    c.clear()
    assert c.run(moved).outcome == "ok"
    feeder = copy_in(s2, "pipes", "orchestrator-feed-local-data")
    assert meta(feeder)["master"] == new_endpoint
    assert pipe_runtime(s2, "orchestrator-feed-local-data")["last-seen"] in (None, "")
    order = [(n, m, p) for n, m, p, _ in c.global_writes() if n == "s2"]
    reset = order.index(("s2", "POST", "/api/pipes/orchestrator-feed-local-data/pump"))
    put_ = order.index(("s2", "PUT", "/api/pipes/orchestrator-feed-local-data/config"))
    assert reset < put_        # marked with the new master only once reset
    assert_steady(c, moved)


# An attack from review round 3, survived.
@pytest.mark.usefixtures("no_component_planned_twice")
def test_reuploading_a_moved_pipe_resets_it_and_the_re_read_loses_nothing(nodes):
    # A master pipe without our marker that becomes a sync pipe cannot be told apart from a
    # first move interrupted after its copy was made (offsets of the on-premise source), so
    # it is always reset (issue 12.4). The full re-read of the populated copy costs time only.
    c = Cluster(nodes)
    cfg = c.placed()
    s1 = c.slaves["s1"]
    start_pipe(s1, "crm-person")
    start_pipe(c.master, "crm-person")
    before = entities(c.master, "crm-person")
    assert before and pipe_runtime(c.master, "crm-person")["last-seen"] not in (None, "")
    for upload in (c.pipes[0], {**c.pipes[0], "transform": {"type": "dtl", "rules": {
            "default": [["copy", "*"]]}}}):
        put(c.master, "pipes", "crm-person", upload)          # the user uploads it again
        c.clear()
        assert c.run(cfg).outcome == "ok"
        assert copy_in(s1, "pipes", "crm-person") == upload
        assert pipe_runtime(c.master, "crm-person")["last-seen"] in (None, "")
        start_pipe(s1, "crm-person")
        assert start_pipe(c.master, "crm-person")["runtime"]["success"] is True
        assert entities(c.master, "crm-person") == before    # no new version, no delete
    assert_steady(c, cfg)


# An attack from review round 4, survived.
@pytest.mark.parametrize("fault", [{"status": 500}, {"drop_after": True}])
def test_use_binary_source_switched_on_while_a_reset_is_owed(nodes, fault):
    c = Cluster(nodes)
    run_as_planned(c, c.config({"s1": ["crm"], "s2": ["erp"]}))
    s1 = c.slaves["s1"]
    c.sync(s1)
    moved = {"s1": [], "s2": ["erp", "crm"]}
    c.master.add_fault(method="POST", path="^/api/pipes/crm-person/pump$", times=1, **fault)
    c.run(c.config(moved))
    assert meta(original(c.master, "pipes", "crm-person"))["reset_pending"] is True
    clear_faults(c)
    binary = c.config(moved, master_extra={"use_binary_source": True})
    c.clear()
    report = run_as_planned(c, binary)
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
    report = run_as_planned(c, json_cfg)
    assert not [a for a in described(report) if a[0] == "reset-pipe"]
    assert original(c.master, "pipes", "crm-person")["source"]["type"] == "json"
    assert_steady(c, json_cfg)
