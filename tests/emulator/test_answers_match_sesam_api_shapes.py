"""Every 2xx body the emulator sends has the shape Sesam's public API description gives it.

`sesam_response_shapes.json` holds those shapes: the JSON schema of each operation's 200
answer and the definitions they refer to, taken from Sesam's public OpenAPI (swagger)
description with its prose left out, so the test needs nothing outside this repository."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from emulator import EmulatorNode

SHAPES = json.loads((Path(__file__).parent / "sesam_response_shapes.json").read_text())
ODD = 'odd "id" 50%'   # odd but valid on a real node: no '/'



def _schema(path: str, method: str) -> dict:
    """The 200 schema of one operation, with the definitions its refs point into."""
    return {**SHAPES["responses"][f"{method.upper()} {path}"], "definitions": SHAPES["definitions"]}


def _seeded(node: EmulatorNode) -> None:
    node.seed(env={"host": "h"}, secrets={"k": "v"},
              systems=[{"_id": "s", "type": "system:url", "url_pattern": "http://$ENV(host)/%s"}],
              pipes=[{"_id": ODD, "type": "pipe",
                      "source": {"type": "embedded", "entities": [{"_id": "1"}]}}])
    # An invalid pipe, so the shape of a pipe with config errors is checked too.
    node.seed(force=True, pipes=[{"_id": "broken", "type": "pipe",
                                  "source": {"type": "json", "system": "nope", "url": "x"}}])
    assert node.run_pipe(ODD)["runtime"]["success"] is True   # runs are in the background


Q = EmulatorNode.quote(ODD)
PIPE = {"_id": ODD, "type": "pipe", "source": {"type": "embedded", "entities": []}}
# (swagger path, method, our request path, body, expected status)
CASES = [
    ("/pipes", "get", "/pipes", None, 200),
    ("/pipes", "post", "/pipes", [{"_id": "new", "type": "pipe"}], 201),
    ("/pipes/{pipe_id}", "get", f"/pipes/{Q}", None, 200),
    ("/pipes/{pipe_id}/config", "get", f"/pipes/{Q}/config", None, 200),
    ("/pipes/{pipe_id}/config", "put", f"/pipes/{Q}/config", PIPE, 200),
    ("/pipes/{pipe_id}/pump", "get", f"/pipes/{Q}/pump", None, 200),
    ("/pipes/{pipe_id}/pump", "post", f"/pipes/{Q}/pump", {"operation": "disable"}, 200),
    ("/systems", "get", "/systems", None, 200),
    ("/systems", "post", "/systems", [{"_id": "t", "type": "system:url", "url_pattern": "http://t/%s"}], 201),
    ("/systems/{system_id}", "get", "/systems/s", None, 200),
    ("/systems/{system_id}/config", "get", "/systems/s/config", None, 200),
    ("/systems/{system_id}/config", "put", "/systems/s/config", {"_id": "s", "type": "system:url", "url_pattern": "http://s/%s"}, 200),
    ("/datasets", "get", "/datasets", None, 200),
    ("/datasets/{dataset_id}", "get", f"/datasets/{Q}", None, 200),
    ("/datasets/{dataset_id}/entities", "get", f"/datasets/{Q}/entities?since=-1&limit=5", None, 200),
    ("/systems/{system_id}/secrets", "get", "/secrets", None, 200),  # same SecretKeys shape
]


@pytest.mark.parametrize("swagger_path,method,path,body,status", CASES,
                         ids=[f"{c[1]} {c[0]}" for c in CASES])
def test_response_matches_swagger(node: EmulatorNode, swagger_path: str, method: str, path: str,
                                  body: object, status: int) -> None:
    _seeded(node)
    got_status, got = node.api(method.upper(), path, body)
    assert got_status == status, got
    jsonschema.validate(got, _schema(swagger_path, method))


def test_pipe_with_config_errors_matches_swagger(node: EmulatorNode) -> None:
    _seeded(node)
    pipe = node.api("GET", "/pipes/broken")[1]
    assert pipe["runtime"]["config-errors"]
    jsonschema.validate(pipe, _schema("/pipes/{pipe_id}", "get"))


def test_swagger_schemas_catch_a_bad_body() -> None:
    # The check above is only worth something if a wrong shape fails it.
    with pytest.raises(jsonschema.ValidationError, match="is a required property"):
        jsonschema.validate([{"_id": "x"}], _schema("/datasets/{dataset_id}/entities", "get"))
