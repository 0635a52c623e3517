"""Broken and hostile configurations, each with the field its one-line error must name.

Shared by the refusal tests (exit 2, nothing sent) and the test that reports every problem
at once."""
from __future__ import annotations

import json

import pytest

from service.__main__ import main

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


# Every variable the service reads: a test sets those of its case and no other.
VARIABLES = ("MASTER_NODE", "SLAVE_NODES", "UPDATE_INTERVAL", "PORT", "PER_NODE_CONCURRENCY",
             "API_TOKEN", "REQUEST_TIMEOUT", "RUN_TIMEOUT", "LOG_LEVEL")


def only_these_variables(monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]) -> None:
    for var in VARIABLES:
        monkeypatch.delenv(var, raising=False)
    for var, value in environ.items():
        monkeypatch.setenv(var, value)


def refused_once(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                 environ: dict[str, str]) -> str:
    """`--once` in process with only `environ` set exits 2 with nothing on stdout; its stderr."""
    only_these_variables(monkeypatch, environ)
    assert main(["--once"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    return err
