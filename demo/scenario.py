"""The demo's data: what the on-premise systems hold and what the master is loaded with.

Shaped after the README's example: master `m1` (jwt_secret_key `foo`), slave `s1` managing
`my-oracle-system` (key `bar`), slave `s2` managing `my-url-system` (key `baz`). The
emulator reads only JSON over HTTP, so the "Oracle" system is a `system:url` in front of the
stand-in too; what matters to the orchestrator is which system a pipe names.
"""
from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MASTER_ID = "m1"
# slave id -> (managed systems, jwt_secret_key), as in the README's example.
SLAVES = {"s1": (["my-oracle-system"], "bar"), "s2": (["my-url-system"], "baz")}
MASTER_SECRET_KEY = "foo"

# What the on-premise systems hold: path under the stand-in -> entities.
ONPREM_DATA: dict[str, list[dict]] = {
    "oracle/customers": [
        {"_id": "c1", "name": "Aker Fisk AS", "country": "NO"},
        {"_id": "c2", "name": "Bergen Bakeri", "country": "NO"},
        {"_id": "c3", "name": "Göteborg Verkstad AB", "country": "SE"},
    ],
    "oracle/orders": [
        {"_id": "o1", "customer": "c1", "total": 1200},
        {"_id": "o2", "customer": "c1", "total": 80},
        {"_id": "o3", "customer": "c2", "total": 455},
        {"_id": "o4", "customer": "c3", "total": 3100},
    ],
    "crm/contacts": [
        {"_id": "p1", "name": "Kari Nordmann", "customer": "c1"},
        {"_id": "p2", "name": "Ola Nordmann", "customer": "c2"},
    ],
}

ENV_NAMES = ("oracle-base-url", "crm-base-url", "company")
SECRET_NAMES = (MASTER_SECRET_KEY, *(key for _, key in SLAVES.values()), "oracle-password")


def master_env(onprem_url: str) -> dict[str, str]:
    return {"oracle-base-url": onprem_url + "/oracle",
            "crm-base-url": onprem_url + "/crm",
            "company": "Demo AS"}


def master_systems() -> list[dict]:
    return [
        {"_id": "my-oracle-system", "type": "system:url",
         "name": "The ERP database, reachable from s1's network only",
         "base_url": "$ENV(oracle-base-url)",
         "authentication": "basic", "username": "sesam",
         "password": "$SECRET(oracle-password)"},
        {"_id": "my-url-system", "type": "system:url",
         "name": "The CRM's REST API, reachable from s2's network only",
         "url_pattern": "$ENV(crm-base-url)/%s"},
    ]


def master_pipes() -> list[dict]:
    return [
        # Inbound, sink dataset named after the pipe (the default).
        {"_id": "oracle-customers", "type": "pipe",
         "source": {"type": "json", "system": "my-oracle-system", "url": "customers"}},
        # Inbound, sink dataset named unlike the pipe.
        {"_id": "oracle-orders", "type": "pipe",
         "source": {"type": "json", "system": "my-oracle-system", "url": "orders"},
         "sink": {"type": "dataset", "dataset": "orders"}},
        # Inbound on the other slave.
        {"_id": "crm-contacts", "type": "pipe",
         "source": {"type": "json", "system": "my-url-system", "url": "contacts"}},
        # Touches no managed system: stays in the master, reads a synchronised dataset.
        {"_id": "customer-summary", "type": "pipe",
         "source": {"type": "dataset", "dataset": "oracle-customers"}},
        # Outbound: a master dataset to the CRM, which only s2 can reach.
        {"_id": "crm-customer-export", "type": "pipe",
         "source": {"type": "dataset", "dataset": "customer-summary"},
         "sink": {"type": "json", "system": "my-url-system", "url": "customers"}},
    ]


class OnPremise:
    """A tiny HTTP server standing in for the on-premise systems.

    `GET /oracle/customers` answers the JSON array in ONPREM_DATA; anything else is 404.
    `POST /crm/customers` takes a JSON array of entities (what an outbound pipe's JSON push
    sink sends) and counts them. It counts what it served and received, so the demo can show
    that the slaves (not the master) talk to it.
    """

    def __init__(self, data: dict[str, list[dict]]) -> None:
        served: dict[str, int] = {}
        received: dict[str, int] = {}
        self.served, self.received = served, received

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = urllib.parse.urlsplit(self.path).path.strip("/")
                status, body = (200, data[path]) if path in data else (404, {"error": "not found"})
                if status == 200:
                    served[path] = served.get(path, 0) + 1
                raw = json.dumps(body).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                path = urllib.parse.urlsplit(self.path).path.strip("/")
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                received[path] = received.get(path, 0) + (len(body) if isinstance(body, list) else 0)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "OnPremise":
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True, name="onprem-stand-in")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()
