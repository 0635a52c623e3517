"""Issue 13, point 7: cross-site requests. With API_TOKEN unset (the default), any page the
operator visits could post a form to /sync and start a reconciliation. POST /sync now needs
what a form cannot send (a JSON body, an X-Requested-With or an Authorization header), and
an Origin, when the browser sends one, that names this very host; anything else is a 403
with one line of JSON and starts nothing."""
from __future__ import annotations

import json

import pytest

from service.web.app import create_app
from service.config import load_config
from service.report import Report
from service.web.runner import Runner

API_TOKEN = "service-api-token-0123456789"
HOST = "orchestrator.internal:5000"


def _config(api_token: str | None = None):
    node = {"jwt_token": "a.b.c"}
    env = {"MASTER_NODE": json.dumps({"_id": "master", "endpoint": "http://127.0.0.1:9/",
                                      **node}),
           "SLAVE_NODES": json.dumps([{"_id": "s1", "endpoint": "http://127.0.0.1:10/",
                                       "managed_systems": ["crm"], **node}])}
    if api_token:
        env["API_TOKEN"] = api_token
    return load_config(env)


@pytest.fixture
def service():
    runs: list[bool] = []

    def run(config, *, dry_run=False, progress=None):
        runs.append(dry_run)
        return Report(started="2024-01-01T00:00:00+00:00", outcome="ok", dry_run=dry_run)

    def client(api_token: str | None = None):
        config = _config(api_token)
        return create_app(config=config, runner=Runner(config=config, run=run)).test_client()
    return client, runs


FORGEABLE = {
    "form post from another site": dict(
        data={"go": "1"}, headers={"Origin": "https://evil.example"}),
    "form post without Origin (older browsers, some privacy settings)": dict(
        data={"go": "1"}),
    "text/plain post (what a form with enctype=text/plain sends)": dict(
        data="{}", content_type="text/plain"),
    "multipart form": dict(data={"f": "x"}, content_type="multipart/form-data"),
    "JSON from another site": dict(json={}, headers={"Origin": "https://evil.example"}),
    "JSON from a sandboxed page (Origin: null)": dict(json={}, headers={"Origin": "null"}),
    "header from another port of the same host": dict(
        headers={"X-Requested-With": "x", "Origin": "http://orchestrator.internal:8080"}),
}


@pytest.mark.parametrize("kind", FORGEABLE)
def test_a_request_a_browser_could_be_made_to_send_is_refused(service, kind):
    client, runs = service
    answer = client().post("/sync", base_url=f"http://{HOST}", **FORGEABLE[kind])
    assert answer.status_code == 403
    body = answer.get_data(as_text=True)
    assert body.count("\n") == 1 and answer.get_json()["error"].startswith("403 Forbidden: ")
    assert runs == []                          # no reconciliation was started


ALLOWED = {
    "JSON body, no Origin (a script)": dict(json={}),
    "X-Requested-With header (curl)": dict(headers={"X-Requested-With": "curl"}),
    "JSON from the service's own page": dict(json={}, headers={"Origin": f"http://{HOST}"}),
}


@pytest.mark.parametrize("kind", ALLOWED)
def test_a_request_only_a_script_or_the_same_site_can_send_runs(service, kind):
    client, runs = service
    answer = client().post("/sync", base_url=f"http://{HOST}", **ALLOWED[kind])
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert runs == [False]


def test_with_api_token_the_bearer_header_suffices_and_a_foreign_origin_is_still_refused(service):
    client, runs = service
    app = client(API_TOKEN)
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    assert app.post("/sync", base_url=f"http://{HOST}", headers=auth).status_code == 200
    foreign = app.post("/sync", base_url=f"http://{HOST}",
                       headers={**auth, "Origin": "https://evil.example"})
    assert foreign.status_code == 403
    assert app.post("/sync", base_url=f"http://{HOST}", data={"go": "1"}).status_code == 401
    assert runs == [False]
