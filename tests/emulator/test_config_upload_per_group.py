"""GET/PUT /config and /config/{group}: a whole node's config in one upload, per group."""
from __future__ import annotations

import pytest
import sesamclient

from emulator import EmulatorNode

CRM = {"_id": "crm", "type": "system:url", "url_pattern": "http://127.0.0.1:9/%s"}
PERSON = {"_id": "person", "type": "pipe",
          "source": {"type": "embedded", "entities": [{"_id": "1"}]}}
ORDER = {"_id": "order", "type": "pipe",
         "source": {"type": "embedded", "entities": [{"_id": "o"}]}}
NODE_META = {"_id": "node", "type": "metadata", "task_manager": {"disable_pump_scheduler": True}}


def _conn(node: EmulatorNode) -> sesamclient.Connection:
    return sesamclient.Connection(sesamapi_base_url=node.api_url + "/",
                                  jwt_auth_token=node.token(), timeout=10)


def test_a_user_uploads_the_whole_master_with_sesamclient(node: EmulatorNode) -> None:
    conn = _conn(node)
    answer = conn.upload_config([NODE_META, CRM, PERSON, ORDER])   # multipart, as the CLI does
    assert answer == {"validation_errors": []}
    assert conn.get_config() == [NODE_META, CRM, ORDER, PERSON]
    assert node.api("GET", "/pipes/person/config") == (200, PERSON)
    assert node.api("GET", "/systems/crm/config") == (200, CRM)


def test_put_config_replaces_the_group_and_deletes_what_it_leaves_out(node: EmulatorNode) -> None:
    node.seed(systems=[CRM], pipes=[PERSON, ORDER])
    node.run_pipe("order")       # its dataset made (a pump runs in the background: wait for it)
    node.api("PUT", "/systems/crm/secrets", {"pw": "v"})
    changed = {**PERSON, "comment": "new"}
    assert node.api("PUT", "/config", [changed]) == (200, {"validation_errors": []})
    assert set(node.store.pipes) == {"person"} and node.store.systems == {}
    assert node.store.pipes["person"].original == changed
    assert "order" in node.store.datasets           # as DELETE /pipes/{id}: the dataset stays
    assert "crm" not in node.store.system_secrets   # its local secrets went with the system


def test_groups_are_separate_and_components_carry_their_group(node: EmulatorNode) -> None:
    node.seed(systems=[CRM], pipes=[PERSON])
    assert node.api("PUT", "/config/extra", [ORDER])[0] == 200
    tagged = {**ORDER, "metadata": {"$config-group": "extra"}}
    assert node.api("GET", "/config/extra") == (200, [tagged])
    assert node.api("GET", "/pipes/order/config") == (200, tagged)
    assert node.api("GET", "/config")[1] == [CRM, PERSON]
    # replacing the default group leaves the other group alone
    assert node.api("PUT", "/config", [CRM])[0] == 200
    assert set(node.store.pipes) == {"order"}
    # a component uploaded one by one joins the group its metadata names
    other = {**PERSON, "_id": "p2", "metadata": {"$config-group": "extra"}}
    node.seed(pipes=[other])
    assert [c["_id"] for c in node.api("GET", "/config/extra")[1]] == ["order", "p2"]


def test_an_upload_with_an_error_changes_nothing_unless_forced(node: EmulatorNode) -> None:
    node.seed(systems=[CRM], pipes=[PERSON])
    before = node.save_state()
    broken = {"_id": "b", "type": "pipe", "source": {"type": "json", "system": "nope", "url": "x"}}
    status, body = node.api("PUT", "/config", [CRM, broken])
    assert status == 400
    assert [e["config-entity-id"] for e in body["validation_errors"]] == ["b"]
    assert node.save_state() == before
    status, body = node.api("PUT", "/config?force=true", [CRM, broken])
    assert status == 200 and body["validation_errors"][0]["config-entity-id"] == "b"
    assert node.api("GET", "/pipes/b")[1]["runtime"]["is-valid-config"] is False
    assert "person" not in node.store.pipes


@pytest.mark.parametrize("upload, says", [
    ({"_id": "x", "type": "pipe"}, "JSON array"),
    ([{"_id": "x", "type": "pipe"}, {"_id": "x", "type": "pipe"}], "twice"),
    ([{"_id": "x", "type": "pipe", "metadata": {"$config-group": "g2"}}], "names config group"),
    ([{"type": "pipe"}], "string '_id'"),
])
def test_bad_uploads_are_refused_whole(node: EmulatorNode, upload: object, says: str) -> None:
    node.seed(systems=[CRM], pipes=[PERSON])
    before = node.save_state()
    status, body = node.api("PUT", "/config", upload)
    assert status == 400 and says in body["message"], body
    assert node.save_state() == before


def test_an_id_of_another_group_is_refused(node: EmulatorNode) -> None:
    node.api("PUT", "/config/extra", [ORDER])
    before = node.save_state()
    for upload in ([ORDER], [{"_id": "order", "type": "system:url", "url_pattern": "x/%s"}]):
        status, body = node.api("PUT", "/config", upload)
        assert status == 400 and "belongs to config group 'extra'" in body["message"], body
    assert node.save_state() == before


def test_a_pipe_may_become_a_system_within_the_group(node: EmulatorNode) -> None:
    node.seed(pipes=[{**ORDER, "_id": "crm"}])
    assert node.api("PUT", "/config", [CRM])[0] == 200
    assert set(node.store.systems) == {"crm"} and not node.store.pipes


def test_uploading_config_needs_admin_or_developer(node: EmulatorNode) -> None:
    assert node.api("PUT", "/config", [PERSON], token=node.token(admin=False))[0] == 403
    dev = node.token(principals=["group:Developer"])
    assert node.api("PUT", "/config", [PERSON], token=dev)[0] == 200
