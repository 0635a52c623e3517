"""Issue 15.1: a plan a person can approve. Every step says why, writes show the difference
they make (credentials masked, `$SECRET(..)` references kept), destructive and costly steps
are flagged, dataset deletes with their entity count; a summary on top; no duplicate lines;
`--plan` for a person, `--plan --json` and GET /plan the same as data."""
from __future__ import annotations

import json
import os
from unittest import mock

from contract_helpers import CRM_PIPES, ERP, PIPES, Cluster, pipe_runtime, put, start_pipe
from orchestration import as_copy
from service import orchestrator
from service.core import plan_text
from service.__main__ import main
from service.core.actions import Action, Plan
from service.web.app import create_app
from service.web.runner import Runner

A_TO_B = {"s1": [], "s2": ["erp", "crm"]}


def _changed(c: Cluster):
    """crm synced on s1; then a hand edit of erp's copy on s2 and a new original of erp-out
    uploaded to the master."""
    c.placed()
    for pid in CRM_PIPES:
        start_pipe(c.slaves["s1"], pid)
        start_pipe(c.master, pid)
        assert pipe_runtime(c.master, pid)["last-seen"] not in (None, "")
    put(c.slaves["s2"], "systems", "erp", as_copy({**ERP, "base_url": "http://127.0.0.1:10/"}))
    erp_out = next(p for p in PIPES if p["_id"] == "erp-out")
    put(c.master, "pipes", "erp-out", {**erp_out, "sink": {**erp_out["sink"], "url": "y"}})
    c.clear()


def _steps(planned):
    return {(a["kind"], a["node"], a["id"]): a for a in planned}


def test_plan_says_why_flags_what_costs_and_shows_masked_diffs(nodes):
    c = Cluster(nodes)
    _changed(c)
    report = c.run(c.config(A_TO_B), dry_run=True)
    assert c.no_writes(), c.writes()
    data = report.as_json()
    steps = _steps(data["actions"])
    reasons = {a["reason"] for a in data["actions"]}
    assert {"move system crm s1 -> s2",
            "re-read everything from the new slave s2", "clean up after a move to s2",
            "revert a hand edit", "user uploaded a new original"} <= reasons, reasons
    assert steps["update-system", "s2", "erp"]["reason"] == "revert a hand edit"
    # a pipe moves with the system it uses, and says so
    assert steps["create-pipe", "s2", "crm-person"]["reason"] == "move system crm s1 -> s2"
    assert steps["update-pipe", "s2", "erp-out"]["reason"] == "user uploaded a new original"
    # the hand edit's diff: the edited line out, the original back
    diff = steps["update-system", "s2", "erp"]["diff"].splitlines()
    assert '-  "base_url": "http://127.0.0.1:10/",' in diff
    assert '+  "base_url": "http://127.0.0.1:9/",' in diff
    # flags: dataset deletes with the count the slave gives, resets, deletes of components
    assert steps["delete-dataset", "s1", "crm-person"]["flags"] == [
        "destructive: deletes dataset crm-person (2 entities)"]
    assert steps["delete-dataset", "s1", "orders"]["flags"] == [
        "destructive: deletes dataset orders (1 entities)"]
    assert steps["reset-pipe", "master", "crm-person"]["flags"] == [
        "costly: full re-read of the pipe's source"]
    assert steps["delete-system", "s1", "crm"]["flags"] == ["destructive: deletes system crm"]
    assert steps["delete-pipe", "s1", "crm-order"]["flags"] == ["destructive: deletes pipe crm-order"]
    # no token of any node in a diff: the crm system's jwt_tokens are masked
    crm = steps["update-system", "master", "crm"]["diff"]
    assert "~ jwt_token changed (value masked)" in crm.splitlines(), crm
    dumped = json.dumps(data)
    for token in [*c.tokens.values(), c.systems[0]["jwt_token"]]:
        assert token not in dumped
    # summary: counts per kind and per node
    summary = data["summary"]
    assert summary["total"] == len(data["actions"])
    assert summary["by_node"]["s1"]["delete-dataset"] == 2
    assert summary["by_kind"]["reset-pipe"] == 2 and summary["flagged"] >= 7
    # no duplicate steps
    keys = [(a["kind"], a["node"], a["id"], a["reason"]) for a in data["actions"]]
    assert len(keys) == len(set(keys))
    assert len(data["plan_id"]) == 16


def test_plan_text_for_a_person_and_json_and_get_plan_agree(nodes, capsys):
    c = Cluster(nodes)
    _changed(c)
    environ = c.environ(A_TO_B)
    with mock.patch.dict(os.environ, environ, clear=True):
        assert main(["--plan"]) == 0
        text = capsys.readouterr().out
        assert main(["--plan", "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
    lines = text.splitlines()
    assert lines[0] == (f"Plan {data['plan_id']}: {data['summary']['total']} step(s), "
                        f"{data['summary']['flagged']} flagged")
    assert any(line.startswith("  s1: ") and "2 delete-dataset" in line for line in lines)
    steps = [line for line in lines if line[:1].isdigit()]
    assert len(steps) == len(data["actions"]) == len(set(line.split(". ", 1)[1] for line in steps))
    assert any(line.endswith("delete-dataset crm-person on s1: clean up after a move to s2")
               for line in steps), steps
    assert "   !! destructive: deletes dataset crm-person (2 entities)" in lines
    assert '   -  "base_url": "http://127.0.0.1:10/",' in lines
    assert c.no_writes()
    # GET /plan gives the same data as --plan --json
    config = c.config(A_TO_B)
    app = create_app(config=config, runner=Runner(config=config, run=orchestrator.run))
    served = app.test_client().get("/plan").json
    assert served["plan_id"] == data["plan_id"]
    assert [{k: v for k, v in a.items()} for a in served["actions"]] == data["actions"]
    assert served["summary"] == data["summary"]


def test_diff_masks_credential_values_and_keeps_secret_references():
    before = {"_id": "s", "password": "hunter2-long", "nested": [{"api_key": "k" * 10}]}
    after = {"_id": "s", "password": "$SECRET(pw)", "nested": [{"api_key": "$ENV(key)"}],
             "jwt_token": "literal-token-value"}
    text = plan_text.diff(before, after)
    assert "hunter2" not in text and "kkkkkk" not in text and "literal-token" not in text
    assert '+  "password": "$SECRET(pw)"' in text.splitlines()
    assert '"api_key": "$ENV(key)"' in text and '"jwt_token": "[redacted]"' in text
    assert "~ password changed (value masked)" not in text      # a reference: shown as is
    assert plan_text.diff({"token": "old-value-1"}, {"token": "new-value-2"}).splitlines()[-1] \
        == "~ token changed (value masked)"


def test_a_step_repeated_with_the_same_reason_is_shown_once():
    same = Action("update-pipe", "m", "p", payload={"_id": "p"}, reason="revert a hand edit")
    other = Action("update-pipe", "m", "p", payload={"_id": "p"}, reason="move pipe p s1 -> s2")
    shown = plan_text.entries(Plan(actions=(same, other, same)))
    assert [e["reason"] for e in shown] == ["revert a hand edit", "move pipe p s1 -> s2"]
