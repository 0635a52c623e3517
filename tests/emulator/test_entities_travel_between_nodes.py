"""Entities travel from node A's dataset to node B's over HTTP, as a sync pipe moves them."""
from __future__ import annotations

from emulator import EmulatorNode


def _entities(node: EmulatorNode, dataset: str) -> list[dict]:
    status, body = node.api("GET", f"/datasets/{dataset}/entities?history=false")
    assert status == 200
    return body


def test_entities_move_with_jwt_and_since(nodes) -> None:
    a, b = nodes(), nodes()
    a.seed(pipes=[{"_id": "people", "type": "pipe",
                   "source": {"type": "embedded", "entities": [{"_id": "1"}, {"_id": "2"}]}}])
    assert a.run_pipe("people")["runtime"]["success"] is True
    b.seed(secrets={"a-token": a.token()},
           systems=[{"_id": "a", "type": "system:url", "authentication": "jwt",
                     "jwt_token": "$SECRET(a-token)",
                     "url_pattern": a.api_url + "/datasets/%s/entities?history=false"}],
           pipes=[{"_id": "people", "type": "pipe",
                   "source": {"type": "json", "system": "a", "url": "people",
                              "supports_since": True, "is_chronological": True}}])
    pump = b.run_pipe("people")
    assert pump["runtime"]["success"] is True, pump
    assert [e["_id"] for e in _entities(b, "people")] == ["1", "2"]
    assert pump["runtime"]["last-seen"] == "1"

    # A new entity in A: the second run asks only for what came after last-seen.
    a.api("PUT", "/pipes/people/config", {"_id": "people", "type": "pipe", "source": {
        "type": "embedded", "entities": [{"_id": "1"}, {"_id": "2"}, {"_id": "3", "x": 1}]}})
    a.run_pipe("people")
    a.clear_requests()
    pump = b.run_pipe("people")
    assert pump["runtime"]["progress"]["processed"] == 1
    assert [e["_id"] for e in _entities(b, "people")] == ["1", "2", "3"]
    (request,) = a.requests()
    assert request["path"] == "/api/datasets/people/entities"
    assert request["query"] == "history=false&since=1" and request["status"] == 200

    # Resetting last-seen makes the next run read everything again (no new versions though).
    b.api("POST", "/pipes/people/pump", {"operation": "update-last-seen", "last-seen": ""})
    pump = b.run_pipe("people")
    assert pump["runtime"]["progress"]["processed"] == 3
    assert len(b.api("GET", "/datasets/people/entities")[1]) == 3


def test_wrong_secret_fails_the_run(nodes) -> None:
    a, b = nodes(), nodes()
    a.seed(pipes=[{"_id": "d", "type": "pipe"}])
    b.seed(secrets={"a-token": "not-a-valid-token"},
           systems=[{"_id": "a", "type": "system:url", "jwt_token": "$SECRET(a-token)",
                     "url_pattern": a.api_url + "/datasets/%s/entities"}],
           pipes=[{"_id": "d", "type": "pipe", "source": {"type": "json", "system": "a", "url": "d"}}])
    pump = b.run_pipe("d")
    assert pump["runtime"]["success"] is False
    assert "401" in pump["runtime"]["last-error"]
    assert "not-a-valid-token" not in str(pump)


def test_unsupported_source_fails_with_clear_error(node: EmulatorNode) -> None:
    node.seed(systems=[{"_id": "db", "type": "system:mssql"}],
              pipes=[{"_id": "t", "type": "pipe", "source": {"type": "sql", "system": "db"},
                      "pump": {"mode": "manual"}}])
    assert node.api("GET", "/pipes/t")[1]["config"]["effective"]["pump"] == {"mode": "manual"}
    pump = node.run_pipe("t")
    assert pump["runtime"]["success"] is False and "sql" in pump["runtime"]["last-error"]


def test_dataset_sink_only_appends_changes(node: EmulatorNode) -> None:
    node.seed(pipes=[{"_id": "p", "type": "pipe",
                      "source": {"type": "embedded", "entities": [{"_id": "1", "v": 1}]}}])
    node.run_pipe("p")
    node.run_pipe("p")
    assert len(node.api("GET", "/datasets/p/entities")[1]) == 1
    node.api("DELETE", "/pipes/p")
    assert node.api("GET", "/datasets/p")[0] == 200      # a pipe's dataset outlives it
    assert node.api("DELETE", "/datasets/p")[0] == 200
    assert node.api("GET", "/datasets/p")[0] == 404


def test_json_sink_posts_the_entities_to_the_system(nodes) -> None:
    """Sesam's JSON push sink: the pipe POSTs its entities as a JSON array to the system's
    url (a small local HTTP server stands in for the receiving system)."""
    import http.server
    import json
    import threading

    received: list[object] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers.get("Authorization"), json.loads(body)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        node = nodes()
        node.seed(secrets={"crm-token": "t0ken"}, systems=[{
            "_id": "crm", "type": "system:url", "authentication": "jwt",
            "jwt_token": "$SECRET(crm-token)",
            "url_pattern": f"http://127.0.0.1:{server.server_port}/in/%s"}],
            pipes=[{"_id": "people", "type": "pipe", "source": {
                "type": "embedded", "entities": [{"_id": "a"}, {"_id": "b"}]}},
                {"_id": "out", "type": "pipe", "source": {"type": "dataset", "dataset": "people"},
                 "sink": {"type": "json", "system": "crm", "url": "persons"}}])
        node.run_pipe("people")
        pump = node.run_pipe("out")
        assert pump["runtime"]["success"] is True
        assert received == [("/in/persons", "Bearer t0ken",
                             [{"_id": "a", "_deleted": False}, {"_id": "b", "_deleted": False}])]
        assert "out" not in {d["_id"] for d in node.api("GET", "/datasets")[1]}
        again = node.run_pipe("out")
        assert again["runtime"]["success"] is True and len(received) == 1   # since: nothing new
    finally:
        server.shutdown()
        server.server_close()
