"""One bad config blocks only itself (issue 12.5): a component a slave refuses is reported
by id with the node's message and the rest of its bulk is written; a pipe the master
already reports invalid is not sent at all, and its original stays in the master."""
from __future__ import annotations

import json

from contract_helpers import YEAR, Cluster, ids, meta, original, the_original

N = 100


def _many(c: Cluster) -> list[dict]:
    return [{"_id": f"crm-{i:03}", "type": "pipe",
             "source": {"type": "json", "system": "crm", "url": "people"}} for i in range(N)]


def _errors_about(report, pid: str) -> list[str]:
    return [e for e in report.errors if pid in e]


def test_one_system_a_slave_refuses_does_not_stop_the_other_99_pipes(nodes):
    c = Cluster(nodes, seed=False)
    pipes = _many(c)[:N - 1]
    # A second system for s1 with a secret s1 does not have: s1 refuses it (400).
    locked = {**c.systems[0], "_id": "crm-locked", "jwt_token": "$SECRET(locked-pw)"}
    bad = {"_id": "locked-people", "type": "pipe",
           "source": {"type": "json", "system": "crm-locked", "url": "people"}}
    c.master.seed(secrets={"locked-pw": "pw"}, systems=[*c.systems, locked], pipes=[*pipes, bad])
    report = c.run(c.config({"s1": ["crm", "crm-locked"]}))
    assert report.outcome == "failed"
    refused = _errors_about(report, "crm-locked")
    assert refused and any("locked-pw" in e and "not defined" in e for e in refused), report.errors
    assert ids(c.slaves["s1"], "pipes") == {p["_id"] for p in pipes}
    assert ids(c.slaves["s1"], "systems") == {"crm"}
    for p in pipes:
        assert meta(original(c.master, "pipes", p["_id"]))["slave"] == "s1"
    # what was refused keeps its original, live in the master
    assert original(c.master, "systems", "crm-locked") == locked
    assert original(c.master, "pipes", "locked-people") == bad


def test_one_pipe_a_slave_refuses_in_a_bulk_does_not_stop_the_other_99(nodes):
    c = Cluster(nodes, seed=False)
    pipes = _many(c)
    c.master.seed(systems=c.systems, pipes=pipes)
    bad = "crm-042"
    refusal = {"validation_errors": [{"posted-config": {"_id": bad, "type": "pipe"},
                                      "config-errors": [{"elements": "$", "level": "error",
                                                         "msg": "refused for the test"}]}]}
    c.slaves["s1"].add_fault(method="POST", path="^/api/pipes$", status=400, times=1,
                             body=json.dumps(refusal))
    report = c.run(c.config())
    assert report.outcome == "failed"
    assert [e for e in report.errors if bad in e and "refused for the test" in e], report.errors
    assert ids(c.slaves["s1"], "pipes") == {p["_id"] for p in pipes} - {bad}
    assert meta(original(c.master, "pipes", bad)) is None
    # one refused bulk, then one bulk for the other 99
    posts = [r for r in c.slaves["s1"].requests() if (r["method"], r["path"]) == ("POST", "/api/pipes")]
    assert [r["status"] for r in posts] == [400, 201], posts
    # the next run moves it
    c.placed()
    assert bad in ids(c.slaves["s1"], "pipes")


def test_a_refusal_that_names_no_config_falls_back_to_one_post_each(nodes):
    c = Cluster(nodes, seed=False)
    pipes = _many(c)[:5]
    c.master.seed(systems=c.systems, pipes=pipes)
    c.slaves["s1"].add_fault(method="POST", path="^/api/pipes$", status=400, times=1,
                             body='{"message": "bad request"}')
    report = c.run(c.config())
    assert report.outcome == "ok", report.errors
    assert ids(c.slaves["s1"], "pipes") == {p["_id"] for p in pipes}


def test_a_pipe_the_master_reports_invalid_is_not_sent_and_keeps_its_original(nodes):
    c = Cluster(nodes, seed=False)
    pipes = _many(c)[:10]
    broken = {"_id": "crm-broken", "type": "pipe",
              "source": {"type": "json", "system": "crm", "url": "$ENV(not_there)"}}
    c.master.seed(systems=c.systems, pipes=pipes)
    c.master.seed(pipes=[broken], force=True)
    report = c.run(c.config())
    assert report.outcome == "failed"
    [error] = _errors_about(report, "crm-broken")
    assert "invalid" in error and "not_there" in error, report.errors
    assert ids(c.slaves["s1"], "pipes") == {p["_id"] for p in pipes}
    assert original(c.master, "pipes", "crm-broken") == broken
    sent = [r for r in c.slaves["s1"].requests() if r["method"] != "GET"]
    assert all(r["status"] < 400 for r in sent), sent


# --- adversarial review (breaker) ---

def test_a_new_upload_a_slave_refuses_leaves_no_master_pipe_reading_the_slave(nodes):
    """crm moved to s1. The user uploads a new crm-person to the master that s1 refuses (it
    names an env var s1 lacks, and s1's token cannot set env vars). The upload is kept, and
    the master is not left with the user's pipe calling crm, which now reads s1's datasets."""
    from service.core.references import systems_used

    c = Cluster(nodes)
    c.tokens["s1"] = c.slaves["s1"].token(admin=False, expires_in=YEAR)
    cfg = c.config()
    assert c.run(cfg).outcome != "aborted"
    assert meta(original(c.master, "systems", "crm"))["slave"] == "s1"
    c.master.api("POST", "/env", {"people-path": "people"})
    upload = {"_id": "crm-person", "type": "pipe",
              "source": {"type": "json", "system": "crm", "url": "$ENV(people-path)"}}
    assert c.master.api("PUT", "/pipes/crm-person/config", upload)[0] == 200
    report = c.run(cfg)
    assert any("crm-person" in e for e in report.errors), report.errors
    assert the_original(c.master, "pipes", "crm-person") == upload
    live = original(c.master, "pipes", "crm-person")
    assert not ("crm" in systems_used(live, {"people-path": "people"}) and meta(live) is None), \
        "the user's crm-person is live in the master, calling crm (a system:url reading s1)"
