"""Issue 13, point 4: nothing a node says reaches an output raw. An error carries the
standard reason phrase of its status code, never the node's (a misbehaving proxy put a JWT
in one); a node's validation messages, which are reported on purpose, lose the credentials
they quote; and every output (--once, --plan, the logs, /status, the page, /metrics and the
/sync answer) goes through that same redaction."""
from __future__ import annotations

import json
import logging

import pytest

from service.__main__ import main
from service.web.app import create_app
from service import orchestrator
from service.config import load_config
from service.web.runner import Runner

from orchestration import environ

# A JWT and a password the service was never given: it can only know them as such by shape
# or from the configs it read.
LEAKED_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.proxy-leaked-signature"
PASSWORD = "hunter2-orchestrator"
SYSTEMS = [{"_id": "a", "type": "system:url", "base_url": "http://x/",
            "authentication": "basic", "username": "svc", "password": PASSWORD}]
PIPES = [{"_id": "a-in", "type": "pipe", "source": {"type": "json", "system": "a", "url": "t"}}]
LEAKS = (LEAKED_JWT, "proxy-leaked-signature", PASSWORD, "other-user-token-value")


@pytest.fixture
def setup(nodes, monkeypatch):
    master, s1 = nodes(), nodes()
    master.seed(systems=SYSTEMS, pipes=PIPES)
    env = environ(master, {"s1": (s1, ["a"])})
    for var in ("API_TOKEN", "RUN_TIMEOUT", "REQUEST_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    return master, s1, env


def _proxy_reason(node, times=10):
    node.add_fault(method="GET", path="^/api/systems$", status=502,
                   reason=f"Bad Gateway Authorization: Bearer {LEAKED_JWT}", times=times)


def _refusal_quoting_credentials(node):
    said = (f"system a refused: {{'password': '{PASSWORD}', 'token': "
            "'other-user-token-value'}, and again " + PASSWORD)
    node.add_fault(method="POST", path="^/api/systems$", status=400, body=json.dumps(
        {"validation_errors": [{"posted-config": {"_id": "a"},
                                "config-errors": [{"msg": said}]}]}))


def _clean(text: str) -> None:
    for leak in LEAKS:
        assert leak not in text, leak


def test_a_reason_phrase_is_the_standard_one_not_the_nodes(setup, capsys):
    master, s1, _ = setup
    _proxy_reason(s1)
    assert main(["--once"]) == 1
    out, err = capsys.readouterr()
    _clean(out + err)
    assert json.loads(out)["errors"] == ["slave s1 could not be read: s1 GET /systems: 502 Bad "
                                         "Gateway (after 4 attempts); nothing was changed or "
                                         "deleted on it"]


def test_once_reports_the_nodes_validation_message_with_its_credentials_blanked(setup, capsys):
    master, s1, _ = setup
    _refusal_quoting_credentials(s1)
    assert main(["--once"]) == 1
    out, err = capsys.readouterr()
    _clean(out + err)
    errors = json.loads(out)["errors"]
    assert any("create-system a on s1 failed: s1 POST /systems: 400 refused (a: system a "
               "refused: {'password': [redacted]" in e for e in errors), errors


def test_plan_blanks_credentials_in_the_masters_own_messages(setup, capsys):
    master, s1, _ = setup
    status, listing = master.api("GET", "/pipes")
    listing[0]["runtime"] = {"is-valid-config": False, "config-errors": [
        {"msg": f"bad source; password={PASSWORD} Bearer {LEAKED_JWT}"}]}
    master.add_fault(method="GET", path="^/api/pipes$", body=json.dumps(listing), times=10)
    assert main(["--plan", "--json"]) == 1
    out, err = capsys.readouterr()
    _clean(out + err)
    assert any("the master reports its config invalid (bad source; password=[redacted]" in e
               for e in json.loads(out)["errors"])


def test_every_served_output_goes_through_the_same_redaction(setup, caplog):
    master, s1, env = setup
    _proxy_reason(s1, times=4)              # the first run's read of s1, with its retries
    _refusal_quoting_credentials(s1)         # the second run's create
    config = load_config(env)
    runner = Runner(config=config, run=orchestrator.run)
    client = create_app(config=config, runner=runner).test_client()
    caplog.set_level(logging.DEBUG)
    answers = [client.post("/sync", json={}), client.post("/sync", json={}),
               client.get("/plan"), client.get("/status"), client.get("/"),
               client.get("/metrics")]
    assert [a.get_json()["outcome"] for a in answers[:2]] == ["failed", "failed"]
    assert "502 Bad Gateway" in answers[0].get_data(as_text=True)
    for answer in answers:
        _clean(answer.get_data(as_text=True))
    assert "[redacted]" in answers[3].get_data(as_text=True)      # it was there to blank out
    _clean("\n".join(r.getMessage() for r in caplog.records))
