"""System-local secrets (/systems/{id}/secrets): names out, values in, gone with the system."""
from __future__ import annotations

import json

import sesamclient

from emulator import EmulatorNode

SYSTEM = {"_id": "crm", "type": "system:url", "url_pattern": "http://127.0.0.1:9/%s"}


def _names(node: EmulatorNode, sid: str = "crm") -> list[str]:
    status, body = node.api("GET", f"/systems/{sid}/secrets")
    assert status == 200, body
    return body


def test_put_replaces_post_merges_delete_removes_one(node: EmulatorNode) -> None:
    node.seed(systems=[SYSTEM])
    assert node.api("PUT", "/systems/crm/secrets", {"a": "va", "b": "vb"}) == (200, ["a", "b"])
    assert node.api("POST", "/systems/crm/secrets", {"c": "vc"})[0] == 200
    assert _names(node) == ["a", "b", "c"]
    assert node.api("PUT", "/systems/crm/secrets", {"z": "vz"})[0] == 200
    assert _names(node) == ["z"]
    assert node.api("DELETE", "/systems/crm/secrets/z")[0] == 200
    assert _names(node) == []
    assert node.api("DELETE", "/systems/crm/secrets/z")[0] == 404


def test_values_never_leave_the_node(node: EmulatorNode) -> None:
    node.seed(systems=[SYSTEM])
    node.api("PUT", "/systems/crm/secrets", {"pw": "very-secret-value"})
    answers = [node.api("GET", path)[1] for path in
               ("/systems/crm/secrets", "/systems/crm", "/systems", "/secrets", "/config")]
    assert "very-secret-value" not in json.dumps(answers)
    assert node.store.system_secrets == {"crm": {"pw": "very-secret-value"}}
    assert node.store.secrets == {}            # local, not global


def test_unknown_system_bad_body_and_plain_token_are_refused(node: EmulatorNode) -> None:
    node.seed(systems=[SYSTEM])
    assert node.api("GET", "/systems/nope/secrets")[0] == 404
    assert node.api("PUT", "/systems/nope/secrets", {"a": "v"})[0] == 404
    assert node.api("PUT", "/systems/crm/secrets", {"a": 1})[0] == 400
    assert node.api("PUT", "/systems/crm/secrets", ["a"])[0] == 400
    plain = node.token(admin=False)
    assert node.api("GET", "/systems/crm/secrets", token=plain)[0] == 403
    assert node.api("POST", "/systems/crm/secrets", {"a": "v"}, token=plain)[0] == 403
    assert node.store.system_secrets.get("crm", {}) == {}


def test_deleting_the_system_deletes_its_secrets(node: EmulatorNode) -> None:
    node.seed(systems=[SYSTEM])
    node.api("PUT", "/systems/crm/secrets", {"pw": "v"})
    assert node.api("DELETE", "/systems/crm")[0] == 200
    node.seed(systems=[SYSTEM])
    assert _names(node) == []
    # ...but replacing its config keeps them
    node.api("PUT", "/systems/crm/secrets", {"pw": "v"})
    changed = {**SYSTEM, "url_pattern": "http://x/%s"}
    assert node.api("PUT", "/systems/crm/config", changed)[0] == 200
    assert _names(node) == ["pw"]


def test_a_run_uses_the_local_secret_before_the_global_one(nodes) -> None:
    a, b = nodes(), nodes()
    a.seed(pipes=[{"_id": "d", "type": "pipe",
                   "source": {"type": "embedded", "entities": [{"_id": "1"}]}}])
    assert a.run_pipe("d")["runtime"]["success"] is True
    b.seed(secrets={"tok": "not-a-valid-token"},
           systems=[{"_id": "a", "type": "system:url", "jwt_token": "$SECRET(tok)",
                     "url_pattern": a.api_url + "/datasets/%s/entities"}],
           pipes=[{"_id": "d", "type": "pipe",
                   "source": {"type": "json", "system": "a", "url": "d"}}])
    pump = b.run_pipe("d")
    assert pump["runtime"]["success"] is False and "401" in pump["runtime"]["last-error"]
    b.api("POST", "/systems/a/secrets", {"tok": a.token()})
    pump = b.run_pipe("d")
    assert pump["runtime"]["success"] is True, pump["runtime"]["last-error"]


def test_sesamclient_drives_system_secrets(node: EmulatorNode) -> None:
    node.seed(systems=[SYSTEM])
    conn = sesamclient.Connection(sesamapi_base_url=node.api_url + "/",
                                  jwt_auth_token=node.token(), timeout=10)
    system = conn.get_system("crm")
    system.put_secrets({"x": "1", "y": "2"})
    system.post_secrets({"z": "3"})
    system.delete_secret("y")
    assert system.get_secrets() == ["x", "z"]
