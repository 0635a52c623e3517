"""Tokens as Sesam issues them, and a node that lets only group:Admin write."""
from __future__ import annotations

import http.client
import json

import pytest
import sesamclient

from emulator import EmulatorNode

PIPE = {"_id": "p1", "type": "pipe", "source": {"type": "embedded", "entities": [{"_id": "a"}]}}


def test_principals_as_a_mapping_count_only_this_nodes_subscription(nodes) -> None:
    node = nodes(subscription_id="sub-1")
    mine = node.token(principals={"sub-1": ["group:Admin"]})
    other = node.token(principals={"sub-2": ["group:Admin"]})
    listed = node.token(principals=["group:Admin"])
    assert node.api("GET", "/env", token=mine)[0] == 200
    assert node.api("GET", "/env", token=listed)[0] == 200
    assert node.api("GET", "/env", token=other)[0] == 403
    assert node.api("GET", "/pipes", token=other)[0] == 200     # a valid token still reads


def _raw_put(node: EmulatorNode, token: str) -> tuple[int, str, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10)
    try:
        conn.request("PUT", "/api/pipes/p1/config", body=json.dumps({**PIPE, "x": 1}),
                     headers={"Authorization": "Bearer " + token,
                              "Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type"), json.loads(resp.read())
    finally:
        conn.close()


def test_admin_writes_only_refuses_plain_writes_with_a_problem_document(nodes) -> None:
    node = nodes(admin_writes_only=True)
    node.seed(pipes=[PIPE])
    plain = node.token(admin=False)
    status, ctype, body = _raw_put(node, plain)
    assert (status, ctype) == (403, "application/problem+json")
    assert body["title"] == "Forbidden" and body["status"] == 403
    assert "PUT /pipes/p1/config" in body["detail"] and plain not in json.dumps(body)
    assert node.store.pipes["p1"].original == PIPE                 # nothing changed
    for method, path, payload in [("POST", "/pipes", [{"_id": "p2", "type": "pipe"}]),
                                  ("DELETE", "/pipes/p1", None),
                                  ("POST", "/pipes/p1/pump", {"operation": "start"}),
                                  ("DELETE", "/datasets/p1", None)]:
        assert node.api(method, path, payload, token=plain)[0] == 403, (method, path)
    assert set(node.store.pipes) == {"p1"} and node.store.datasets == {}
    assert node.api("GET", "/pipes/p1", token=plain)[0] == 200      # reads are not writes
    assert node.api("PUT", "/pipes/p1/config", {**PIPE, "x": 1})[0] == 200   # admin writes


def test_without_the_rule_a_plain_token_may_write_config(node: EmulatorNode) -> None:
    node.seed(pipes=[PIPE])
    assert _raw_put(node, node.token(admin=False))[0] == 200


def test_sesamclient_sees_forbidden(nodes) -> None:
    node = nodes(admin_writes_only=True)
    node.seed(pipes=[PIPE])
    conn = sesamclient.Connection(sesamapi_base_url=node.api_url + "/",
                                  jwt_auth_token=node.token(admin=False), timeout=10)
    with pytest.raises(sesamclient.exceptions.ForbiddenException, match="403"):
        conn.get_pipe("p1").modify({**PIPE, "x": 2})
