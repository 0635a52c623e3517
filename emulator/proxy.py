"""`/api/systems/{system_id}/proxy/{rest_of_path}`: a node passes a request through to a
microservice system's container and returns its answer (swagger operations
`_not_in_use_microservice_proxy_get/post/put/patch/delete`;
hub/documentation/service-configuration/systems/configuration-systems-microservice.rst,
"Microservice APIs").

The emulator runs no Docker image, so a test registers where a system's container listens
(`Containers.register`, `POST /_emulator/containers`). What the docs leave open is read
strictly (docs/emulator.md): only a `system:microservice` proxies, a non-empty
`rest_of_path`, the five methods the swagger lists, no `X-Forwarded-*` added or passed on, and
`Authorization` passed on as received (the caller's node JWT reaches the container).
"""
from __future__ import annotations

import http.client
import re
import threading
import urllib.parse
from dataclasses import dataclass

from .store import ApiError, Store

PATH = re.compile(r"^/systems/([^/]+)/proxy/(.*)$")
TIMEOUT = 30.0        # seconds the node waits for the container before answering 504
# Hop-by-hop headers (RFC 9110, 7.6.1) and the ones the node sets itself: never passed on.
_NOT_PASSED = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                         "te", "trailer", "trailers", "transfer-encoding", "upgrade", "host",
                         "content-length"})


def _forwarding(header: str) -> bool:
    # Who called is not told to the container: it sees the node as its caller.
    return header.startswith("x-forwarded-") or header == "forwarded"


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    content_type: str


class Containers:
    """system id -> base URL (`http://127.0.0.1:PORT`) of its running container."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._urls: dict[str, str] = {}

    def register(self, mapping: object) -> dict[str, str]:
        if not isinstance(mapping, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
            raise ValueError("containers must be a JSON object of system id -> URL")
        for sid, url in mapping.items():
            parts = urllib.parse.urlsplit(url)
            if parts.scheme != "http" or parts.hostname != "127.0.0.1" \
                    or parts.path not in ("", "/"):
                raise ValueError(f"container of {sid!r}: only http://127.0.0.1:PORT (loopback)")
        with self._lock:
            self._urls.update(mapping)
            return dict(self._urls)

    def url(self, system_id: str) -> str | None:
        with self._lock:
            return self._urls.get(system_id)

    def clear(self) -> None:
        with self._lock:
            self._urls.clear()


def forward(store: Store, containers: Containers, *, method: str, system_id: str, rest: str,
            query: str, headers: list[tuple[str, str]], body: bytes) -> Answer:
    """The container's answer, as the node passes it back; ApiError when there is none."""
    with store.lock:
        system = store.systems.get(system_id)
    if system is None:
        raise ApiError(404, "no system with that id")
    if system.get("type") != "system:microservice":
        raise ApiError(404, "the proxy is only for microservice systems")
    if not rest:
        raise ApiError(404, "rest_of_path is required")
    base = containers.url(system_id)
    if base is None:
        raise ApiError(503, "the microservice is not running")
    target = urllib.parse.urlsplit(base)
    sent = [(k, v) for k, v in headers
            if k.lower() not in _NOT_PASSED and not _forwarding(k.lower())]
    path = "/" + rest + (f"?{query}" if query else "")
    conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port,
                                      timeout=TIMEOUT)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in sent:
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        answer = conn.getresponse()
        data = answer.read()
    except TimeoutError:
        raise ApiError(504, "the microservice did not answer in time") from None
    except OSError:
        raise ApiError(502, "the microservice could not be reached") from None
    finally:
        conn.close()
    back = [(k, v) for k, v in answer.getheaders()
            if k.lower() not in _NOT_PASSED and k.lower() != "content-type"]
    return Answer(status=answer.status, reason=answer.reason, headers=back, body=data,
                  content_type=answer.getheader("Content-Type", "application/octet-stream"))
