"""The emulator's `/api/systems/{id}/proxy/{rest}`: a request passed through to a
microservice system's container and its answer passed back (docs/emulator.md, "The
microservice proxy"). The container here is a loopback HTTP server that echoes what it got."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest
import requests

from emulator import EmulatorNode
from service_process import free_port

SERVICE = {"_id": "orchestrator-microservice", "type": "system:microservice",
           "docker": {"image": "acme/sesam-orchestrator:2.0.0", "port": 5000}}


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict] = []       # what the container got; emptied by the fixture

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        got = {"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
               "body": self.rfile.read(length).decode()}
        Echo.seen.append(got)
        data = json.dumps(got).encode()
        self.send_response(201 if self.command == "POST" else 200, "Echoed")
        self.send_header("Content-Type", "application/json")
        self.send_header("X-From-Container", "yes")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _echo


@pytest.fixture
def container() -> Iterator[str]:
    Echo.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def node(nodes, container) -> EmulatorNode:
    node = nodes()
    node.seed(systems=[SERVICE, {"_id": "crm", "type": "system:url", "base_url": "http://x/"}])
    node.register_container(SERVICE["_id"], container)
    return node


def _proxy(node: EmulatorNode, system: str = SERVICE["_id"]) -> str:
    return f"{node.api_url}/systems/{system}/proxy"


def test_a_request_goes_through_with_its_headers_and_the_answer_comes_back(node):
    jwt = f"Bearer {node.token()}"
    answer = requests.post(_proxy(node) + "/sync?plan_id=p1", data=b'{"a": 1}', timeout=10,
                           headers={"Authorization": jwt, "X-Orchestrator-Token": "api",
                                    "Content-Type": "application/json",
                                    "X-Forwarded-For": "203.0.113.9"})
    assert (answer.status_code, answer.reason) == (201, "Echoed")
    assert answer.headers["X-From-Container"] == "yes"
    got = answer.json()
    assert (got["method"], got["path"], got["body"]) == ("POST", "/sync?plan_id=p1", '{"a": 1}')
    # The node JWT is passed on as received; who called is not.
    assert got["headers"]["Authorization"] == jwt
    assert got["headers"]["X-Orchestrator-Token"] == "api"
    assert "X-Forwarded-For" not in got["headers"]
    assert got["headers"]["Host"] != node.url.split("//")[1]


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_each_method_the_swagger_lists_goes_through(node, method):
    answer = requests.request(method, _proxy(node) + "/status", timeout=10,
                              headers={"Authorization": f"Bearer {node.token()}"})
    assert answer.status_code == 200 and answer.json()["method"] == method


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-jwt"},
                                     {"X-Orchestrator-Token": "api"}])
def test_without_the_node_s_jwt_nothing_reaches_the_container(node, headers):
    answer = requests.get(_proxy(node) + "/status", headers=headers, timeout=10)
    assert answer.status_code == 401 and Echo.seen == []


@pytest.mark.parametrize("system, path, status, says", [
    ("no-such", "/status", 404, "no system with that id"),
    ("crm", "/status", 404, "only for microservice systems"),
    (SERVICE["_id"], "/", 404, "rest_of_path is required")])
def test_only_a_microservice_and_a_path_are_proxied(node, system, path, status, says):
    answer = requests.get(_proxy(node, system) + path, timeout=10,
                          headers={"Authorization": f"Bearer {node.token()}"})
    assert answer.status_code == status and says in answer.json()["message"]
    assert Echo.seen == []


def test_a_microservice_not_running_or_not_listening(nodes):
    node = nodes()
    node.seed(systems=[SERVICE])
    auth = {"Authorization": f"Bearer {node.token()}"}
    answer = requests.get(_proxy(node) + "/status", headers=auth, timeout=10)
    assert answer.status_code == 503 and "not running" in answer.json()["message"]
    node.register_container(SERVICE["_id"], f"http://127.0.0.1:{free_port()}")
    answer = requests.get(_proxy(node) + "/status", headers=auth, timeout=10)
    assert answer.status_code == 502 and "could not be reached" in answer.json()["message"]


def test_writes_through_the_proxy_need_admin_where_the_node_says_so(nodes, container):
    node = nodes(admin_writes_only=True)
    node.seed(systems=[SERVICE])
    node.register_container(SERVICE["_id"], container)
    reader = {"Authorization": f"Bearer {node.token(admin=False)}"}
    assert requests.post(_proxy(node) + "/sync", headers=reader, timeout=10).status_code == 403
    assert requests.get(_proxy(node) + "/status", headers=reader, timeout=10).status_code == 200
    assert [s["method"] for s in Echo.seen] == ["GET"]


def test_a_container_is_registered_on_loopback_only(nodes):
    with pytest.raises(ValueError, match="only http://127.0.0.1:PORT"):
        nodes().register_container("svc", "http://example.com:5000")
