"""Issue 13, points 5 and 6 for the configuration: what cannot work is refused before any
node is contacted, with one line naming the variable and the field, never echoing a token
or a password. An endpoint with user info would send Basic auth instead of the JWT and show
its password on /status; a token with a trailing newline or a character an HTTP header
cannot carry would make every run fail obscurely; JSON nested 100,000 deep would be a
traceback."""
from __future__ import annotations

import json

import pytest

from hostile_configs import refused_once
from service.config import ConfigError, load_config
from stand_in_run import make

TOKEN = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2VuLXBheWxvYWQ.do-not-echo-this-signature"
PASSWORD = "hunter2-do-not-echo"
DEEP = "[" * 100_000 + "]" * 100_000


def _environ(url: str, *, master: dict | None = None, slave: dict | None = None) -> dict:
    m = {"_id": "m", "endpoint": url, "jwt_token": TOKEN, **(master or {})}
    s = {"_id": "s1", "endpoint": url.replace("127.0.0.1", "localhost"), "jwt_token": TOKEN,
         "managed_systems": ["a"], **(slave or {})}
    return {"MASTER_NODE": json.dumps(m), "SLAVE_NODES": json.dumps([s])}


def cases(url: str) -> dict[str, tuple[dict, str]]:
    """name -> (environment, the start of the one line it must print)."""
    host = url.split("://", 1)[1]
    return {
        "endpoint with user and password": (
            _environ(url, master={"endpoint": f"http://admin:{PASSWORD}@{host}"}),
            "MASTER_NODE.endpoint: must not hold user info"),
        "endpoint with a user only": (
            _environ(url, slave={"endpoint": f"http://admin@{host.replace('127.0.0.1', 'localhost')}"}),
            "SLAVE_NODES[0].endpoint: must not hold user info"),
        "endpoint with the token as user": (
            _environ(url, master={"endpoint": f"https://{TOKEN}@{host}"}),
            "MASTER_NODE.endpoint: must not hold user info"),
        "token with a trailing newline": (
            _environ(url, master={"jwt_token": TOKEN + "\n"}),
            "MASTER_NODE.jwt_token: has whitespace around it"),
        "token with a leading space": (
            _environ(url, slave={"jwt_token": " " + TOKEN}),
            "SLAVE_NODES[0].jwt_token: has whitespace around it"),
        "token with a non-Latin-1 character": (
            _environ(url, master={"jwt_token": TOKEN + "\u2603"}),
            "MASTER_NODE.jwt_token: must be printable ASCII"),
        "token with an accented letter": (
            _environ(url, slave={"jwt_token": TOKEN.replace("do", "d\u00f6")}),
            "SLAVE_NODES[0].jwt_token: must be printable ASCII"),
        "token with a space inside": (
            _environ(url, master={"jwt_token": TOKEN.replace(".", ". ", 1)}),
            "MASTER_NODE.jwt_token: must be printable ASCII"),
        "API_TOKEN with a trailing newline": (
            {**_environ(url), "API_TOKEN": "a-long-enough-api-token-0123\n"},
            "API_TOKEN: has whitespace around it"),
        "MASTER_NODE nested 100,000 deep": (
            {**_environ(url), "MASTER_NODE": DEEP}, "MASTER_NODE: is JSON nested too deeply"),
        "SLAVE_NODES nested 100,000 deep": (
            {**_environ(url), "SLAVE_NODES": DEEP}, "SLAVE_NODES: is JSON nested too deeply"),
        "RUN_TIMEOUT shorter than REQUEST_TIMEOUT": (
            {**_environ(url), "RUN_TIMEOUT": "5", "REQUEST_TIMEOUT": "10"},
            "RUN_TIMEOUT: is shorter than REQUEST_TIMEOUT"),
    }


CASE_NAMES = list(cases("http://127.0.0.1:1"))


@pytest.mark.parametrize("name", CASE_NAMES)
def test_refused_with_one_line_naming_the_field(name, node, monkeypatch, capsys):
    environ, expected = cases(node.url)[name]
    err = refused_once(monkeypatch, capsys, environ)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("configuration error: " + expected), lines[0]
    assert "do-not-echo" not in err and "Traceback" not in err
    assert node.requests() == []


# Found in the service review (fixed since).
def test_a_non_ascii_api_token_is_refused_up_front() -> None:
    # A WSGI server hands header bytes over as latin-1: such a token could never match, so
    # the service refuses it at start with one line, rather than locking the API for good.
    with pytest.raises(ConfigError, match=r"^API_TOKEN: must be printable ASCII"):
        make(api_token="jeton-secret-ø-☃-0123456789")


# Found in the service review (fixed since).
@pytest.mark.parametrize("value", ["", "   "])
def test_a_blank_api_token_is_refused_rather_than_opening_the_api(value: str) -> None:
    env = json.loads(json.dumps({
        "MASTER_NODE": {"_id": "m", "endpoint": "http://127.0.0.1:9", "jwt_token": "t"},
        "SLAVE_NODES": [{"_id": "s1", "endpoint": "http://127.0.0.1:10", "jwt_token": "t",
                         "managed_systems": ["a"]}]}))
    variables = {k: json.dumps(v) for k, v in env.items()} | {"API_TOKEN": value}
    with pytest.raises(ConfigError, match=r"^API_TOKEN: is set but blank"):
        load_config(variables)
