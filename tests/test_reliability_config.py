"""Issue 5, hostile and broken configuration: exit code 2, one line naming the field, no
request to any node, no token echoed."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from service.__main__ import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2VuLXBheWxvYWQ.do-not-echo-this-signature"


def _master(url, **over):
    return {"_id": "m", "endpoint": url, "jwt_token": TOKEN, **over}


def _slave(url, sid="s1", managed=("a",), **over):
    # The same emulator under another name: each node must have an endpoint of its own.
    endpoint = url.replace("127.0.0.1", "localhost") + ("" if sid == "s1" else f"/{sid}")
    return {"_id": sid, "endpoint": endpoint, "jwt_token": TOKEN,
            "managed_systems": managed if isinstance(managed, str) else list(managed), **over}


def cases(url: str) -> list[tuple[str, dict, str]]:
    """(name, environment, the field the error must name)."""
    m, s = _master(url), _slave(url)
    ok = {"MASTER_NODE": json.dumps(m), "SLAVE_NODES": json.dumps([s])}

    def with_master(**over):
        return {**ok, "MASTER_NODE": json.dumps(_master(url, **over))}

    def with_slaves(*slaves):
        return {**ok, "SLAVE_NODES": json.dumps(list(slaves))}
    no_endpoint = {k: v for k, v in m.items() if k != "endpoint"}
    no_managed = {k: v for k, v in s.items() if k != "managed_systems"}
    return [
        ("no MASTER_NODE", {"SLAVE_NODES": ok["SLAVE_NODES"]}, "MASTER_NODE"),
        ("no SLAVE_NODES", {"MASTER_NODE": ok["MASTER_NODE"]}, "SLAVE_NODES"),
        ("unparsable master", {**ok, "MASTER_NODE": '{"_id": "m", "jwt_token": "' + TOKEN},
         "MASTER_NODE"),
        ("unparsable slaves", {**ok, "SLAVE_NODES": "[{,]"}, "SLAVE_NODES"),
        ("master is a list", {**ok, "MASTER_NODE": json.dumps([m])}, "MASTER_NODE"),
        ("slaves is an object", {**ok, "SLAVE_NODES": json.dumps(s)}, "SLAVE_NODES"),
        # (SLAVE_NODES=[] is valid since issue 14: it un-manages everything.)
        ("master without endpoint", {**ok, "MASTER_NODE": json.dumps(no_endpoint)},
         "MASTER_NODE.endpoint"),
        ("slave without managed_systems", with_slaves(no_managed), "SLAVE_NODES[0].managed_systems"),
        ("token is a number", with_master(jwt_token=12345), "MASTER_NODE.jwt_token"),
        ("token is empty", with_master(jwt_token=""), "MASTER_NODE.jwt_token"),
        ("managed_systems is a string", with_slaves(_slave(url, managed="a")),
         "SLAVE_NODES[0].managed_systems"),
        ("ftp endpoint", with_master(endpoint="ftp://127.0.0.1/"), "MASTER_NODE.endpoint"),
        ("endpoint without scheme", with_slaves(_slave("127.0.0.1:5000")),
         "SLAVE_NODES[0].endpoint"),
        ("endpoint is the token", with_master(endpoint=TOKEN), "MASTER_NODE.endpoint"),
        ("endpoint with a bad port", with_master(endpoint="http://127.0.0.1:99999"),
         "MASTER_NODE.endpoint"),
        # Each case has one problem only: every problem is reported, one line each.
        ("duplicate slave ids", with_slaves(_slave(url), {**_slave(url, managed=("b",)),
                                                          "endpoint": url + "/other"}),
         "SLAVE_NODES[1]._id"),
        ("a slave at the master's endpoint", with_slaves(_slave(url), {**_slave(url, sid="s2", managed=("b",)),
                                                                      "endpoint": url + "/api/"}),
         "SLAVE_NODES[1].endpoint"),
        ("slave with the master's id", with_slaves(_slave(url, sid="m")), "SLAVE_NODES[0]._id"),
        ("one system on two slaves", with_slaves(_slave(url), _slave(url, sid="s2")),
         "SLAVE_NODES[1].managed_systems"),
        ("a system named twice", with_slaves(_slave(url, managed=("a", "a"))),
         "SLAVE_NODES[0].managed_systems"),
        ("managing a Sesam system", with_slaves(_slave(url, managed=("system:sesam-node",))),
         "SLAVE_NODES[0].managed_systems"),
        ("negative interval", {**ok, "UPDATE_INTERVAL": "-5"}, "UPDATE_INTERVAL"),
        ("zero interval", {**ok, "UPDATE_INTERVAL": "0"}, "UPDATE_INTERVAL"),
        ("interval not a number", {**ok, "UPDATE_INTERVAL": "soon"}, "UPDATE_INTERVAL"),
        ("absurd interval", {**ok, "UPDATE_INTERVAL": str(10**12)}, "UPDATE_INTERVAL"),
        ("negative sync_interval", with_slaves(_slave(url, sync_interval=-1)),
         "SLAVE_NODES[0].sync_interval"),
        ("sync_interval as text", with_slaves(_slave(url, sync_interval="often")),
         "SLAVE_NODES[0].sync_interval"),
        ("negative stagger", with_slaves(_slave(url, sync_interval_stagger_range=-3)),
         "SLAVE_NODES[0].sync_interval_stagger_range"),
        ("huge stagger", with_slaves(_slave(url, sync_interval_stagger_range=10**15)),
         "SLAVE_NODES[0].sync_interval_stagger_range"),
        ("unicode node id", with_slaves(_slave(url, sid="slåve-☃")), "SLAVE_NODES[0]._id"),
        ("empty node id", with_master(_id=""), "MASTER_NODE._id"),
        ("huge token", with_master(jwt_token="x" * 100_000), "MASTER_NODE.jwt_token"),
        ("unknown field", with_master(jwt_secret="typo"), "MASTER_NODE.jwt_secret"),
        ("use_binary_source not a bool", with_master(use_binary_source="perhaps"),
         "MASTER_NODE.use_binary_source"),
        ("port out of range", {**ok, "PORT": "70000"}, "PORT"),
        ("concurrency zero", {**ok, "PER_NODE_CONCURRENCY": "0"}, "PER_NODE_CONCURRENCY"),
    ]


CASE_NAMES = [name for name, _, _ in cases("http://x")]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_bad_configuration_exits_2_naming_the_field_and_sends_nothing(
        name, node, monkeypatch, capsys):
    environ, field = next((e, f) for n, e, f in cases(node.url) if n == name)
    for var in ("MASTER_NODE", "SLAVE_NODES", "UPDATE_INTERVAL", "PORT", "PER_NODE_CONCURRENCY",
                "API_TOKEN", "REQUEST_TIMEOUT", "LOG_LEVEL"):
        monkeypatch.delenv(var, raising=False)
    for var, value in environ.items():
        monkeypatch.setenv(var, value)
    assert main(["--once"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("configuration error: " + field + ":"), lines[0]
    assert TOKEN not in err and "do-not-echo" not in err and "x" * 50 not in err
    assert node.requests() == []


def test_at_least_25_bad_configurations_are_covered():
    assert len(CASE_NAMES) >= 25 and len(set(CASE_NAMES)) == len(CASE_NAMES)


def test_the_real_process_exits_2_before_listening(node):
    environ = next(e for n, e, _ in cases(node.url) if n == "one system on two slaves")
    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_NODE", "SLAVE_NODES")}
    proc = subprocess.run([sys.executable, "-m", "service"], env={**env, **environ,
                          "PYTHONPATH": ROOT, "PORT": "5999"}, cwd=ROOT, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "configuration error: SLAVE_NODES[1].managed_systems: system 'a' is already managed "
        "by SLAVE_NODES[0]"]
    assert node.requests() == []
