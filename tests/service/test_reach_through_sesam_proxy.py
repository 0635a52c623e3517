"""Issue 14, point 2: reached through Sesam's proxy (`<node>/api/systems/<id>/proxy/...`),
where `Authorization` carries the node's own JWT, the service takes its API_TOKEN in
`X-Orchestrator-Token`; /status and the page stay open (they hold no secret)."""
from __future__ import annotations

import pytest

from stand_in_run import API_TOKEN, MASTER_TOKEN, make

NODE_JWT = f"Bearer {MASTER_TOKEN}"      # what the node's proxy sends on


def _client(**kw):
    client, runner, fake = make(**kw)
    # Only what each test sends: no X-Requested-With by default here.
    client.environ_base.pop("HTTP_X_REQUESTED_WITH")
    return client, runner, fake


def test_sync_with_the_token_in_its_own_header_beside_the_node_s_jwt():
    client, _, fake = _client(api_token=API_TOKEN)
    answer = client.post("/sync", headers={"Authorization": NODE_JWT,
                                           "X-Orchestrator-Token": API_TOKEN})
    assert answer.status_code == 200, answer.json
    assert fake.calls == [{"dry_run": False}]


def test_plan_with_the_token_in_its_own_header():
    client, _, fake = _client(api_token=API_TOKEN)
    answer = client.get("/plan", headers={"X-Orchestrator-Token": API_TOKEN})
    assert answer.status_code == 200 and fake.calls == [{"dry_run": True}]


@pytest.mark.parametrize("headers", [
    {"Authorization": NODE_JWT},
    {"Authorization": NODE_JWT, "X-Orchestrator-Token": API_TOKEN + "x"},
    {"X-Orchestrator-Token": ""},
    {"X-Orchestrator-Token": f"Bearer {API_TOKEN}"}])
def test_without_the_right_token_nothing_runs(headers):
    client, _, fake = _client(api_token=API_TOKEN)
    for answer in (client.post("/sync", headers=headers), client.get("/plan", headers=headers)):
        assert answer.status_code == 401
        assert "X-Orchestrator-Token: <API_TOKEN>" in answer.json["error"]
        assert API_TOKEN not in answer.text
    assert fake.calls == []


def test_bearer_still_works():
    client, _, fake = _client(api_token=API_TOKEN)
    assert client.post("/sync", headers={"Authorization": f"Bearer {API_TOKEN}"}).status_code \
        == 200
    assert fake.calls == [{"dry_run": False}]


def test_the_header_alone_shows_a_script_not_a_cross_site_form():
    # A browser form cannot set a custom header, so it counts like X-Requested-With.
    client, _, fake = _client()
    assert client.post("/sync").status_code == 403
    assert client.post("/sync", headers={"X-Orchestrator-Token": "anything"}).status_code == 200
    assert fake.calls == [{"dry_run": False}]


def test_a_foreign_origin_is_refused_even_with_the_token():
    client, _, fake = _client(api_token=API_TOKEN)
    answer = client.post("/sync", headers={"X-Orchestrator-Token": API_TOKEN,
                                           "Origin": "https://evil.example"})
    assert answer.status_code == 403 and fake.calls == []


def test_status_and_the_page_stay_open_and_hold_no_token():
    client, _, _ = _client(api_token=API_TOKEN)
    for path in ("/status", "/", "/health", "/metrics"):
        answer = client.get(path, headers={"Authorization": NODE_JWT})
        assert answer.status_code == 200, path
        assert API_TOKEN not in answer.text and MASTER_TOKEN not in answer.text
