"""Issue 5, security: no JWT token, secret value or jwt_secret_key target shows up in a log
line, an HTTP response, a report or an exception message, whatever the run goes through."""
from __future__ import annotations

import json
import logging

from service import orchestrator
from service.web.app import create_app
from service.web.runner import Runner

from orchestration import originals
from scenarios import FIRST, NEXT, build
from contract_helpers import Cluster

API_TOKEN = "api-token-that-must-never-be-shown-0123456789"


def _needles(sc, config) -> list[str]:
    """Every secret the run could leak: node tokens, secret values, the API token."""
    needles = [node.jwt_token.get_secret_value() for node in config.nodes] + [API_TOKEN]
    for node in sc.nodes.values():
        needles += list(node.store.secrets.values())
    # A JWT's signature alone is already a leak worth catching.
    needles += [t.rsplit(".", 1)[-1] for t in needles if t.count(".") == 2]
    return sorted(set(needles))


def test_no_token_in_logs_reports_errors_or_responses(nodes, caplog):
    caplog.set_level(logging.DEBUG)
    sc = build(nodes)
    texts: list[str] = []
    # Configs with and without jwt_secret_key: without, generated systems carry literal tokens.
    plain = sc.config(NEXT, API_TOKEN=API_TOKEN)
    keyless = plain.model_copy(update={
        "master": plain.master.model_copy(update={"jwt_secret_key": None}),
        "slaves": tuple(s.model_copy(update={"jwt_secret_key": None}) for s in plain.slaves)})
    needles = _needles(sc, plain)
    assert len(needles) >= 3

    for config in (keyless, plain, sc.config(FIRST, API_TOKEN=API_TOKEN)):
        for dry in (True, False):
            texts.append(json.dumps(orchestrator.run(config, dry_run=dry).as_json()))
        if config is keyless:
            # The nodes now hold literal tokens in generated systems: there is something to leak.
            held = json.dumps(originals(sc.master, "systems"))
            assert plain.slaves[0].jwt_token.get_secret_value() in held
    # Failures on every node: their messages must be as clean as the successes.
    for node in sc.nodes.values():
        node.add_fault(method="*", path="^/api/", writes_only=True, status=500, times=3)
        node.add_fault(method="GET", path="^/api/env$", status=401)
    texts.append(json.dumps(orchestrator.run(plain).as_json()))
    for node in sc.nodes.values():
        node.emulator("DELETE", "/faults")
    sc.master.add_fault(method="GET", path="^/api/systems$", status=403, times=10)
    texts.append(json.dumps(orchestrator.run(plain).as_json()))
    sc.master.emulator("DELETE", "/faults")

    # Every endpoint of the service, with and without the API token.
    runner = Runner(config=plain, run=orchestrator.run)
    client = create_app(config=plain, runner=runner).test_client()
    client.environ_base["HTTP_X_REQUESTED_WITH"] = "tests"  # a script, not a cross-site form: POST /sync refuses those
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    for method, path in (("POST", "/sync"), ("GET", "/plan"), ("GET", "/status"), ("GET", "/"),
                         ("GET", "/metrics"), ("GET", "/health")):
        for headers in ({}, auth):
            answer = client.open(path, method=method, headers=headers)
            texts.append(answer.get_data(as_text=True))
            texts.append(json.dumps(dict(answer.headers)))

    texts += [record.getMessage() for record in caplog.records]
    texts += [caplog.text]
    everything = "\n".join(texts)
    assert "create-pipe" in everything and "update-system" in everything   # runs really ran
    assert "500" in everything and "401" in everything                     # so did the failures
    leaked = [n[:6] + "..." for n in needles if n in everything]
    assert leaked == []


# An attack from review round 1, survived.
def test_master_env_value_that_is_a_token_never_shows(nodes, caplog):
    c = Cluster(nodes)
    secret_value = c.tokens["s1"]
    assert c.master.api("POST", "/env", {"leaky": secret_value})[0] == 200
    caplog.set_level(logging.DEBUG)
    cfg = c.config()
    c.slaves["s2"].add_fault(method="POST", path="^/api/env$", status=500)
    report = c.run(cfg)
    plan = c.run(cfg, dry_run=True)
    assert c.slaves["s1"].api("GET", "/env")[1]["leaky"] == secret_value
    for text in (json.dumps(report.as_json()), json.dumps(plan.as_json()), caplog.text):
        for token in c.tokens.values():
            assert token not in text
    assert any("set-env" in e for e in report.errors), report.errors
