"""Review round 3: attacks on holds (blocked components, the keep closure, feeders dropped for
kept sinks), user-disabled pipes, owed resets while the new slave is unreadable, resets on a
slave's endpoint change, and their interplay with moves, move-backs, re-uploads and faults.

Every plan made in this file is also checked for a component planned twice in one run (two
writes of one kind to one id; the reset sequence's two PUTs of a sync pipe excepted).

The first group are bugs this round found (fixed since), each asserting the correct
behaviour; the rest are attacks the implementation survived, kept as regression tests.
"""
from __future__ import annotations

import json
from collections import Counter

import pytest

from contract_helpers import (copy_in, CRM_PIPES, assert_steady, cannot_run, clear_faults, Cluster, disabled,
                              entities, pump_mode,
                              has_dataset, ids, meta, original, pipe_runtime, put, start_pipe,
                              the_original)
from service import orchestrator
from service.nodes.client import SesamClient
from service.config import load_config

UNREADABLE = {"method": "GET", "path": "^/api/pipes$", "status": 401, "times": 1000}
ENV_403 = {"method": "GET", "path": "^/api/env$", "status": 403, "times": 1000}
HARD = 4          # a PUT/DELETE is tried four times: four hits make it fail
HR = {"_id": "hr", "type": "system:url", "base_url": "http://127.0.0.1:9/"}


@pytest.fixture(autouse=True)
def _no_retry_backoff(monkeypatch):
    monkeypatch.setitem(SesamClient.__init__.__kwdefaults__, "backoff", 0.0)


@pytest.fixture(autouse=True)
def _no_component_planned_twice(monkeypatch):
    """Wrap the planner: no (kind, node, id) twice in a plan, except a sync pipe's two PUTs
    around its reset (flagged, then clean)."""
    seen: list[str] = []
    real = orchestrator.make_plan

    def checked(*args, **kwargs):
        the_plan = real(*args, **kwargs)
        counts = Counter((a.kind, a.node, a.id) for a in the_plan.actions)
        for (kind, node, cid), n in counts.items():
            resets = counts.get(("reset-pipe", node, cid), 0)
            if n > 1 and not (kind == "update-pipe" and n == 2 and resets == 1):
                seen.append(f"{kind} {node} {cid} x{n}")
        return the_plan
    monkeypatch.setattr(orchestrator, "make_plan", checked)
    yield
    assert not seen, seen



def _datasets(node) -> set[str]:
    return {d["_id"] for d in node.api("GET", "/datasets")[1]}




def _pump(node, pid: str, operation: str) -> None:
    assert node.api("POST", f"/pipes/{pid}/pump", {"operation": operation})[0] == 200


# --------------------------------------------------------------------------------------
# Bugs
# --------------------------------------------------------------------------------------

def test_reupload_of_a_moved_outbound_pipe_keeps_it_running_on_the_slave(nodes):
    c = Cluster(nodes)
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
    s2 = c.slaves["s2"]
    assert not disabled(s2, "erp-out") and cannot_run(c.master, "erp-out")   # placeholder off
    edited = {**c.pipes[5], "description": "the user's edit"}
    put(c.master, "pipes", "erp-out", edited)        # a routine edit of the original
    assert c.run(cfg).outcome == "ok"
    assert copy_in(s2, "pipes", "erp-out") == edited
    assert not disabled(s2, "erp-out")               # the user never disabled it
    assert not meta(original(c.master, "pipes", "erp-out")).get("disabled")
    assert_steady(c, cfg)


def test_user_enables_and_reuploads_a_disabled_pipe_and_it_runs_on_the_slave(nodes):
    c = Cluster(nodes)
    _pump(c.master, "crm-person", "disable")
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
    s1 = c.slaves["s1"]
    assert disabled(s1, "crm-person")
    assert meta(original(c.master, "pipes", "crm-person"))["disabled"] is True
    # README: "To run it, enable it and upload it again (which makes it a new original)."
    _pump(c.master, "crm-person", "enable")
    put(c.master, "pipes", "crm-person", c.pipes[0])
    assert c.run(cfg).outcome == "ok"
    assert not meta(original(c.master, "pipes", "crm-person")).get("disabled")
    assert not disabled(s1, "crm-person")
    assert_steady(c, cfg)


@pytest.mark.parametrize("fault", [{"status": 500}, {"drop": True}])
def test_move_back_of_an_outbound_pipe_needs_no_pump_operation(nodes, fault):
    # The placeholder's pump is `off` (it cannot run) and is never disabled: coming back
    # needs no enable, so a node refusing pump operations cannot hold the move back.
    c = Cluster(nodes)
    assert c.run(c.config()).outcome == "ok"
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


def test_owed_reset_while_slave_unreadable_then_endpoint_change_resets_again(nodes):
    c = Cluster(nodes, slaves=("s1", "s2", "s3"))
    assert c.run(c.config({"s1": ["crm"], "s2": ["erp"]})).outcome == "ok"
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


def test_kept_outbound_pipe_keeps_the_dataset_it_reads_on_its_slave(nodes):
    c = Cluster(nodes, seed=False, slaves=("s1", "s2", "s3"))
    out = {"_id": "person-out", "type": "pipe",
           "source": {"type": "dataset", "dataset": "crm-person"},
           "sink": {"type": "json", "system": "erp", "url": "people"}}
    c.master.seed(systems=c.systems, pipes=[*c.pipes, out])
    assert c.run(c.config({"s1": ["crm", "erp"]})).outcome == "ok"
    s1 = c.slaves["s1"]
    assert "orchestrator-feed-crm-person" not in ids(s1, "pipes")   # s1 writes it itself
    start_pipe(s1, "crm-person")
    assert has_dataset(s1, "crm-person")
    # crm moves to s2; erp to s3, which does not answer: person-out is kept on s1
    c.slaves["s3"].add_fault(**UNREADABLE)
    c.run(c.config({"s1": [], "s2": ["crm"], "s3": ["erp"]}))
    assert copy_in(s1, "pipes", "person-out") == out
    # what the kept pipe reads must still be there (or be fed)
    assert has_dataset(s1, "crm-person")


# --------------------------------------------------------------------------------------
# Attacks survived
# --------------------------------------------------------------------------------------

def test_feeder_system_stays_while_a_kept_outbound_pipe_uses_it_after_the_last_one_leaves(nodes):
    c = Cluster(nodes, seed=False, slaves=("s1", "s2", "s3"))
    hr_out = {"_id": "hr-out", "type": "pipe", "source": {"type": "dataset", "dataset": "orders"},
              "sink": {"type": "json", "system": "hr", "url": "x"}}
    c.master.seed(systems=[*c.systems, HR], pipes=[*c.pipes, hr_out])
    assert c.run(c.config({"s1": ["crm"], "s2": ["erp", "hr"]})).outcome == "ok"
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
    final = c.config({"s1": ["crm", "erp"], "s2": [], "s3": ["hr"]})
    assert c.run(final).outcome == "ok"
    assert ids(s2, "pipes") == set() and ids(s2, "systems") == set()
    assert copy_in(c.slaves["s3"], "pipes", "hr-out") == hr_out
    assert_steady(c, final)


def test_user_disabled_pipe_stays_disabled_through_a_move_between_slaves_and_back(nodes):
    c = Cluster(nodes)
    _pump(c.master, "crm-order", "disable")
    assert c.run(c.config()).outcome == "ok"
    s1, s2 = c.slaves["s1"], c.slaves["s2"]
    assert disabled(s1, "crm-order") and not disabled(s1, "crm-person")
    moved = c.config({"s1": [], "s2": ["erp", "crm"]})
    assert c.run(moved).outcome == "ok"
    assert disabled(s2, "crm-order") and not disabled(s2, "crm-person")
    assert meta(original(c.master, "pipes", "crm-order"))["disabled"] is True
    assert_steady(c, moved)
    back = c.config({"s2": ["erp"]})
    assert c.run(back).outcome == "ok"
    assert original(c.master, "pipes", "crm-order") == c.pipes[1]
    assert disabled(c.master, "crm-order")
    assert not set(CRM_PIPES) & ids(s2, "pipes")
    assert_steady(c, back)


@pytest.mark.parametrize("fault", [{"status": 500}, {"drop": True}])
def test_disabled_flag_survives_a_failed_disable_on_the_new_slave(nodes, fault):
    c = Cluster(nodes)
    _pump(c.master, "crm-order", "disable")
    assert c.run(c.config()).outcome == "ok"
    s2 = c.slaves["s2"]
    moved = c.config({"s1": [], "s2": ["erp", "crm"]})
    # created on s2, then its disable fails (the crash between create and disable): the
    # copy was created in `manual` mode, so it is never scheduled while not yet disabled
    s2.add_fault(method="POST", path="^/api/pipes/crm-order/pump$", times=HARD, **fault)
    assert c.run(moved).outcome == "failed"
    assert pump_mode(s2, "crm-order") == "manual" and not disabled(s2, "crm-order")
    assert the_original(c.master, "pipes", "crm-order") == c.pipes[1]
    clear_faults(c)
    assert c.run(moved).outcome == "ok"
    assert disabled(s2, "crm-order")
    assert_steady(c, moved)


def test_first_move_of_a_disabled_pipe_with_a_failed_slave_disable_converges(nodes):
    c = Cluster(nodes)
    _pump(c.master, "erp-out", "disable")
    s2 = c.slaves["s2"]
    s2.add_fault(method="POST", path="^/api/pipes/erp-out/pump$", status=500, times=HARD)
    cfg = c.config()
    assert c.run(cfg).outcome == "failed"
    assert not disabled(s2, "erp-out") and pump_mode(s2, "erp-out") == "manual"   # not scheduled
    clear_faults(c)
    assert c.run(cfg).outcome == "ok"
    assert disabled(s2, "erp-out")
    assert meta(original(c.master, "pipes", "erp-out"))["disabled"] is True
    assert_steady(c, cfg)
    back = c.config({"s1": ["crm"]})
    assert c.run(back).outcome == "ok"
    assert original(c.master, "pipes", "erp-out") == c.pipes[5]
    assert disabled(c.master, "erp-out")       # the user's choice, not our placeholder's
    assert_steady(c, back)


def test_owed_reset_while_unreadable_deletes_only_what_the_master_no_longer_reads(nodes):
    c = Cluster(nodes)
    assert c.run(c.config()).outcome == "ok"
    s1, s2 = c.slaves["s1"], c.slaves["s2"]
    c.sync(s1)
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


def test_blocked_move_with_a_user_reupload_keeps_the_old_copy_and_converges(nodes):
    c = Cluster(nodes)
    assert c.run(c.config()).outcome == "ok"
    s1, s2 = c.slaves["s1"], c.slaves["s2"]
    start_pipe(s1, "crm-person")
    edited = {**c.pipes[0], "description": "edited while s2 is down"}
    put(c.master, "pipes", "crm-person", edited)
    s2.add_fault(**UNREADABLE)
    moved = c.config({"s1": [], "s2": ["erp", "crm"]})
    c.clear()
    assert c.run(moved).outcome == "failed"
    assert not c.writes()["master"]
    assert original(c.master, "pipes", "crm-person") == edited     # nothing lost
    assert copy_in(s1, "pipes", "crm-person") == c.pipes[0]
    assert has_dataset(s1, "crm-person") and "crm" in ids(s1, "systems")
    clear_faults(c)
    assert c.run(moved).outcome == "ok"
    assert copy_in(s2, "pipes", "crm-person") == edited
    assert ids(s1, "pipes") == set() and not has_dataset(s1, "crm-person")
    assert_steady(c, moved)


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
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
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


def test_reset_on_endpoint_change_waits_for_the_system_rewrite(nodes):
    c = Cluster(nodes, slaves=("s1", "s2", "s3"))
    cfg = c.config({"s1": ["crm"], "s2": ["erp"]})
    assert c.run(cfg).outcome == "ok"
    s1, s3 = c.slaves["s1"], c.slaves["s3"]
    c.sync(s1)
    replaced = c.replaced({"s1": ["crm"], "s2": ["erp"]}, "s1", by="s3")
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


def test_endpoint_change_while_the_slave_is_unreadable_moves_nothing_then_resets(nodes):
    c = Cluster(nodes, slaves=("s1", "s2", "s3"))
    cfg = c.config({"s1": ["crm"], "s2": ["erp"]})
    assert c.run(cfg).outcome == "ok"
    s1, s3 = c.slaves["s1"], c.slaves["s3"]
    c.sync(s1)
    replaced = c.replaced({"s1": ["crm"], "s2": ["erp"]}, "s1", by="s3")
    s3.add_fault(**UNREADABLE)
    c.clear()
    c.run(replaced)
    assert not c.writes()["master"]
    clear_faults(c)
    _pump(c.master, "crm-order", "disable")     # ignored: disabled after the move, not before
    start_pipe(c.master, "crm-person")
    assert c.run(replaced).outcome == "ok"
    for pid in CRM_PIPES:
        assert pipe_runtime(c.master, pid)["last-seen"] in (None, "")
        assert copy_in(s3, "pipes", pid) == the_original(c.master, "pipes", pid)
    assert not disabled(s3, "crm-order") and disabled(c.master, "crm-order")
    assert_steady(c, replaced)


def test_inbound_placeholder_pipe_moved_back_runs_again_in_the_master(nodes):
    # An inbound pipe writing to another system on the same slave gets a placeholder (pump
    # off, never disabled); given back, it is restored and runs (the user never disabled it).
    c = Cluster(nodes, seed=False)
    to_erp = {"_id": "crm-to-erp", "type": "pipe",
              "source": {"type": "json", "system": "crm", "url": "people"},
              "sink": {"type": "json", "system": "erp", "url": "x"}}
    c.master.seed(systems=c.systems, pipes=[*c.pipes, to_erp])
    assert c.run(c.config({"s1": ["crm", "erp"]})).outcome == "ok"
    assert cannot_run(c.master, "crm-to-erp") and not disabled(c.slaves["s1"], "crm-to-erp")
    back = c.config({"s1": []})
    assert c.run(back).outcome == "ok"
    assert original(c.master, "pipes", "crm-to-erp") == to_erp
    assert not disabled(c.master, "crm-to-erp")
    assert_steady(c, back)


def test_the_scenario_with_unreadable_slaves_and_faults_plans_nothing_twice(nodes):
    from scenarios import FIRST, NEXT, build, holds_every_original, latest_originals
    sc = build(nodes)
    first = latest_originals(sc.master)
    nxt = sc.config(NEXT)
    sc.s2.add_fault(**UNREADABLE)
    assert orchestrator.run(nxt).outcome == "failed"
    sc.s2.emulator("DELETE", "/faults")
    sc.master.add_fault(method="*", path="^/api/pipes/", writes_only=True, skip=2, times=2,
                        status=500)
    orchestrator.run(nxt)
    sc.master.emulator("DELETE", "/faults")
    sc.s1.add_fault(**UNREADABLE)
    orchestrator.run(sc.config(FIRST))           # back, with the old slave s1 unreadable
    sc.s1.emulator("DELETE", "/faults")
    assert orchestrator.run(sc.config(FIRST)).outcome == "ok"
    assert orchestrator.run(sc.config(FIRST)).actions == []
    assert not holds_every_original(sc.master, first)
    assert latest_originals(sc.master) == first


def test_kept_writer_means_no_feeder_then_the_feeder_comes_when_it_leaves(nodes):
    c = Cluster(nodes, seed=False)
    out = {"_id": "orders-out", "type": "pipe", "source": {"type": "dataset", "dataset": "orders"},
           "sink": {"type": "json", "system": "erp", "url": "o"}}
    c.master.seed(systems=c.systems, pipes=[*c.pipes, out])
    assert c.run(c.config({"s1": ["crm", "erp"], "s2": []})).outcome == "ok"
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


def test_user_disabled_outbound_pipe_reuploaded_while_still_disabled_stays_disabled(nodes):
    c = Cluster(nodes)
    _pump(c.master, "erp-out", "disable")
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
    s2 = c.slaves["s2"]
    assert disabled(s2, "erp-out")
    edited = {**c.pipes[5], "description": "edited, still disabled"}
    put(c.master, "pipes", "erp-out", edited)
    assert c.run(cfg).outcome == "ok"
    assert copy_in(s2, "pipes", "erp-out") == edited and disabled(s2, "erp-out")
    assert meta(original(c.master, "pipes", "erp-out"))["disabled"] is True
    back = c.config({"s1": ["crm"], "s2": []})
    assert c.run(back).outcome == "ok"
    assert original(c.master, "pipes", "erp-out") == edited and disabled(c.master, "erp-out")
    assert_steady(c, back)


def test_feeders_are_reset_when_the_master_endpoint_changes(nodes):
    # The master is reached at a new address (a new DNS name, say): the feeders' offsets are
    # from reading the old address; the same node or not, they re-read from the start.
    c = Cluster(nodes)
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
    s2 = c.slaves["s2"]
    start_pipe(c.master, "local-data")
    start_pipe(s2, "orchestrator-feed-local-data")
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


def test_outbound_pipe_stays_a_placeholder_while_its_slave_is_down(nodes):
    # erp is given up while s2 (where erp-out pushes to erp) cannot be read: restoring
    # erp-out in the master now would make two writers to erp, the copy in s2 still running.
    c = Cluster(nodes)
    assert c.run(c.config()).outcome == "ok"
    back = c.config({"s1": ["crm"], "s2": []})
    c.slaves["s2"].add_fault(method="GET", path="^/api/pipes$", status=401, times=HARD)
    assert c.run(back).outcome == "failed"
    assert meta(original(c.master, "pipes", "erp-out")) is not None      # still our placeholder
    assert cannot_run(c.master, "erp-out")
    clear_faults(c)
    assert c.run(back).outcome == "ok"                                    # s2 answers again
    assert original(c.master, "pipes", "erp-out") == c.pipes[5]
    assert not disabled(c.master, "erp-out") and "erp-out" not in ids(c.slaves["s2"], "pipes")
    assert_steady(c, back)


def test_a_moved_pipe_repointed_at_another_dataset_leaves_no_orphan_in_its_slave(nodes):
    c = Cluster(nodes)
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
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


def test_reuploading_a_moved_pipe_resets_it_and_the_re_read_loses_nothing(nodes):
    # A master pipe without our marker that becomes a sync pipe cannot be told apart from a
    # first move interrupted after its copy was made (offsets of the on-premise source), so
    # it is always reset (issue 12.4). The full re-read of the populated copy costs time only.
    c = Cluster(nodes)
    cfg = c.config()
    assert c.run(cfg).outcome == "ok"
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
