"""Issue 14, point 3: the configuration as Sesam users write it.

Numbers as numeric strings, `LOG_LEVEL=debug`, `SLAVE_NODES=[]` (un-manage everything),
unknown fields (a warning; an error with "did you mean" for a near miss), every problem at
once in plain words, and the warning a missing `jwt_secret_key` deserves.
"""
from __future__ import annotations

import json

import pytest

from contract_helpers import Cluster, ids, originals
from hostile_configs import CASE_NAMES, TOKEN, cases, only_these_variables, refused_once
from service.__main__ import main
from service.config import ConfigError, load_config

# What pydantic says, which an operator should never have to read.
JARGON = ("Input should", "Field required", "Extra inputs", "pydantic", "String should",
          "instance of", "Tuple should", "List should", "Value error", "validation error")


def _master(**over) -> dict:
    return {"_id": "m", "endpoint": "https://m.example", "jwt_token": TOKEN,
            "jwt_secret_key": "m-jwt", **over}


def _slave(**over) -> dict:
    return {"_id": "s1", "endpoint": "https://s1.example", "jwt_token": TOKEN,
            "jwt_secret_key": "s1-jwt", "managed_systems": ["crm"], **over}


def _env(master: dict | None = None, slaves: list | None = None, **variables: str) -> dict:
    return {"MASTER_NODE": json.dumps(master if master is not None else _master()),
            "SLAVE_NODES": json.dumps(slaves if slaves is not None else [_slave()]),
            **variables}


def _problems(env: dict) -> tuple[str, ...]:
    with pytest.raises(ConfigError, match=r"\S") as caught:
        load_config(env)
    return caught.value.problems


def test_numbers_may_be_numeric_strings():
    config = load_config(_env(slaves=[_slave(sync_interval="300",
                                             sync_interval_stagger_range=" 60 ")],
                              UPDATE_INTERVAL="900", PORT="5001"))
    slave = config.slaves[0]
    assert (slave.sync_interval, slave.stagger_range) == (300, 60)
    assert (config.update_interval, config.port) == (900, 5001)
    assert load_config(_env(master=_master(use_binary_source="true"))).master.use_binary_source


@pytest.mark.parametrize("value, field", [("often", "sync_interval"), ("3.5", "sync_interval"),
                                          (True, "sync_interval"), ("-1", "sync_interval"),
                                          ("", "sync_interval_stagger_range")])
def test_what_is_not_a_whole_number_is_still_refused(value, field):
    problems = _problems(_env(slaves=[_slave(**{field: value})]))
    assert problems == (f"SLAVE_NODES[0].{field}: " + (
        "must be more than 0" if value == "-1" else
        "must be a whole number (300 or \"300\")"),)


@pytest.mark.parametrize("written, level", [("debug", "DEBUG"), ("Info", "INFO"),
                                            ("WARN", "WARNING"), (" error ", "ERROR")])
def test_log_level_in_any_case(written, level):
    assert load_config(_env(LOG_LEVEL=written)).log_level == level


def test_an_unknown_log_level_names_the_choices():
    assert _problems(_env(LOG_LEVEL="loud")) == (
        "LOG_LEVEL: must be one of debug, info, warning or error",)


def test_an_unknown_field_is_a_warning_and_ignored():
    config = load_config(_env(master=_master(colour="blue"),
                              slaves=[_slave(comment="moved in May")]))
    assert config.warnings()[:2] == ["MASTER_NODE.colour: is not a known field; it is ignored",
                                     "SLAVE_NODES[0].comment: is not a known field; it is ignored"]
    assert "colour" not in json.dumps(config.public()["master"])


@pytest.mark.parametrize("where, typo, meant", [
    ("master", "jwt_secret", "jwt_secret_key"), ("master", "use_binary_sources",
                                                 "use_binary_source"),
    ("slave", "managed_system", "managed_systems"), ("slave", "sync_intervall", "sync_interval"),
    ("slave", "Endpoint", "endpoint"), ("slave", "sync_interval_stager_range",
                                        "sync_interval_stagger_range")])
def test_a_near_miss_of_a_known_field_is_an_error_saying_what_was_meant(where, typo, meant):
    if where == "master":
        env, var = _env(master={**_master(), typo: "x"}), "MASTER_NODE"
    else:
        env, var = _env(slaves=[{**_slave(), typo: "x"}]), "SLAVE_NODES[0]"
    assert f"{var}.{typo}: is not a known field; did you mean '{meant}'?" in _problems(env)


def test_a_near_miss_of_a_required_variable_is_named():
    env = _env()
    env["SLAVE_NODE"] = env.pop("SLAVE_NODES")
    assert _problems(env) == ("SLAVE_NODES: is required (SLAVE_NODE is set: did you mean "
                              "SLAVE_NODES?)",)


def test_every_problem_is_reported_at_once(node, monkeypatch, capsys):
    environ = {
        "MASTER_NODE": json.dumps(_master(endpoint="ftp://m.example", jwt_secret_key="")),
        "SLAVE_NODES": json.dumps([{**{k: v for k, v in _slave().items()
                                       if k != "managed_systems"},
                                    "sync_interval": "often", "managed_system": ["a"]},
                                   _slave(_id="s2", endpoint=node.url)]),
        "UPDATE_INTERVAL": "soon", "LOG_LEVEL": "loud", "PORT": "70000"}
    err = refused_once(monkeypatch, capsys, environ)
    assert sorted(err.splitlines()) == sorted("configuration error: " + line for line in [
        "MASTER_NODE.endpoint: must be an http(s) URL",
        "MASTER_NODE.jwt_secret_key: must not be empty",
        "SLAVE_NODES[0].managed_system: is not a known field; did you mean 'managed_systems'?",
        "SLAVE_NODES[0].managed_systems: is required",
        "SLAVE_NODES[0].sync_interval: must be a whole number (300 or \"300\")",
        "UPDATE_INTERVAL: must be a whole number (300 or \"300\")",
        "PORT: must be 65535 or less",
        "LOG_LEVEL: must be one of debug, info, warning or error"])
    assert node.requests() == []


def test_cross_field_problems_are_reported_together():
    problems = _problems(_env(slaves=[_slave(), _slave(managed_systems=["crm"])],
                              REQUEST_TIMEOUT="60", RUN_TIMEOUT="30"))
    assert problems == (
        "RUN_TIMEOUT: is shorter than REQUEST_TIMEOUT; a run could not wait for a single answer",
        "SLAVE_NODES[1]._id: node id 's1' is used twice",
        "SLAVE_NODES[1].endpoint: is the endpoint of SLAVE_NODES[0]; each node may be listed "
        "once",
        "SLAVE_NODES[1].managed_systems: system 'crm' is already managed by SLAVE_NODES[0]")


@pytest.mark.parametrize("name", CASE_NAMES)
def test_no_message_uses_the_validation_library_s_words(name):
    environ, field = next((e, f) for n, e, f in cases("http://127.0.0.1:9") if n == name)
    for problem in _problems(environ):
        assert not any(word.lower() in problem.lower() for word in JARGON), problem
    assert any(p.startswith(field + ":") for p in _problems(environ))


def test_empty_slave_nodes_is_valid():
    config = load_config(_env(slaves=[]))
    assert config.slaves == () and config.public()["slaves"] == []


def test_empty_slave_nodes_moves_everything_back_to_the_master(nodes):
    c = Cluster(nodes)
    c.placed()
    assert ids(c.slaves["s1"], "systems") == {"crm"}
    report = c.run(c.config({}))
    assert report.outcome == "ok", report.errors
    assert originals(c.master, "systems") == {s["_id"]: s for s in c.systems}
    assert originals(c.master, "pipes") == {p["_id"]: p for p in c.pipes}
    # The slaves are no longer listed: their copies cannot be removed from here; say so.
    assert any("s1" in w and "no longer in SLAVE_NODES" in w for w in report.warnings), \
        report.warnings


def test_empty_slave_nodes_keeps_the_empty_master_guard(nodes):
    c = Cluster(nodes, seed=False)
    c.clear()
    report = c.run(c.config({}))
    assert report.outcome == "aborted"
    assert any("lists no pipes or no systems" in e for e in report.errors), report.errors
    assert c.no_writes()


def test_a_node_without_jwt_secret_key_is_warned_about_naming_the_secret():
    master = {k: v for k, v in _master().items() if k != "jwt_secret_key"}
    slave = {k: v for k, v in _slave().items() if k != "jwt_secret_key"}
    warnings = load_config(_env(master=master, slaves=[slave])).warnings()
    assert len(warnings) == 2
    assert warnings[0].startswith("MASTER_NODE has no jwt_secret_key: the master's token is "
                                  "written in clear text")
    assert '"jwt_secret_key": "m-jwt"' in warnings[0]
    assert warnings[1].startswith("SLAVE_NODES[0] (s1) has no jwt_secret_key: its token is "
                                  "written in clear text into the master's config")
    assert "'s1-jwt'" in warnings[1] and TOKEN not in " ".join(warnings)
    assert load_config(_env()).warnings() == []


def test_the_secret_key_warning_shows_at_start_on_status_and_on_the_page(node, monkeypatch,
                                                                          caplog):
    from stand_in_run import make
    client, _, _ = make()          # its nodes have no jwt_secret_key
    status = client.get("/status").json
    assert [w.split(":")[0] for w in status["config"]["warnings"]] == [
        "MASTER_NODE has no jwt_secret_key", "SLAVE_NODES[0] (s1) has no jwt_secret_key"]
    page = client.get("/").text
    assert "SLAVE_NODES[0] (s1) has no jwt_secret_key" in page
    assert "&#34;jwt_secret_key&#34;: &#34;s1-jwt&#34;" in page     # escaped, as all text
    slave = {k: v for k, v in _slave(endpoint=node.url.replace("127.0.0.1", "localhost")).items()
             if k != "jwt_secret_key"}
    only_these_variables(monkeypatch, _env(master=_master(endpoint=node.url), slaves=[slave]))
    with caplog.at_level("WARNING", logger="service"):
        main(["--plan"])
    said = [r.getMessage() for r in caplog.records if r.name == "service"]
    assert any(m.startswith("configuration: SLAVE_NODES[0] (s1) has no jwt_secret_key")
               for m in said), said
    assert TOKEN not in caplog.text


def test_an_unknown_field_s_name_cannot_forge_a_line_or_show_a_token():
    config = load_config(_env(master={**_master(), "a\nconfiguration error: forged": 1,
                                      TOKEN: "pasted as a key"}))
    shown = config.warnings()
    assert len(shown) == 2 and all("\n" not in w for w in shown)
    assert shown[0] == ('MASTER_NODE."a\\nconfiguration error: forged": is not a known field; '
                        "it is ignored")
    assert TOKEN not in " ".join(shown) and "do-not-echo" not in " ".join(shown)
