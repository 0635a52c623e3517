"""Issue 5: node answers of every wrong kind. Idempotent requests are retried with backoff,
a POST is never blindly repeated, and a run that cannot go on ends `failed` or `aborted`
with a message a person understands, deleting nothing on the bad node's account."""
from __future__ import annotations

import time

import pytest

from service import orchestrator

from orchestration import config_for, environ, originals, writes
from service.config import load_config

SYSTEMS = [{"_id": "a", "type": "system:url", "base_url": "http://x/"},
           {"_id": "b", "type": "system:url", "base_url": "http://x/"}]
PIPES = [{"_id": "a-in", "type": "pipe", "source": {"type": "json", "system": "a", "url": "t"}},
         {"_id": "b-in", "type": "pipe", "source": {"type": "json", "system": "b", "url": "t"}},
         {"_id": "local", "type": "pipe"}]
HTML = "<html><body><h1>502 Bad Gateway</h1></body></html>"


@pytest.fixture
def setup(nodes):
    master, s1, s2 = nodes(), nodes(), nodes()
    master.seed(systems=SYSTEMS, pipes=PIPES)
    # s2 holds a leftover that a good run would delete: it must survive a bad s2.
    s2.seed(pipes=[{"_id": "leftover", "type": "pipe"}])
    for node in (master, s1, s2):
        node.clear_requests()

    def config(**variables):
        return config_for(master, {"s1": (s1, ["a"]), "s2": (s2, ["b"])}, **variables)
    return master, s1, s2, config


def _no_writes(*nodes):
    return all(writes(n.requests()) == [] for n in nodes)


MASTER_READ_FAULTS = {
    "html error page": dict(status=502, body=HTML, content_type="text/html"),
    "html with 200": dict(status=200, body=HTML, content_type="text/html"),
    "non-json text": dict(status=200, body="pipes: none", content_type="text/plain"),
    "truncated json": dict(status=200, body='[{"_id": "a-in", "config": {"orig'),
    "json of the wrong shape": dict(status=200, body='{"pipes": []}'),
    "401": dict(status=401),
    "403": dict(status=403),
    "404": dict(status=404),
    "500 every time": dict(status=500, times=20),
}


@pytest.mark.parametrize("kind", MASTER_READ_FAULTS)
def test_master_answering_badly_aborts_with_no_write_anywhere(setup, kind):
    master, s1, s2, config = setup
    master.add_fault(method="GET", path="^/api/pipes$", **{"times": 5, **MASTER_READ_FAULTS[kind]})
    report = orchestrator.run(config())
    assert report.outcome == "aborted"
    assert report.actions == []
    assert len(report.errors) == 1
    message = report.errors[0]
    assert message.startswith("master master could not be read: master GET /pipes: ")
    assert "nothing was changed" in message and "\n" not in message
    assert _no_writes(master, s1, s2)
    assert "leftover" in originals(s2, "pipes")


def test_master_listing_no_pipes_aborts(setup):
    master, s1, s2, config = setup
    master.add_fault(method="GET", path="^/api/pipes$", status=200, body="[]")
    report = orchestrator.run(config())
    assert report.outcome == "aborted" and "lists no pipes or no systems" in report.errors[0]
    assert _no_writes(master, s1, s2)


@pytest.mark.real_backoff
def test_5xx_and_429_on_reads_are_retried_with_backoff(setup):
    master, s1, s2, config = setup
    master.add_fault(method="GET", path="^/api/pipes$", status=503)
    s1.add_fault(method="GET", path="^/api/systems$", status=429, headers={"Retry-After": "1"})
    began = time.monotonic()
    report = orchestrator.run(config())
    assert report.outcome == "ok", report.as_json()
    assert time.monotonic() - began >= 1.0      # Retry-After was honoured
    assert [r["status"] for r in master.requests() if r["path"] == "/api/pipes"][:2] == [503, 200]
    assert [r["status"] for r in s1.requests() if r["path"] == "/api/systems"][:2] == [429, 200]


def test_a_failed_post_is_not_repeated_and_nothing_depending_on_it_happens(setup):
    master, s1, s2, config = setup
    s1.add_fault(method="POST", path="^/api/pipes$", status=500)
    report = orchestrator.run(config())
    assert report.outcome == "failed"
    assert [r["status"] for r in s1.requests() if r["method"] == "POST" and
            r["path"] == "/api/pipes"] == [500]
    assert any("create-pipe a-in on s1 failed: s1 POST /pipes: 500" in e for e in report.errors)
    # The master's a-in was not rewritten: it must not point at a pipe s1 does not have.
    assert "metadata" not in originals(master, "pipes")["a-in"]
    statuses = {(a["kind"], a["node"], a["id"]): a["status"] for a in report.actions}
    assert statuses["update-pipe", "master", "a-in"] == "skipped"
    # The other slave was reconciled all the same.
    assert "b-in" in originals(s2, "pipes")
    assert orchestrator.run(config()).outcome == "ok"


def test_a_slave_answering_garbage_is_named_and_left_alone(setup):
    master, s1, s2, config = setup
    s2.add_fault(method="GET", path="^/api/pipes$", status=200, body="<html>oops</html>",
                 content_type="text/html", times=10)
    report = orchestrator.run(config())
    assert report.outcome == "failed"
    assert any(e.startswith("slave s2 could not be read: s2 GET /pipes: answer is not valid JSON")
               for e in report.errors), report.errors
    assert _no_writes(s2)
    s2.emulator("DELETE", "/faults")
    assert "leftover" in originals(s2, "pipes")
    assert "a-in" in originals(s1, "pipes")                          # s1 went ahead
    assert "metadata" not in originals(master, "pipes")["b-in"]      # b stays put for now


def test_a_slave_slower_than_the_timeout_is_named_and_left_alone(setup):
    master, s1, s2, config = setup
    s2.add_fault(method="GET", path="^/api/systems$", delay_ms=1500, times=10)
    report = orchestrator.run(config(REQUEST_TIMEOUT="0.3"))
    assert report.outcome == "failed"
    assert any("s2 GET /systems: no answer within 0.3 s" in e for e in report.errors), report.errors
    assert _no_writes(s2)
    assert "a-in" in originals(s1, "pipes")


def test_a_slave_that_is_down_is_named_and_the_others_go_ahead(setup):
    master, s1, s2, config = setup
    cfg = config()
    s2.stop()                                # connection refused from now on
    report = orchestrator.run(cfg)
    assert report.outcome == "failed"
    assert any(e.startswith("slave s2 could not be read: s2 GET ") and
               "connection failed" in e for e in report.errors), report.errors
    assert "a-in" in originals(s1, "pipes")                          # s1 went ahead
    assert "metadata" not in originals(master, "pipes")["b-in"]      # b waits for s2
    assert [w for w in writes(master.requests()) if "b" in w["path"]] == []


def test_a_failed_env_copy_is_an_error_unless_the_node_said_403(nodes):
    # Only a 403 (no group:Admin) turns a failed env copy into a warning (contract 7); a
    # 500 is a failure, whatever the node's id or the timeout happen to contain.
    master, s403 = nodes(), nodes()
    master.seed(systems=SYSTEMS, pipes=PIPES, env={"region": "north"})
    cfg = config_for(master, {"s403": (s403, ["a"])}, REQUEST_TIMEOUT="403")
    s403.add_fault(method="POST", path="^/api/env$", status=500)
    report = orchestrator.run(cfg)
    assert report.outcome == "failed"
    assert any(e.startswith("set-env env on s403 failed: s403 POST /env: 500") for e in report.errors)
    s403.add_fault(method="POST", path="^/api/env$", status=403)
    report = orchestrator.run(cfg)
    assert report.outcome == "ok"
    assert any("env vars could not be copied" in w and "group:Admin" in w for w in report.warnings)


# An attack from the service review, survived.
def test_put_and_delete_are_retried_after_a_5xx_and_a_post_is_not(nodes) -> None:
    # README, Guarantees: "Reads (and PUT/DELETE) are retried with backoff"; no other test
    # makes a PUT or a DELETE fail once and looks for the retry.
    master, s1 = nodes(), nodes()
    master.seed(systems=[{"_id": "crm", "type": "system:url", "base_url": "http://x/"}],
                pipes=[{"_id": "crm-person", "type": "pipe",
                        "source": {"type": "json", "system": "crm", "url": "p"}}])
    master.add_fault(method="PUT", path="^/api/pipes/", status=500, times=1)
    first = orchestrator.run(load_config(environ(master, {"s1": (s1, ["crm"])})))
    assert first.outcome == "ok", first.as_json()
    puts = [r["status"] for r in master.requests()
            if r["method"] == "PUT" and r["path"].startswith("/api/pipes/")]
    assert puts[:2] == [500, 200]
    s1.clear_requests()
    s1.add_fault(method="DELETE", path="^/api/", status=503, times=1)
    back = orchestrator.run(load_config(environ(master, {"s1": (s1, [])})))
    assert back.outcome == "ok", back.as_json()
    deletes = [r for r in s1.requests() if r["method"] == "DELETE"]
    assert deletes[0]["status"] == 503
    assert deletes[1]["path"] == deletes[0]["path"] and deletes[1]["status"] in (200, 404)
    assert originals(s1, "pipes") == {} and originals(s1, "systems") == {}
