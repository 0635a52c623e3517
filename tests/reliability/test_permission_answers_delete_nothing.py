"""403 answers name the operation and the node; a master listing that may be partial
never leads to a delete (issue 12, point 8)."""
from __future__ import annotations

import json

from contract_helpers import YEAR, Cluster, has_dataset, ids
from orchestration import WRITES


def test_a_refused_write_names_the_operation_and_the_node(nodes) -> None:
    c = Cluster(nodes)
    s1 = c.slaves["s1"]
    s1.admin_writes_only = True
    weak = s1.token(admin=False, expires_in=YEAR)
    report = c.run(c.config(tokens={"s1": weak}))
    assert report.outcome == "failed"
    refused = [e for e in report.errors if "403" in e]
    assert any("s1 POST /systems: 403 Forbidden: node s1 does not let this jwt_token "
               "create systems" in e for e in refused), report.errors
    assert refused and not any("env" in e or "secret" in e for e in refused), refused
    # the env read names its own operation, and only there group:Admin is the reason
    assert any("s1 GET /env: 403" in w and "read env vars" in w for w in report.warnings)
    assert weak not in json.dumps(report.as_json())
    assert ids(s1, "systems") == set() and ids(s1, "pipes") == set()


def test_a_master_token_without_admin_stops_the_run_before_any_delete(nodes) -> None:
    c = Cluster(nodes)
    c.synced_on_s1()
    s1 = c.slaves["s1"]
    # What a node shows a token that may not read a component: a listing without it.
    listing = [p for p in c.master.api("GET", "/pipes")[1] if p["_id"] != "crm-person"]
    c.master.add_fault(method="GET", path="^/api/pipes$", times=100, body=json.dumps(listing))
    c.clear()
    weak = c.master.token(admin=False, expires_in=YEAR)
    report = c.run(c.config(tokens={"master": weak}))
    assert report.outcome == "aborted"
    assert not [w for w in c.global_writes() if w[1] in WRITES], c.global_writes()
    assert "crm-person" in ids(s1, "pipes") and has_dataset(s1, "crm-person")
    assert any("master master: its jwt_token is not issued to group:Admin" in e and
               "nothing was changed" in e for e in report.errors), report.errors


def test_principals_per_subscription_count_for_the_master(nodes) -> None:
    c = Cluster(nodes)
    token = c.master.token(principals={c.master.subscription_id: ["group:Admin"]},
                           expires_in=YEAR)
    report = c.run(c.config(tokens={"master": token}))
    assert report.outcome == "ok", report.errors
    assert ids(c.slaves["s1"], "systems") == {"crm"}
    assert not [w for w in report.warnings if "master" in w and "group:Admin" in w]
