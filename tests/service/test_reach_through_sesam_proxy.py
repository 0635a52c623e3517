"""Issue 14, point 2: reached through Sesam's proxy (`<node>/api/systems/<id>/proxy/...`),
where `Authorization` carries the node's own JWT, the service takes its API_TOKEN in
`X-Orchestrator-Token`; /status and the page stay open (they hold no secret).

The first tests drive the Flask app directly; the last ones reach the real service process
through an emulated master's proxy (emulator/proxy.py), as the README's curl examples do."""
from __future__ import annotations

import re
import time
from typing import Iterator
from urllib.parse import urljoin

import pytest
import requests

from conftest import JWT_SECRET
from emulator import EmulatorNode
from orchestration import environ
from service_process import Service, start_service, stop_service
from stand_in_run import API_TOKEN, MASTER_TOKEN, make

# One worker runs this file: its module fixture (a process, nodes) starts once, not once per
# worker (pytest.ini: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("reach_through_sesam_proxy")

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


# --- through an emulated node's proxy, to the real service process ---

MICROSERVICE = {"_id": "orchestrator-microservice", "type": "system:microservice",
                "docker": {"image": "registry.example.com/acme/sesam-orchestrator:2.0.0",
                           "port": 5000}}
PROXIED_TOKEN = "proxied-api-token-0123456789"


class Proxied:
    """The README's `$NODE` (the master's proxy path for the service) and its headers."""

    def __init__(self, master: EmulatorNode, service: Service) -> None:
        self.master, self.service = master, service
        self.node = f"{master.api_url}/systems/{MICROSERVICE['_id']}/proxy"
        self.jwt = {"Authorization": f"Bearer {master.token()}"}
        self.api = {**self.jwt, "X-Orchestrator-Token": PROXIED_TOKEN}

    def get(self, path: str, headers: dict[str, str]) -> requests.Response:
        return requests.get(self.node + path, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def proxied() -> Iterator[Proxied]:
    master, s1 = (EmulatorNode(jwt_secret=JWT_SECRET).start() for _ in range(2))
    master.seed(systems=[MICROSERVICE, {"_id": "crm", "type": "system:url",
                                        "base_url": "http://crm.invalid/"}],
                pipes=[{"_id": "crm-person", "type": "pipe",
                        "source": {"type": "json", "system": "crm", "url": "person"}}])
    service = start_service(environ(master, {"s1": (s1, ["crm"])}, UPDATE_INTERVAL="3600",
                                    API_TOKEN=PROXIED_TOKEN))
    try:
        master.register_container(MICROSERVICE["_id"], service.url)
        through = Proxied(master, service)
        deadline = time.monotonic() + 15            # the schedule's first run, a moment in
        while not through.get("/status", through.jwt).json()["history"]:
            assert time.monotonic() < deadline, service.log()
            time.sleep(0.1)
        yield through
    finally:
        stop_service(service)
        master.stop()
        s1.stop()


def test_status_and_the_page_through_the_proxy_with_the_node_s_jwt_alone(proxied):
    status = proxied.get("/status", proxied.jwt)
    assert status.status_code == 200 and status.json()["history"][-1]["outcome"] == "ok"
    page = proxied.get("/page", proxied.jwt)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    # The page's links are relative: followed from the proxy path, they stay under it.
    links = re.findall(r'href="([^"#]+)"', page.text)
    assert "status" in links and any(link.startswith("runs/") for link in links)
    for link in links:
        url = urljoin(proxied.node + "/page", link)
        assert url.startswith(proxied.node + "/")
        assert requests.get(url, headers=proxied.jwt, timeout=30).status_code == 200, link
    for answer in (status, page):
        assert PROXIED_TOKEN not in answer.text
        assert proxied.jwt["Authorization"][7:] not in answer.text


def test_plan_and_sync_through_the_proxy_with_x_orchestrator_token(proxied):
    refused = proxied.get("/plan", proxied.jwt)
    assert refused.status_code == 401
    assert "X-Orchestrator-Token: <API_TOKEN>" in refused.json()["error"]
    plan = proxied.get("/plan", proxied.api)
    assert plan.status_code == 200 and plan.json()["dry_run"] is True
    synced = requests.post(proxied.node + "/sync", headers=proxied.api, timeout=30)
    assert synced.status_code == 200 and synced.json()["outcome"] == "ok"
    # The service sees the node as its caller: the proxy passes on no X-Forwarded-For.
    assert re.search(r"POST /sync asked by 127\.0\.0\.1$", proxied.service.log(), re.MULTILINE)


def test_without_the_node_s_jwt_the_node_answers_and_the_service_is_not_reached(proxied):
    before = proxied.service.log().count("GET /plan asked by")
    answer = proxied.get("/plan", {"X-Orchestrator-Token": PROXIED_TOKEN})
    assert answer.status_code == 401 and "token" in answer.json()["message"]
    assert proxied.service.log().count("GET /plan asked by") == before
