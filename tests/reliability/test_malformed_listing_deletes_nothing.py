"""A master listing with a malformed entry never deletes anything (issue 12, point 8).

Before the fix, an entry without a usable `config` read as "this pipe is gone from the
master", and the run deleted the slave's copy and its dataset.
"""
from __future__ import annotations

import copy
import json

import pytest

from contract_helpers import Cluster, has_dataset, ids
from orchestration import WRITES


def _listing_with(c: Cluster, kind: str, cid: str, broken: dict) -> str:
    status, body = c.master.api("GET", f"/{kind}")
    assert status == 200
    return json.dumps([broken if item["_id"] == cid else item for item in body])


def _no_config(item: dict) -> dict:
    return {"_id": item["_id"], "runtime": item["runtime"]}


def _config_is_a_list(item: dict) -> dict:
    return {**item, "config": [item["config"]]}


def _original_is_a_list(item: dict) -> dict:
    return {**item, "config": {**item["config"], "original": [item["config"]["original"]]}}


def _runtime_is_a_list(item: dict) -> dict:
    return {**item, "runtime": [item["runtime"]]}


@pytest.mark.parametrize("breaks", [_no_config, _config_is_a_list, _original_is_a_list,
                                    _runtime_is_a_list])
def test_a_malformed_master_pipe_deletes_nothing_and_is_named(nodes, breaks) -> None:
    c = Cluster(nodes)
    cfg = c.synced_on_s1()
    s1 = c.slaves["s1"]
    assert has_dataset(s1, "crm-person")
    item = next(p for p in c.master.api("GET", "/pipes")[1] if p["_id"] == "crm-person")
    c.master.add_fault(method="GET", path="^/api/pipes$", times=100,
                       body=_listing_with(c, "pipes", "crm-person", breaks(copy.deepcopy(item))))
    c.clear()
    report = c.run(cfg)
    deletes = [w for w in c.global_writes() if w[1] == "DELETE"]
    assert not deletes, deletes
    assert "crm-person" in ids(s1, "pipes") and has_dataset(s1, "crm-person")
    assert any("crm-person" in e and "malformed" in e for e in report.errors), report.errors
    assert report.outcome == "aborted"


def test_a_malformed_master_system_deletes_nothing(nodes) -> None:
    c = Cluster(nodes)
    cfg = c.synced_on_s1()
    s1 = c.slaves["s1"]
    item = next(s for s in c.master.api("GET", "/systems")[1] if s["_id"] == "crm")
    c.master.add_fault(method="GET", path="^/api/systems$", times=100,
                       body=_listing_with(c, "systems", "crm", _no_config(item)))
    c.clear()
    report = c.run(cfg)
    assert not [w for w in c.global_writes() if w[1] in WRITES], c.global_writes()
    assert ids(s1, "systems") == {"crm"} and has_dataset(s1, "crm-person")
    assert any("crm" in e and "malformed" in e for e in report.errors), report.errors


def test_a_malformed_slave_entry_leaves_that_slave_alone(nodes) -> None:
    c = Cluster(nodes)
    cfg = c.synced_on_s1()
    s1 = c.slaves["s1"]
    status, body = s1.api("GET", "/pipes")
    broken = [_config_is_a_list(p) if p["_id"] == "crm-person" else p for p in body]
    s1.add_fault(method="GET", path="^/api/pipes$", times=100, body=json.dumps(broken))
    c.clear()
    report = c.run(cfg)
    assert not c.writes()["s1"], c.writes()["s1"]
    s1.emulator("DELETE", "/faults")
    assert has_dataset(s1, "crm-person") and "crm-person" in ids(s1, "pipes")
    assert any("s1" in e and "crm-person" in e for e in report.errors), report.errors


def test_an_entry_that_is_a_list_deletes_nothing(nodes) -> None:
    c = Cluster(nodes)
    cfg = c.synced_on_s1()
    s1 = c.slaves["s1"]
    item = next(p for p in c.master.api("GET", "/pipes")[1] if p["_id"] == "crm-person")
    c.master.add_fault(method="GET", path="^/api/pipes$", times=100,
                       body=_listing_with(c, "pipes", "crm-person", [item]))
    c.clear()
    report = c.run(cfg)
    assert report.outcome == "aborted"
    assert not [w for w in c.global_writes() if w[1] in WRITES], c.global_writes()
    assert "crm-person" in ids(s1, "pipes") and has_dataset(s1, "crm-person")
    assert any("malformed entry at position" in e for e in report.errors), report.errors


# --- adversarial review (breaker) ---

def test_a_slave_listing_silently_missing_a_copy_deletes_nothing_and_loses_no_data(nodes) -> None:
    """s1's pipe listing leaves out crm-person (as a filtering proxy or an ACL might, with
    200). The run may take the copy for gone, but deletes nothing anywhere, and the master's
    dataset stays whole."""
    c = Cluster(nodes)
    cfg = c.synced_on_s1()
    s1 = c.slaves["s1"]
    master_log = c.master.api("GET", "/datasets/crm-person/entities")[1]
    body = [p for p in s1.api("GET", "/pipes")[1] if p["_id"] != "crm-person"]
    s1.add_fault(method="GET", path="^/api/pipes$", times=100, body=json.dumps(body))
    c.clear()
    c.run(cfg)
    assert not [w for w in c.global_writes() if w[1] == "DELETE"], c.global_writes()
    s1.emulator("DELETE", "/faults")
    assert "crm-person" in ids(s1, "pipes") and has_dataset(s1, "crm-person")
    # whatever the master's sync pipe does now (a reset costs a full re-read), nothing is lost
    c.master.run_pipe("crm-person")
    assert c.master.api("GET", "/datasets/crm-person/entities")[1][:len(master_log)] == master_log
    live = [e for e in c.master.api("GET", "/datasets/crm-person/entities?history=false")[1]
            if not e.get("_deleted")]
    assert sorted(e["_id"] for e in live) == ["a", "b"]
