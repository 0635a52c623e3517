"""Contract 1: configuration from environment variables, checked before any node is contacted."""
from __future__ import annotations

import json
import re

import pytest

from contract_helpers import Cluster, ids, original
from service.__main__ import main
from service.config import ConfigError, load_config

TOKEN = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2VuLXZhbHVl.do-not-echo-me"


def _env(master: dict | None = None, slaves: list[dict] | None = None, **variables: str) -> dict:
    m = {"_id": "master", "endpoint": "https://master.example", "jwt_token": TOKEN, **(master or {})}
    s = slaves if slaves is not None else [
        {"_id": "s1", "endpoint": "https://s1.example", "jwt_token": TOKEN, "managed_systems": ["a"]}]
    return {"MASTER_NODE": json.dumps(m), "SLAVE_NODES": json.dumps(s), **variables}


def _slave(**fields) -> dict:
    return {"_id": "s1", "endpoint": "https://s1.example", "jwt_token": TOKEN,
            "managed_systems": ["a"], **fields}


def test_1_defaults():
    cfg = load_config(_env())
    assert cfg.update_interval == 1800
    slave = cfg.slave("s1")
    assert slave.sync_interval == 300 and slave.stagger_range == 300
    assert cfg.master.use_binary_source is False and cfg.master.jwt_secret_key is None
    cfg = load_config(_env(slaves=[_slave(sync_interval=60)], UPDATE_INTERVAL="60"))
    assert cfg.update_interval == 60 and cfg.slave("s1").stagger_range == 60
    cfg = load_config(_env(slaves=[_slave(sync_interval=60, sync_interval_stagger_range=0)]))
    assert cfg.slave("s1").stagger_range == 0


@pytest.mark.parametrize("endpoint", ["https://n.example", "https://n.example/",
                                      "https://n.example/api", "https://n.example/api/"])
def test_1_endpoint_with_or_without_trailing_slash_and_api(endpoint):
    cfg = load_config(_env(master={"endpoint": endpoint}))
    assert cfg.master.api_url == "https://n.example/api"


BAD = [
    ("unparsable JSON", {"MASTER_NODE": "{not json"}, "MASTER_NODE", None),
    ("missing variable", {"SLAVE_NODES": None}, "SLAVE_NODES", None),
    ("missing field", {"MASTER_NODE": json.dumps({"_id": "master", "endpoint": "https://m.example"})},
     "MASTER_NODE", "jwt_token"),
    ("mistyped field", {"SLAVE_NODES": json.dumps([_slave(managed_systems="a")])},
     "SLAVE_NODES", "managed_systems"),
    ("endpoint not a URL", {"SLAVE_NODES": json.dumps([_slave(endpoint="ftp://s1.example")])},
     "SLAVE_NODES", "endpoint"),
    ("endpoint not a URL 2", {"MASTER_NODE": json.dumps(
        {"_id": "master", "endpoint": "master.example", "jwt_token": TOKEN})}, "MASTER_NODE", "endpoint"),
    ("duplicate node ids", {"SLAVE_NODES": json.dumps([_slave(), _slave(
        managed_systems=["b"], endpoint="https://s1b.example")])},
     "SLAVE_NODES", "_id"),
    ("slave named like the master", {"SLAVE_NODES": json.dumps([_slave(_id="master")])},
     "SLAVE_NODES", "_id"),
    ("zero sync_interval", {"SLAVE_NODES": json.dumps([_slave(sync_interval=0)])},
     "SLAVE_NODES", "sync_interval"),
    ("negative stagger", {"SLAVE_NODES": json.dumps([_slave(sync_interval_stagger_range=-1)])},
     "SLAVE_NODES", "sync_interval_stagger_range"),
    ("zero UPDATE_INTERVAL", {"UPDATE_INTERVAL": "0"}, "UPDATE_INTERVAL", None),
    ("negative UPDATE_INTERVAL", {"UPDATE_INTERVAL": "-5"}, "UPDATE_INTERVAL", None),
    ("overlapping managed systems", {"SLAVE_NODES": json.dumps([
        _slave(managed_systems=["a", "b"]),
        _slave(_id="s2", endpoint="https://s2.example", managed_systems=["c", "b"])])},
     "SLAVE_NODES", "managed_systems"),
]


@pytest.mark.parametrize("what, override, variable, field", BAD, ids=[b[0] for b in BAD])
def test_1_invalid_configuration_is_one_line_naming_variable_and_field(what, override, variable,
                                                                       field):
    env = {k: v for k, v in {**_env(), **override}.items() if v is not None}
    with pytest.raises(ConfigError, match="^" + re.escape(variable)) as caught:
        load_config(env)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(variable), message
    if field:
        assert field in message, message
    assert TOKEN not in message and "do-not-echo-me" not in message


def test_1_overlap_names_the_system(nodes):
    with pytest.raises(ConfigError, match="'b'"):
        load_config(_env(slaves=[_slave(managed_systems=["b"]),
                                 _slave(_id="s2", endpoint="https://s2.example",
                                        managed_systems=["b"])]))


def test_1_invalid_configuration_stops_before_talking_to_any_node(nodes, monkeypatch, capsys):
    c = Cluster(nodes)
    c.clear()
    env = c.environ({"s1": ["crm"], "s2": ["crm"]})     # overlapping: refused
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert main(["--once"]) == 2
    err = capsys.readouterr().err
    assert "SLAVE_NODES" in err and "managed_systems" in err
    assert not any(t in err for t in c.tokens.values())
    assert all(node.requests() == [] for node in c.named().values())


def test_1_endpoint_forms_work_against_real_nodes(nodes):
    c = Cluster(nodes)
    env = c.environ({"s1": ["crm"], "s2": ["erp"]})
    master = json.loads(env["MASTER_NODE"])
    master["endpoint"] = c.master.url + "/api/"
    slaves = json.loads(env["SLAVE_NODES"])
    slaves[0]["endpoint"] = c.slaves["s1"].url + "/"
    slaves[1]["endpoint"] = c.slaves["s2"].url + "/api"
    cfg = load_config({"MASTER_NODE": json.dumps(master), "SLAVE_NODES": json.dumps(slaves)})
    report = c.run(cfg)
    assert report.outcome == "ok", report.errors
    assert ids(c.slaves["s1"], "systems") == {"crm"}
    assert "erp" in ids(c.slaves["s2"], "systems")
    assert original(c.master, "systems", "crm")["url_pattern"] == \
        c.slaves["s1"].url + "/api/datasets/%s/entities?history=false&populated=true"


def _env_with(master_extra: dict | None = None, slave_extra: dict | None = None) -> dict:
    m = {"_id": "m", "endpoint": "http://m.example", "jwt_token": "t", **(master_extra or {})}
    s = [{"_id": "s", "endpoint": "http://s.example", "jwt_token": "u", "managed_systems": ["a"],
          **(slave_extra or {})}]
    return {"MASTER_NODE": json.dumps(m), "SLAVE_NODES": json.dumps(s)}


# Found in review round 1 (fixed since).
def test_user_system_named_like_the_feeder_system(nodes):
    # A slave may not manage a system named like the feeder system: refused up front, in
    # one line naming the field, before the slave's copy could be replaced by the feeder.
    c = Cluster(nodes, seed=False)
    with pytest.raises(ConfigError, match=r"^SLAVE_NODES\[1\]\.managed_systems: ") as exc:
        c.config({"s1": ["crm"], "s2": ["erp", "orchestrator-master"]})
    assert str(exc.value).startswith("SLAVE_NODES[1].managed_systems: 'orchestrator-master'")
    assert "\n" not in str(exc.value)


# Found in review round 1 (fixed since).
def test_config_error_is_one_line_for_an_id_with_a_newline():
    def slave(sid: str) -> dict:
        return {"_id": sid, "endpoint": "http://127.0.0.1:1", "jwt_token": "t" * 20,
                "managed_systems": ["crm\nINJECTED"]}
    env = {"MASTER_NODE": json.dumps({"_id": "m", "endpoint": "http://127.0.0.1:1",
                                      "jwt_token": "secret-token-value"}),
           "SLAVE_NODES": json.dumps([slave("s1"), slave("s2")])}
    with pytest.raises(ConfigError, match=r"SLAVE_NODES\[0\]\.managed_systems") as exc:
        load_config(env)
    # Refused for its control character, at the first slave naming it.
    assert "\n" not in str(exc.value) and "SLAVE_NODES[0].managed_systems" in str(exc.value)


# Found in review round 4 (fixed since).
@pytest.mark.parametrize("env, field", [
    (_env_with(slave_extra={"sync_interval": True}), r"SLAVE_NODES\[0\]\.sync_interval: "),
    (_env_with(slave_extra={"sync_interval_stagger_range": True}),
     r"SLAVE_NODES\[0\]\.sync_interval_stagger_range: "),
    (_env_with(master_extra={"use_binary_source": "yes"}), r"MASTER_NODE\.use_binary_source: "),
    (_env_with(master_extra={"use_binary_source": 1}), r"MASTER_NODE\.use_binary_source: "),
], ids=["interval-true", "stagger-true", "binary-yes", "binary-1"])
def test_mistyped_interval_and_binary_flag_are_refused(env, field):
    from service.config import ConfigError, load_config
    with pytest.raises(ConfigError, match="^" + field):
        load_config(env)


# An attack from review round 4, survived.
@pytest.mark.parametrize("extra,interval", [
    ({"sync_interval": 1, "sync_interval_stagger_range": 0}, 1),
    ({"sync_interval": 2592000, "sync_interval_stagger_range": 2592000}, None),
])
def test_interval_edges_are_accepted_and_land_in_range(extra, interval):
    from service.config import load_config
    from service.core.generated import stagger
    cfg = load_config(_env_with(slave_extra=extra))
    slave = cfg.slaves[0]
    for pid in ("a", "b\nc", 'q"', "%2F"):
        value = slave.sync_interval + stagger(pid, slave.stagger_range)
        assert slave.sync_interval <= value < slave.sync_interval + max(1, slave.stagger_range)
        if interval is not None:
            assert value == interval
