"""The emulator refuses uploads with config errors as a Sesam node does (400, nothing stored),
stores them as invalid with force=true, and turns stored components invalid when a later
change breaks them."""
from __future__ import annotations

import pytest
import sesamclient
from sesamclient.exceptions import ConfigUploadFailed

from emulator import EmulatorNode

URL = {"_id": "web", "type": "system:url", "url_pattern": "http://web/%s"}
REST = {"_id": "api", "type": "system:rest", "url_pattern": "http://api/%s"}


def _pipe(pid: str, **parts: object) -> dict:
    return {"_id": pid, "type": "pipe", **parts}


JSON_SOURCE = {"type": "json", "system": "web", "url": "people"}
# (name, kind, config) that a node holding URL and REST and env {"host": ...} refuses.
BAD = [
    ("undefined env", "pipes", _pipe("p", source={**JSON_SOURCE, "url": "$ENV(nope)"})),
    ("undefined env in system", "systems", {**URL, "_id": "w2", "url_pattern": "http://$ENV(nope)/%s"}),
    ("unknown source system", "pipes", _pipe("p", source={**JSON_SOURCE, "system": "ghost"})),
    ("unknown sink system", "pipes", _pipe("p", sink={"type": "json", "system": "ghost", "url": "x"})),
    ("unknown http transform system", "pipes",
     _pipe("p", transform=[{"type": "dtl", "rules": {"default": [["copy", "*"]]}},
                           {"type": "http", "system": "ghost", "url": "x"}])),
    ("unknown rest transform system", "pipes", _pipe("p", transform={"type": "rest", "system": "ghost"})),
    ("unknown system in a conditional alternative", "pipes",
     _pipe("p", source={"type": "conditional", "condition": "$ENV(host)",
                        "alternatives": {"a": {**JSON_SOURCE, "system": "ghost"}}})),
    ("rest system for a json source", "pipes", _pipe("p", source={**JSON_SOURCE, "system": "api"})),
    ("url system for a rest transform", "pipes", _pipe("p", transform={"type": "rest", "system": "web"})),
    ("json source without url", "pipes", _pipe("p", source={"type": "json", "system": "web"})),
    ("binary source without system", "pipes", _pipe("p", source={"type": "binary", "url": "x"})),
    ("json sink without url", "pipes", _pipe("p", sink={"type": "json", "system": "web"})),
    ("dataset source without dataset", "pipes", _pipe("p", source={"type": "dataset"})),
    ("embedded source without entities", "pipes", _pipe("p", source={"type": "embedded"})),
    ("dataset sink without dataset", "pipes", _pipe("p", sink={"type": "dataset"})),
    ("system:url without url_pattern or base_url", "systems", {"_id": "w2", "type": "system:url"}),
    ("system:url with both", "systems", {**URL, "_id": "w2", "base_url": "http://web/"}),
    ("slash in pipe id", "pipes", _pipe("a/b")),
    ("slash in system id", "systems", {**URL, "_id": "a/b"}),
    ("slash in sink dataset", "pipes", _pipe("p", sink={"type": "dataset", "dataset": "a/b"})),
    ("system: sink dataset", "pipes", _pipe("p", sink={"type": "dataset", "dataset": "system:x"})),
    ("pipe id used by a system", "pipes", _pipe("web")),
    ("system id used by a pipe", "systems", {**URL, "_id": "existing"}),
    ("undefined secret", "systems", {**URL, "_id": "w2", "jwt_token": "$SECRET(nope)"}),
    ("secret in a pipe", "pipes",
     _pipe("p", source={**JSON_SOURCE, "headers": {"Authorization": "$SECRET(nope)"}})),
]


def _ready(node: EmulatorNode) -> None:
    node.seed(env={"host": "h"}, systems=[URL, REST], pipes=[_pipe("existing")])


def _ids(node: EmulatorNode, kind: str) -> list[str]:
    return sorted(c["_id"] for c in node.api("GET", "/" + kind)[1])


@pytest.mark.parametrize("name,kind,config", BAD, ids=[b[0] for b in BAD])
def test_invalid_upload_is_refused_and_stores_nothing(node: EmulatorNode, name: str, kind: str,
                                                      config: dict) -> None:
    _ready(node)
    before = _ids(node, kind)
    status, body = node.api("POST", "/" + kind, [config])
    assert status == 400, name
    errors = body["validation_errors"]
    assert [e["posted-config"]["_id"] for e in errors] == [config["_id"]]
    assert errors[0]["config-errors"] and all(e["level"] == "error" for e in errors[0]["config-errors"])
    assert _ids(node, kind) == before


@pytest.mark.parametrize("name,kind,config", BAD, ids=[b[0] for b in BAD])
def test_forced_upload_is_stored_invalid(node: EmulatorNode, name: str, kind: str,
                                         config: dict) -> None:
    _ready(node)
    # An existing id would make a forced POST answer 409 and store nothing: each case names
    # a new one, so the case cannot pass without storing anything.
    assert config["_id"] not in _ids(node, kind), name
    status, body = node.api("POST", f"/{kind}?force=true", [config])
    assert status == 201, body
    runtime = node.api("GET", f"/{kind}/{node.quote(config['_id'])}")[1]["runtime"]
    assert runtime["is-valid-config"] is False and runtime["config-errors"], name


def test_put_config_is_refused_unless_forced(node: EmulatorNode) -> None:
    _ready(node)
    good = _pipe("existing")
    bad = _pipe("existing", source={**JSON_SOURCE, "system": "ghost"})
    assert node.api("PUT", "/pipes/existing/config", bad)[0] == 400
    assert node.api("GET", "/pipes/existing/config")[1] == good
    assert node.api("PUT", "/systems/web/config", {"_id": "web", "type": "system:url"})[0] == 400
    assert node.api("GET", "/systems/web/config")[1] == URL
    assert node.api("PUT", "/pipes/existing/config?force=true", bad)[0] == 200
    assert node.api("GET", "/pipes/existing")[1]["runtime"]["is-valid-config"] is False


def test_bulk_with_one_bad_item_is_refused_whole(node: EmulatorNode) -> None:
    _ready(node)
    pipes = [_pipe(f"ok{i}") for i in range(3)] + [_pipe("bad", source={**JSON_SOURCE, "system": "ghost"})]
    status, body = node.api("POST", "/pipes", pipes)
    assert status == 400
    assert [e["posted-config"]["_id"] for e in body["validation_errors"]] == ["bad"]
    assert _ids(node, "pipes") == ["existing"]


def test_valid_configs_naming_systems_everywhere_are_accepted(node: EmulatorNode) -> None:
    _ready(node)
    pipe = _pipe("fine", source={"type": "conditional", "condition": "$ENV(host)",
                                 "alternatives": {"h": JSON_SOURCE}},
                 transform=[{"type": "http", "system": "web", "url": "x"},
                            {"type": "rest", "system": "api"}],
                 sink={"type": "json", "system": "web", "url": "out"})
    assert node.api("POST", "/pipes", [pipe])[0] == 201
    assert node.api("GET", "/pipes/fine")[1]["runtime"]["is-valid-config"] is True


@pytest.mark.parametrize("change", ["delete env", "delete system", "delete secret"])
def test_later_change_turns_stored_components_invalid(node: EmulatorNode, change: str) -> None:
    node.seed(env={"host": "h"}, secrets={"tok": "x"},
              systems=[{**URL, "url_pattern": "http://$ENV(host)/%s", "jwt_token": "$SECRET(tok)"}],
              pipes=[_pipe("p", source=JSON_SOURCE)])
    assert node.api("GET", "/pipes/p")[1]["runtime"]["is-valid-config"] is True
    path, kind, cid = {"delete env": ("/env/host", "systems", "web"),
                       "delete system": ("/systems/web", "pipes", "p"),
                       "delete secret": ("/secrets/tok", "systems", "web")}[change]
    assert node.api("DELETE", path)[0] == 200
    runtime = node.api("GET", f"/{kind}/{cid}")[1]["runtime"]
    assert runtime["is-valid-config"] is False and runtime["config-errors"]


def test_system_local_secret_satisfies_secret_reference(node: EmulatorNode) -> None:
    node.seed(systems=[URL])
    node.store.system_secrets["w2"] = {"own": "x"}   # set through /systems/{id}/secrets on a node
    system = {**URL, "_id": "w2", "jwt_token": "$SECRET(own)"}
    assert node.api("POST", "/systems", [system])[0] == 201
    assert node.api("POST", "/systems", [{**system, "_id": "w3"}])[0] == 400


def test_sesamclient_shows_the_nodes_messages(node: EmulatorNode) -> None:
    _ready(node)
    conn = sesamclient.Connection(sesamapi_base_url=node.api_url + "/", jwt_auth_token=node.token(),
                                  timeout=30)
    with pytest.raises(ConfigUploadFailed, match="unknown system 'ghost'") as caught:
        conn.add_pipes([_pipe("bad", source={**JSON_SOURCE, "system": "ghost"})])
    errors = caught.value.parsed_response["validation_errors"]
    assert errors[0]["posted-config"]["_id"] == "bad"
    assert conn.get_pipe("bad") is None
    pipes = conn.add_pipes([_pipe("bad", source={**JSON_SOURCE, "system": "ghost"})], force=True)
    assert pipes[0].runtime["is-valid-config"] is False


def test_a_secret_is_refused_in_a_pipe_even_when_it_exists(node: EmulatorNode) -> None:
    _ready(node)
    assert node.api("POST", "/secrets", {"tok": "value-of-tok"})[0] == 200
    pipe = _pipe("p", source={**JSON_SOURCE, "headers": {"Authorization": "$SECRET(tok)"}})
    status, body = node.api("POST", "/pipes", [pipe])
    assert status == 400
    (refused,) = body["validation_errors"]
    assert any("system configs" in e["msg"] for e in refused["config-errors"])
    assert "value-of-tok" not in str(body)
    # in a system it is fine
    assert node.api("POST", "/systems", [{**URL, "_id": "w2", "jwt_token": "$SECRET(tok)"}])[0] == 201
