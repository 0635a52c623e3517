"""Issue 15.3: data-flow health of every moved pipe, from the pipe runtimes a run reads
anyway: whether the slave copy and the master's sync pipe last ran OK, when, the time since
the last successful sync; stale past 3 x the interval; on /status, the page and /metrics
(labels per slave and state only). No request beyond the listings."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from contract_helpers import CRM_PIPES, Cluster, log, start_pipe
from service.core import flows
from service import orchestrator
from service.web.app import create_app
from service.core.flows import STALE_FACTOR
from service.web.runner import Runner

LISTINGS = {"/api/pipes", "/api/systems", "/api/env", "/api/secrets"}


def _synced(c: Cluster):
    cfg = c.placed()
    for pid in CRM_PIPES:
        start_pipe(c.slaves["s1"], pid)
        start_pipe(c.master, pid)
    return cfg


def _by_pipe(found):
    """A run's flows, or /status's, by pipe, as /status shows them."""
    shown = [f.as_json() if isinstance(f, flows.Flow) else f for f in found]
    return {f["pipe"]: f for f in shown}


def test_flows_read_from_the_listings_ok_then_stale_then_failing(nodes):
    c = Cluster(nodes)
    cfg = _synced(c)
    c.clear()
    report = c.run(cfg)
    assert report.actions == [] and c.no_writes()
    for node in c.named().values():      # nothing read beyond the four listings
        assert {r["path"] for r in log(node)} <= LISTINGS, log(node)
    flows = _by_pipe(report.flows)
    person = flows["crm-person"]
    assert person["kind"] == "sync" and person["slave"] == "s1" and person["state"] == "ok"
    assert [(s["role"], s["node"], s["ok"]) for s in person["sides"]] == [
        ("slave copy", "s1", True), ("sync pipe", "master", True)]
    assert all(s["last_run"] for s in person["sides"])
    assert person["age_seconds"] is not None and person["age_seconds"] < 600
    assert person["interval"] > 0 and person["warning"] is None

    # much later, nothing has synced since: stale, with a warning
    later = datetime.now(timezone.utc) + timedelta(seconds=STALE_FACTOR * person["interval"] + 60)
    stale = _by_pipe(orchestrator.run(cfg, dry_run=True, now=lambda: later).flows)["crm-person"]
    assert stale["state"] == "stale" and "not synced for" in stale["warning"]

    # the source goes away: the copy's next run fails; the flow is failing and shows first,
    # and the last success an earlier run saw is kept
    config = c.config()
    runner = Runner(config=config, run=orchestrator.run)
    client = create_app(config=config, runner=runner).test_client()
    client.post("/sync", json={})
    seen = _by_pipe(client.get("/status").json["flows"])["crm-order"]["last_success"]
    c.src.stop()
    pump = start_pipe(c.slaves["s1"], "crm-order")
    assert pump["runtime"]["success"] is False
    assert client.post("/sync", json={}).status_code == 200
    status = client.get("/status").json
    first = status["flows"][0]
    assert first["pipe"] == "crm-order" and first["state"] == "failing"
    assert first["sides"][0]["ok"] is False and first["last_success"] == seen
    assert any("crm-order" in w and "last run failed" in w for w in status["warnings"])
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'sesam_orchestrator_flows{slave="s1",state="failing"} 1.0' in metrics
    assert 'sesam_orchestrator_flows{slave="s1",state="ok"} 1.0' in metrics
    assert 'sesam_orchestrator_flows{slave="s2",state="failing"} 0.0' in metrics
    assert "crm-order" not in metrics                  # never a pipe id as a label
    section = client.get("/").get_data(as_text=True).split('<div id="flows">')[1]
    assert section.index("crm-order") < section.index("crm-person")       # failing first
    assert section.index("failing") < section.index("crm-person")


def test_the_service_keeps_what_needs_a_look_and_counts_the_rest():
    now = datetime(2030, 1, 1, tzinfo=timezone.utc)

    def flow(pipe: str, state: flows.State) -> flows.Flow:
        return flows.Flow(pipe, "s1", "sync", (), state=state)
    found = [flow("bad", "failing")] + [flow(f"p{i:03d}", "ok") for i in range(120)]
    kept = flows.shown(found, ok_per_slave=50)
    assert [f.pipe for f in kept][:2] == ["bad", "p000"] and len(kept) == 51
    assert flows.counts(found) == {"s1": {"failing": 1, "ok": 120}}
    # a flow whose last runs failed keeps the last success an earlier run saw
    failing = flows.judge(flows.Flow("p", "s1", "sync", (
        flows.Side("slave copy", "s1", "p", True, False, "2030-01-01T00:00:00Z"),),
        interval=60), now=now)
    assert failing.last_success is None
    carried = flows.carry_over([failing], {("s1", "p"): "2029-12-31T23:00:00+00:00"}, now=now)
    assert carried[0].state == "failing" and carried[0].age_seconds == 3600


def test_flow_metrics_follow_each_run_and_an_age_goes_when_no_flow_has_synced():
    from service.web.metrics import Metrics
    metrics = Metrics()
    aged = [flows.Flow(p, "s1", "sync", (), age_seconds=age) for p, age in (("a", 70), ("b", 30))]
    metrics.record_flows({"s1": {"ok": 2}}, aged, ["s1", "s2"])
    text = metrics.exposition().decode()
    assert 'sesam_orchestrator_flows{slave="s1",state="ok"} 2.0' in text
    assert 'sesam_orchestrator_flow_oldest_sync_age_seconds{slave="s1"} 70.0' in text
    assert 'flow_oldest_sync_age_seconds{slave="s2"}' not in text
    metrics.record_flows({"s1": {"waiting": 1}}, [flows.Flow("a", "s1", "sync", ())],
                         ["s1", "s2"])
    text = metrics.exposition().decode()
    assert 'sesam_orchestrator_flows{slave="s1",state="ok"} 0.0' in text
    assert 'sesam_orchestrator_flows{slave="s1",state="waiting"} 1.0' in text
    assert 'flow_oldest_sync_age_seconds{slave="s1"}' not in text
