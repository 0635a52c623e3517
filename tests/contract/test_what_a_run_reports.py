"""Contract 8: one run, observed: the report, and the dry run that writes nothing."""
from __future__ import annotations

import json
from datetime import datetime

from contract_helpers import Cluster, described, ids, original, originals

KINDS_TO_REQUEST = {"create-system": ("POST", "/api/systems"), "create-pipe": ("POST", "/api/pipes"),
                    "update-system": ("PUT", "/api/systems/{}/config"),
                    "update-pipe": ("PUT", "/api/pipes/{}/config"),
                    "delete-system": ("DELETE", "/api/systems/{}"),
                    "delete-pipe": ("DELETE", "/api/pipes/{}"),
                    "delete-dataset": ("DELETE", "/api/datasets/{}"),
                    "reset-pipe": ("POST", "/api/pipes/{}/pump"),
                    "disable-pipe": ("POST", "/api/pipes/{}/pump"),
                    "enable-pipe": ("POST", "/api/pipes/{}/pump"),
                    "set-env": ("POST", "/api/env")}


def _state(c: Cluster) -> dict:
    return {n: (originals(node, "pipes"), originals(node, "systems"), node.api("GET", "/env")[1])
            for n, node in c.named().items()}


def test_8_report_has_start_end_outcome_actions_and_no_token(nodes):
    c = Cluster(nodes)
    report = c.run(c.config())
    body = report.as_json()
    json.dumps(body)
    assert body["outcome"] == "ok"
    started, finished = (datetime.fromisoformat(body[k]) for k in ("started", "finished"))
    assert started <= finished
    assert body["dry_run"] is False
    assert isinstance(body["warnings"], list) and body["errors"] == []
    assert body["actions"] and all({"kind", "node", "id"} <= set(a) for a in body["actions"])
    text = json.dumps(body)
    assert not any(t in text for t in c.tokens.values())
    # each reported action is a request that really reached that node
    seen = {n: {(r["method"], r["path"]) for r in w} for n, w in c.writes().items()}
    for a in body["actions"]:
        method, path = KINDS_TO_REQUEST[a["kind"]]
        assert (method, path.format(a["id"])) in seen[a["node"]], a
    # and the end state matches what it says
    for a in body["actions"]:
        if a["kind"] == "create-system":
            assert a["id"] in ids(c.named()[a["node"]], "systems")
        if a["kind"] == "create-pipe":
            assert a["id"] in ids(c.named()[a["node"]], "pipes")


def test_8_failed_action_gives_failed_outcome_and_a_token_free_error(nodes):
    c = Cluster(nodes)
    c.slaves["s2"].add_fault(method="POST", path="^/api/systems$", times=100, status=500)
    report = c.run(c.config())
    assert report.outcome == "failed"
    assert report.errors
    assert any(a["status"] == "failed" and a["node"] == "s2" for a in report.actions)
    # what did not depend on s2 went ahead
    assert ids(c.slaves["s1"], "systems") == {"crm"}
    assert original(c.master, "systems", "erp") == c.systems[1]
    assert not any(t in json.dumps(report.as_json()) for t in c.tokens.values())


def _dry_equals_real(c: Cluster, cfg) -> None:
    before = _state(c)
    c.clear()
    dry = c.run(cfg, dry_run=True)
    assert dry.dry_run is True and dry.outcome == "ok", dry.errors
    assert c.no_writes(), c.writes()
    assert _state(c) == before
    assert dry.actions and all(a["status"] == "planned" for a in dry.actions)
    real = c.run(cfg)
    assert real.outcome == "ok", real.errors
    assert described(real) == described(dry)
    assert all(a["status"] == "done" for a in real.actions)


def test_8_dry_run_writes_nothing_and_lists_the_actions_the_real_run_takes(nodes):
    c = Cluster(nodes)
    for slave in c.slaves.values():
        slave.seed(pipes=[{"_id": "stray", "type": "pipe"}])
    _dry_equals_real(c, c.config())


def test_8_dry_run_equals_real_run_for_a_move_between_slaves_and_a_move_back(nodes):
    c = Cluster(nodes)
    c.placed()
    _dry_equals_real(c, c.config({"s1": [], "s2": ["crm", "erp"]}))
    _dry_equals_real(c, c.config({"s1": [], "s2": []}))
    c.clear()
    empty = c.run(c.config({"s1": [], "s2": []}), dry_run=True)
    assert empty.actions == [] and c.no_writes()
