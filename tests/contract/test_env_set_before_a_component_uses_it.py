"""A slave's env vars are set before a moved component that uses them through $ENV(..) is
written: a node refuses a config naming an undefined env var (issue 12.1)."""
from __future__ import annotations

from contract_helpers import Cluster, ids, pipe_runtime, start_pipe, entities


def _env_cluster(nodes) -> Cluster:
    c = Cluster(nodes, seed=False)
    crm = {**c.systems[0], "url_pattern": "$ENV(crm_host)/api/datasets/%s/entities"}
    pipes = [{**p, "source": {**p["source"], "url": "$ENV(people_url)"}}
             if p["_id"] == "crm-person" else p for p in c.pipes]
    c.master.seed(env={"region": "eu", "crm_host": c.src.url, "people_url": "people"},
                  systems=[crm, c.systems[1]], pipes=pipes)
    return c


def test_first_run_on_a_new_slave_sets_env_before_the_components_that_use_it(nodes):
    c = _env_cluster(nodes)
    # A slow /env on the slave: without the ordering, the system and pipes go first.
    c.slaves["s1"].add_fault(method="POST", path="^/api/env$", delay_ms=300)
    report = c.run(c.config())
    assert report.outcome == "ok", report.errors
    assert all(a["status"] == "done" for a in report.actions), report.actions
    s1 = c.slaves["s1"]
    assert ids(s1, "systems") == {"crm"} and ids(s1, "pipes") == {"crm-person", "crm-order"}
    assert pipe_runtime(s1, "crm-person")["is-valid-config"] is True
    order = [(r["method"], r["path"]) for r in s1.requests() if r["method"] != "GET"]
    env_at = order.index(("POST", "/api/env"))
    assert env_at < order.index(("POST", "/api/systems")), order
    assert env_at < order.index(("POST", "/api/pipes")), order
    # and the moved pipe works there with the copied env
    start_pipe(s1, "crm-person")
    assert {e["_id"] for e in entities(s1, "crm-person")} == {"a", "b"}


def test_a_pipe_naming_its_system_through_env_waits_for_that_systems_write(nodes):
    c = Cluster(nodes, seed=False)
    pipes = [{**p, "source": {**p["source"], "system": "$ENV(crm_id)"}}
             if p["_id"] == "crm-person" else p for p in c.pipes]
    c.master.seed(env={"crm_id": "crm"}, systems=c.systems, pipes=pipes)
    # The system's create is slow on the slave; the pipe must wait for it, not race it.
    c.slaves["s1"].add_fault(method="POST", path="^/api/systems$", delay_ms=300)
    report = c.run(c.config())
    assert report.outcome == "ok", report.errors
    assert "crm-person" in ids(c.slaves["s1"], "pipes")
    assert pipe_runtime(c.slaves["s1"], "crm-person")["is-valid-config"] is True


# --- adversarial review (breaker) ---

def test_a_copy_whose_env_named_dataset_changes_is_reset_only_once_the_env_is_there(nodes):
    """crm-person writes `$ENV(ds)`. The master's ds changes after the move: the copy must
    fill the new dataset with a full run. If its reset lands before s1's env is set, a run
    in between does that full run into the old dataset, and the new one is only ever
    written incrementally: never populated, the master never gets it."""
    c = Cluster(nodes, seed=False)
    person = {**c.pipes[0], "sink": {"type": "dataset", "dataset": "$ENV(ds)"}}
    c.master.seed(env={"region": "eu", "ds": "people-a"}, systems=c.systems,
                  pipes=[person, *c.pipes[1:]])
    cfg = c.placed()
    s1 = c.slaves["s1"]
    assert start_pipe(s1, "crm-person")["runtime"]["success"] is True
    assert c.master.api("POST", "/env", {"ds": "people-b"})[0] == 200
    s1.add_fault(method="POST", path="^/api/env$", delay_ms=600, times=1)
    s1.set_knobs(schedule_ms=20)          # the copy runs on its schedule meanwhile
    assert c.run(cfg).outcome == "ok"
    s1.set_knobs(schedule_ms=0)
    s1.wait_idle("crm-person")
    start_pipe(s1, "crm-person")
    status, ds = s1.api("GET", "/datasets/people-b")
    assert status == 200 and ds["runtime"]["populated"] is True, (status, ds)
    assert start_pipe(c.master, "crm-person")["runtime"]["success"] is True
    assert sorted(e["_id"] for e in entities(c.master, "people-b")) == ["a", "b"]
