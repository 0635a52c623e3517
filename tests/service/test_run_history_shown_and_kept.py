"""Issue 15.4: the last runs with outcome, counts and duration on the page and /status; each
run's report viewable at /runs/<id>; with HISTORY_PATH set, the last runs survive a restart
(and an unreadable or unwritable history never stops the service)."""
from __future__ import annotations

import json
import os

from service.web.app import create_app
from service.config import load_config
from service.web.runner import Runner
from stand_in_run import ACTIONS, FakeRun, make_config, report


def _client(config, fake):
    client = create_app(config=config, runner=Runner(config=config, run=fake, history=3)) \
        .test_client()
    client.environ_base["HTTP_X_REQUESTED_WITH"] = "tests"
    return client


def _with_history(path: str):
    base = make_config()
    env = {"MASTER_NODE": json.dumps(base.master.model_dump(by_alias=True) | {
        "jwt_token": base.master.jwt_token.get_secret_value()}),
        "SLAVE_NODES": json.dumps([s.model_dump(by_alias=True) | {
            "jwt_token": s.jwt_token.get_secret_value()} for s in base.slaves]),
        "HISTORY_PATH": path}
    return load_config(env)


def test_runs_show_counts_and_each_report_is_viewable():
    client = _client(make_config(), FakeRun())
    assert client.post("/sync").status_code == 200
    run = client.get("/status").json["history"][0]
    assert run["id"] == 1 and run["outcome"] == "ok" and "duration_seconds" in run
    assert run["counts"] == {"done": 2, "skipped": 1}
    whole = client.get("/runs/1").json
    assert whole["actions"] == ACTIONS and whole["warnings"] == ["node s1: secret 'pw' missing"]
    missing = client.get("/runs/2")
    assert missing.status_code == 404 and "not among the last runs kept" in missing.json["error"]
    page = client.get("/").get_data(as_text=True)
    assert 'href="runs/1"' in page and "2 done, 1 skipped" in page


def test_last_runs_survive_a_restart_where_a_path_is_configured(tmp_path):
    path = str(tmp_path / "history.json")
    config = _with_history(path)
    failing = FakeRun(report(outcome="failed", actions=ACTIONS, errors=["s1 down"]))
    first = _client(config, failing)
    for _ in range(4):                       # one more than the 3 kept
        first.post("/sync")
    kept = json.loads(open(path, encoding="utf-8").read())
    assert [e["id"] for e in kept] == [2, 3, 4]
    again = _client(config, FakeRun())       # a restart: a new Runner, the same file
    history = again.get("/status").json["history"]
    assert [r["id"] for r in history] == [4, 3, 2] and history[0]["errors"] == ["s1 down"]
    assert again.get("/runs/3").json["outcome"] == "failed"
    again.post("/sync")
    assert again.get("/status").json["history"][0]["id"] == 5     # ids go on, never reused
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".history-")]


def test_an_unreadable_history_is_left_and_an_unwritable_one_does_not_stop_runs(tmp_path, caplog):
    bad = tmp_path / "history.json"
    bad.write_text("{not json")
    client = _client(_with_history(str(bad)), FakeRun())
    assert client.get("/status").json["history"] == []
    assert any("could not be read" in r.getMessage() for r in caplog.records)
    nowhere = _client(_with_history(str(tmp_path / "missing-dir" / "h.json")), FakeRun())
    assert nowhere.post("/sync").status_code == 200
    assert nowhere.get("/status").json["history"][0]["outcome"] == "ok"
    assert any("could not be written" in r.getMessage() for r in caplog.records)
