"""Issue 15.2: SYNC_POLICY=manual plans every interval, shows "out of sync" with the plan
(page, /status, metric) and writes only on POST /sync; a POST /sync naming a plan id the
nodes no longer give is refused with 409 and writes nothing."""
from __future__ import annotations

import time

from contract_helpers import PIPES, Cluster, put
from service import orchestrator
from service.web.app import create_app
from service.web.runner import Runner

JSON = {"Content-Type": "application/json"}


def _wait_out_of_sync(client) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = client.get("/status").json
        if status["out_of_sync"] is not None:
            return status
        time.sleep(0.05)
    raise AssertionError("the scheduled plan never came")


def test_manual_policy_plans_on_schedule_and_writes_only_on_sync(nodes):
    c = Cluster(nodes)
    config = c.config(SYNC_POLICY="manual")
    assert config.sync_policy == "manual"
    runner = Runner(config=config, run=orchestrator.run)
    client = create_app(config=config, runner=runner).test_client()
    c.clear()
    runner.start(first_delay=0)
    try:
        status = _wait_out_of_sync(client)
    finally:
        runner.shutdown()
    assert c.no_writes(), c.writes()
    assert status["sync_policy"] == "manual" and status["out_of_sync"] is True
    plan = status["pending_plan"]
    assert any(a["reason"] == "move system crm master -> s1" for a in plan["actions"]), plan
    assert status["history"] == []                     # planning is not a run
    assert b"sesam_orchestrator_out_of_sync 1.0" in client.get("/metrics").data
    page = client.get("/").get_data(as_text=True)
    assert "Out of sync" in page and plan["plan_id"] in page
    assert "move system crm master -&gt; s1" in page

    # the nodes change after the plan was shown: that plan is not applied
    erp_out = next(p for p in PIPES if p["_id"] == "erp-out")
    put(c.master, "pipes", "erp-out", {**erp_out, "sink": {**erp_out["sink"], "url": "y"}})
    c.clear()
    stale = client.post("/sync", json={"plan_id": plan["plan_id"]})
    assert stale.status_code == 409 and "changed since that plan" in stale.json["error"]
    assert stale.json["plan_id"] != plan["plan_id"]
    assert c.no_writes(), c.writes()

    # the plan shown now is applied
    fresh = client.get("/plan").json
    assert fresh["plan_id"] == stale.json["plan_id"]
    done = client.post(f"/sync?plan_id={fresh['plan_id']}", headers=JSON)
    assert done.status_code == 200 and done.json["outcome"] == "ok", done.json
    assert c.writes()["s1"] and done.json["plan_id"] == fresh["plan_id"]
    assert client.get("/plan").json["actions"] == []
    status = client.get("/status").json
    assert status["out_of_sync"] is False and status["pending_plan"] is None
    assert b"sesam_orchestrator_out_of_sync 0.0" in client.get("/metrics").data


def test_sync_refuses_a_malformed_plan_id_and_changes_nothing(nodes):
    c = Cluster(nodes)
    config = c.config()
    assert config.sync_policy == "auto"
    client = create_app(config=config, runner=Runner(config=config, run=orchestrator.run)).test_client()
    c.clear()
    for body, says in (({"plan_id": "not-a-plan"}, "plan_id must be the 16 hex digits"),
                       ({"plan_id": 7}, "plan_id must be the 16 hex digits"),
                       (["x"], "the body must be a JSON object")):
        answer = client.post("/sync", json=body)
        assert answer.status_code == 400, answer.json
        assert says in answer.json["error"] and "\n" not in answer.json["error"], answer.json
    assert c.no_writes(), c.writes()
