"""Contract 7: env vars copied to slaves, secrets compared by name, tokens read as JWTs."""
from __future__ import annotations

import json
import jwt
import pytest
import time

from contract_helpers import (ODD_ENV, YEAR, Cluster, assert_steady, copy_in, entities, ids, meta,
                              original, run_as_planned, start_pipe)
from conftest import JWT_SECRET
from orchestration import environ, originals
from service import orchestrator
from service.config import load_config


def _env(node) -> dict:
    status, body = node.api("GET", "/env")
    assert status == 200
    return body


def _about(report, node_id: str) -> list[str]:
    return [w for w in report.warnings if f" {node_id}:" in w or f" {node_id} " in w]


def test_7_env_copied_overwriting_same_names_and_keeping_slave_only_vars(nodes):
    c = Cluster(nodes)
    c.master.seed(env={"region": "eu", "shared": "from-master"})
    c.slaves["s1"].seed(env={"shared": "old", "own": "mine"})
    cfg = c.placed()
    assert _env(c.slaves["s1"]) == {"region": "eu", "shared": "from-master", "own": "mine"}
    assert _env(c.slaves["s2"]) == {"region": "eu", "shared": "from-master"}
    c.clear()
    assert c.run(cfg).outcome == "ok" and c.no_writes()
    # a change in the master is copied on the next run
    c.master.seed(env={"region": "us"})
    assert c.run(cfg).outcome == "ok"
    assert _env(c.slaves["s1"])["region"] == "us" and _env(c.slaves["s1"])["own"] == "mine"


def test_7_env_without_group_admin_is_reported_in_those_words_and_the_run_goes_on(nodes):
    c = Cluster(nodes)
    c.master.seed(env={"region": "eu"})
    weak = c.slaves["s1"].token(admin=False, expires_in=YEAR)
    report = c.run(c.config(tokens={"s1": weak}))
    assert report.outcome == "ok", report.errors
    s1_warnings = _about(report, "s1")
    assert any("group:Admin" in w for w in s1_warnings), report.warnings
    assert weak not in json.dumps(report.as_json())
    # the run went on: s1 got its system and pipes, s2 its env
    assert ids(c.slaves["s1"], "systems") == {"crm"}
    assert ids(c.slaves["s1"], "pipes") == {"crm-person", "crm-order"}
    assert _env(c.slaves["s2"]) == {"region": "eu"}
    assert _env(c.slaves["s1"]) == {}
    assert not _about(report, "s2") and not _about(report, "master")


def test_7_missing_secrets_are_reported_per_slave(nodes):
    c = Cluster(nodes, seed=False)
    crm = {**c.systems[0], "jwt_token": "$SECRET(crm-pw)"}
    c.master.seed(systems=[crm, c.systems[1]], pipes=c.pipes, secrets={"shared": "x", "crm-pw": "y"})
    c.slaves["s1"].seed(secrets={"shared": "x"})
    c.slaves["s2"].seed(secrets={"crm-pw": "y", "unrelated": "z"})
    report = c.run(c.config())
    # A real node refuses a system naming a secret it lacks: the refusal is reported by id
    # with the node's message, and crm stays in the master until s1 has the secret (rule 6).
    assert report.outcome == "failed"
    assert any("crm" in e and "crm-pw" in e for e in report.errors), report.errors
    assert meta(original(c.master, "systems", "crm")) is None
    s1 = [w for w in _about(report, "s1") if "secret" in w]
    s2 = [w for w in _about(report, "s2") if "secret" in w]
    assert s1 and "crm-pw" in " ".join(s1) and "shared" not in " ".join(s1), report.warnings
    assert s2 and "shared" in " ".join(s2) and "crm-pw" not in " ".join(s2), report.warnings
    assert "secret" not in " ".join(_about(report, "master"))
    # secret values never appear
    assert not any(v in json.dumps(report.as_json()) for v in ('"x"', '"y"', '"z"'))
    # and nothing is reported once the slaves have them
    c.slaves["s1"].seed(secrets={"crm-pw": "y"})
    c.slaves["s2"].seed(secrets={"shared": "x"})
    report = c.run(c.config())
    assert report.outcome == "ok", report.errors
    assert not [w for w in report.warnings if "secret" in w], report.warnings
    assert meta(original(c.master, "systems", "crm"))["slave"] == "s1"


def test_7_jwt_secret_key_becomes_secret_reference_in_generated_systems(nodes):
    c = Cluster(nodes)
    # the master holds every secret, and so does each slave (contract 7)
    secrets = {"s1-token": c.tokens["s1"], "master-token": c.tokens["master"]}
    for node in c.named().values():
        node.seed(secrets=secrets)
    cfg = c.config(master_extra={"jwt_secret_key": "master-token"},
                   slave_extra={"s1": {"jwt_secret_key": "s1-token"}})
    report = c.run(cfg)
    assert report.outcome == "ok", report.errors
    assert original(c.master, "systems", "crm")["jwt_token"] == "$SECRET(s1-token)"
    feeder_system = copy_in(c.slaves["s2"], "systems", "orchestrator-master")
    assert feeder_system["jwt_token"] == "$SECRET(master-token)"
    # no token written as a literal anywhere in the generated configs
    for node in c.named().values():
        for kind in ("pipes", "systems"):
            assert not any(t in json.dumps(node.api("GET", f"/{kind}")[1])
                           for t in (c.tokens["master"], c.tokens["s1"]))
    # and the secrets work: data flows both ways through them
    start_pipe(c.slaves["s1"], "crm-person")
    start_pipe(c.master, "crm-person")
    assert {e["_id"] for e in entities(c.master, "crm-person")} == {"a", "b"}
    start_pipe(c.master, "local-data")
    start_pipe(c.slaves["s2"], "orchestrator-feed-local-data")
    assert {e["_id"] for e in entities(c.slaves["s2"], "local-data")} == {"x", "y"}
    assert not [w for w in report.warnings if "secret" in w.lower()], report.warnings


def test_7_jwt_secret_key_the_master_lacks_is_reported(nodes):
    c = Cluster(nodes)
    report = c.run(c.config(slave_extra={"s1": {"jwt_secret_key": "s1-token"}},
                            master_extra={"jwt_secret_key": "master-token"}))
    text = " ".join(report.warnings)
    assert "s1-token" in text and "master-token" in text, report.warnings
    # the slave that needs the master's secret (for its feeder) is told so
    assert any("master-token" in w for w in _about(report, "s2")), report.warnings


def test_7_token_expiring_within_14_days_is_warned(nodes):
    c = Cluster(nodes)
    soon = c.slaves["s2"].token(expires_in=7 * 86400)
    later = c.slaves["s1"].token(expires_in=20 * 86400)
    report = c.run(c.config(tokens={"s2": soon, "s1": later}))
    assert report.outcome == "ok", report.errors
    s2 = [w for w in _about(report, "s2") if "expire" in w]
    assert len(s2) == 1, report.warnings
    assert not [w for w in report.warnings if "expire" in w and " s2" not in w], report.warnings
    assert soon not in json.dumps(report.as_json())


# Found in review round 1 (fixed since).
def test_env_var_with_null_value_is_copied(nodes):
    c = Cluster(nodes)
    assert c.master.api("POST", "/env", {"optional": None})[0] == 200
    c.placed()
    status, env = c.slaves["s1"].api("GET", "/env")
    assert status == 200 and "optional" in env and env["optional"] is None


# An attack from review round 1, survived.
def test_jwt_secret_key_toggled_on_and_off(nodes):
    c = Cluster(nodes)
    cfg = c.placed()
    token = cfg.slave("s1").jwt_token.get_secret_value()
    assert original(c.master, "systems", "crm")["jwt_token"] == token
    keyed = c.config(slave_extra={"s1": {"jwt_secret_key": "s1-token"}})
    report = c.run(keyed)
    # The master lacks the secret: it refuses the rewrite, which is reported, and the
    # system keeps reading the slave with the token it had.
    assert any("s1-token" in w for w in report.warnings)
    assert any("crm" in e and "s1-token" in e for e in report.errors), report.errors
    assert original(c.master, "systems", "crm")["jwt_token"] == token
    assert token not in json.dumps(report.as_json())
    c.master.seed(secrets={"s1-token": token})
    report = c.run(keyed)
    assert report.outcome == "ok", report.errors
    assert original(c.master, "systems", "crm")["jwt_token"] == "$SECRET(s1-token)"
    c.clear()
    c.run(keyed)
    assert c.no_writes(), c.writes()
    assert c.run(cfg).outcome == "ok"
    assert original(c.master, "systems", "crm")["jwt_token"] == token
    assert meta(original(c.master, "systems", "crm"))["original_configuration"] == c.systems[0]


# An attack from review round 1, survived.
def test_master_secrets_forbidden_is_a_warning_and_the_run_goes_on(nodes):
    c = Cluster(nodes)
    c.master.add_fault(method="GET", path="^/api/secrets$", status=403, times=100)
    report = c.run(c.config())
    assert report.outcome == "ok", report.errors
    assert any("master" in w and "secret" in w for w in report.warnings), report.warnings
    assert all("\n" not in w for w in report.warnings)
    assert ids(c.slaves["s1"], "systems") == {"crm"}


# An attack from review round 1, survived.
def test_empty_master_env_writes_no_env_and_keeps_slave_vars(nodes):
    c = Cluster(nodes, seed=False)
    c.master.seed(systems=c.systems, pipes=c.pipes)
    c.slaves["s1"].seed(env={"own": "x"})
    c.clear()
    c.placed()
    assert c.slaves["s1"].api("GET", "/env")[1] == {"own": "x"}
    assert not any(r["path"] == "/api/env" for r in c.writes()["s1"])


# An attack from review round 4, survived.
def test_env_values_that_are_objects_and_lists_are_copied_once(nodes):
    c = Cluster(nodes, seed=False)
    c.master.seed(systems=c.systems, pipes=c.pipes, env=ODD_ENV)
    for s in c.slaves.values():
        s.seed(env={"slave-only": {"k": 1}, "lst": [1, "x"], "flag": True})
    cfg = c.config()
    run_as_planned(c, cfg)
    for s in c.slaves.values():
        env = s.api("GET", "/env")[1]
        assert {k: env[k] for k in ODD_ENV} == ODD_ENV
        assert env["slave-only"] == {"k": 1}
    assert_steady(c, cfg)
    # a changed nested value is copied again, alone
    c.master.api("POST", "/env", {"obj": {"a": [1, {"b": 2}], "c": "d"}})
    c.clear()
    run_as_planned(c, cfg)
    posts = [w for w in c.global_writes() if w[1] == "POST" and w[2] == "/api/env"]
    assert len(posts) == 2
    assert c.slaves["s1"].api("GET", "/env")[1]["obj"] == {"a": [1, {"b": 2}], "c": "d"}
    assert_steady(c, cfg)


# Found in the service review (fixed since).
def test_a_token_with_exp_in_milliseconds_does_not_stop_every_run(nodes) -> None:
    master, s1 = nodes(), nodes()
    master.seed(systems=[{"_id": "crm", "type": "system:url", "base_url": "http://x/"}],
                pipes=[{"_id": "crm-person", "type": "pipe",
                        "source": {"type": "json", "system": "crm", "url": "p"}}])
    token = jwt.encode({"exp": int(time.time() * 1000), "principals": ["group:Admin"]},
                       JWT_SECRET, algorithm="HS256")
    assert master.api("GET", "/pipes")[0] == 200          # the node itself accepts it
    config = load_config(environ(master, {"s1": (s1, ["crm"])},
                                 master_extra={"jwt_token": token}))
    try:
        result = orchestrator.run(config)
    except (ValueError, OverflowError) as exc:
        pytest.fail(f"the run raised {exc!r}")
    assert result.outcome == "ok", result.as_json()
    assert "crm-person" in originals(s1, "pipes")
