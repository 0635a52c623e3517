"""HTTP server: auth, faults, latency and the request log around the /api routes."""
from __future__ import annotations

import email.parser
import email.policy
import json
import logging
import re
import selectors
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import auth, proxy, threads
from .faults import Faults
from .routes import ROUTES, RawBody, RawJSON, Request
from .schedule import Scheduler
from .store import ApiError, Store

# A pump's operations endpoint (the id is one percent-encoded path segment).
_PUMP_PATH = re.compile(r"^/api/pipes/[^/]+/pump$")

log = logging.getLogger("emulator")
Observer = Callable[[str, str, int], None]


class NodeState:
    """Everything a request handler needs; one per node."""

    def __init__(self, *, jwt_secret: str, latency_ms: int, subscription_id: str,
                 admin_writes_only: bool = False) -> None:
        self.jwt_secret = jwt_secret
        self.latency_ms = latency_ms
        # The key a portal-issued token's `principals` mapping uses for this node.
        self.subscription_id = subscription_id
        # The per-node rule: writes need group:Admin (a node whose ACLs grant no one else).
        self.admin_writes_only = admin_writes_only
        self.store = Store()
        self.scheduler = Scheduler(self.store)
        self.faults = Faults()
        self.containers = proxy.Containers()    # where microservice systems listen (proxy.py)
        self.observers: list[Observer] = []
        self.requests: list[dict[str, Any]] = []
        self.log_lock = threading.Lock()

    def set_knobs(self, body: object) -> dict[str, Any]:
        """Change run knobs (RunKnobs field names); ValueError on an unknown name or a bad value."""
        if not isinstance(body, dict):
            raise ValueError("knobs must be a JSON object")
        knobs = self.store.knobs
        for name, value in body.items():
            if name not in vars(knobs):
                raise ValueError(f"unknown knob '{name}'")
            if not (value is None and name == "fail_after_batches") and \
                    (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ValueError(f"knob '{name}' must be a non-negative integer")
        for name, value in body.items():
            setattr(knobs, name, value)
        if knobs.schedule_ms > 0:
            self.scheduler.ensure_running()
        return dict(vars(knobs))

    def record(self, method: str, path: str, query: str, status: int,
               operation: str | None = None) -> None:
        entry: dict[str, Any] = {"method": method, "path": path, "query": query, "status": status}
        if operation is not None:       # a pump operation: which one (start, disable, ...)
            entry["operation"] = operation
        with self.log_lock:
            self.requests.append(entry)
        for observer in list(self.observers):
            observer(method, path, status)


def _without_dot_segments(path: str) -> str:
    segments = path.split("/")
    if "." not in segments and ".." not in segments:
        return path
    out: list[str] = []
    for segment in segments[1:]:
        if segment == "..":
            if out:
                out.pop()
        elif segment != ".":
            out.append(segment)
    trailing = segments[-1] in (".", "..")
    return "/" + "/".join(out) + ("/" if trailing and out else "")


class _Dropped(Exception):
    """The fault rule says: close the connection without answering."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the second waits for the
    # client's delayed ACK (~40 ms) on every keep-alive request.
    disable_nagle_algorithm = True
    server: NodeServer
    _request_body: bytes | None = None

    def log_message(self, format: str, *args: object) -> None:
        # The default logs to stderr with the request line; we keep it quiet (and token-free).
        log.debug("%s %s", self.command, self.path.split("?")[0])

    def _send(self, status: int, body: object, headers: dict[str, str] | None = None,
              trickle_ms: int = 0, reason: str | None = None) -> None:
        if isinstance(body, proxy.Answer):      # the container's own answer, passed back
            self._send_raw(status, body.body, body.content_type, body.headers, trickle_ms,
                           body.reason)
            return
        if isinstance(body, RawBody):
            self._send_raw(status, body.data, body.content_type, headers, trickle_ms, reason)
            return
        data = body.data if isinstance(body, RawJSON) else json.dumps(body).encode("utf-8")
        ctype = "application/problem+json" if isinstance(body, dict) and "title" in body \
            else "application/json"
        self._send_raw(status, data, ctype, headers, trickle_ms, reason)

    def _send_raw(self, status: int, data: bytes, content_type: str,
                  headers: dict[str, str] | list[tuple[str, str]] | None = None,
                  trickle_ms: int = 0, reason: str | None = None) -> None:
        self.send_response(status, reason)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        pairs = headers.items() if isinstance(headers, dict) else headers or []
        for name, value in pairs:
            self.send_header(name, value)
        try:
            self.end_headers()
            if not trickle_ms:
                self.wfile.write(data)
                return
            for i in range(len(data)):
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
                time.sleep(trickle_ms / 1000)
        except OSError:   # the client gave up waiting (a delay or trickle rule's very point)
            self.close_connection = True

    def _raw(self) -> bytes:
        # Always read the body, also when we answer without looking at it: keep-alive needs it.
        # Once per request: _api reads it first (see there).
        if self._request_body is None:
            length = int(self.headers.get("Content-Length") or 0)
            self._request_body = self.rfile.read(length) if length else b""
        return self._request_body

    def _body(self) -> object:
        raw = self._raw()
        if not raw:
            return None
        ctype = self.headers.get("Content-Type", "")
        if "application/x-www-form-urlencoded" in ctype:
            return dict(urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        if "multipart/form-data" in ctype:
            return _multipart(raw, ctype)
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(400, "the request body is not valid JSON") from None

    def _pump_operation(self, method: str, path: str) -> str | None:
        """The `operation` a POST to a pump names, for the request log: tests read from it
        whether anyone started (ran) a pipe, e.g. a disabled one. None for other requests."""
        if method != "POST" or not _PUMP_PATH.match(path):
            return None
        try:
            body = self._body()
        except ApiError:
            return None
        operation = body.get("operation") if isinstance(body, dict) else None
        return operation if isinstance(operation, str) else None

    def _dispatch(self) -> None:
        self._request_body = None
        state = self.server.state
        parts = urllib.parse.urlsplit(self.path)
        # As an HTTP front end does (RFC 3986, 5.2.4): a literal `.` or `..` segment is
        # resolved before routing, so `/api/pipes/../config` is `/api/config`. An id of `..`
        # stays in its segment only when its dots are percent-encoded.
        parts = parts._replace(path=_without_dot_segments(parts.path))
        try:
            if parts.path.startswith("/_emulator/"):
                self._emulator(state, parts.path)
            elif parts.path == "/api" or parts.path.startswith("/api/"):
                self._api(state, parts)
            else:
                self._send(404, {"message": "not found"})
        except _Dropped:
            self.close_connection = True

    def _api(self, state: NodeState, parts: urllib.parse.SplitResult) -> None:
        method = self.command
        # The whole request is in before a fault rule counts it: a client that dies while the
        # node holds its request (a reset connection loses unread data) left a complete one.
        self._raw()
        operation = self._pump_operation(method, parts.path)
        # Each request is logged before its answer goes out, so a client that has its
        # answer always finds the request in /_emulator/requests.
        if state.latency_ms:
            time.sleep(state.latency_ms / 1000)
        hit = state.faults.hit(method, parts.path)
        rule = hit.rule if hit is not None else None
        if hit is not None:
            state.faults.hold(hit)
        if rule is not None and rule.drop:
            self._raw()
            state.record(method, parts.path, parts.query, 0, operation)
            raise _Dropped()
        if rule is not None and not rule.drop_after and \
                (rule.status is not None or rule.body is not None):
            self._raw()
            status = rule.status if rule.status is not None else 200
            state.record(method, parts.path, parts.query, status, operation)
            if rule.body is not None:
                self._send_raw(status, rule.body.encode("utf-8"), rule.content_type,
                               rule.headers or {}, rule.trickle_ms, rule.reason)
            else:
                self._send(status, {"message": "injected fault"}, rule.headers or {},
                           rule.trickle_ms, rule.reason)
            return
        status, body, headers = self._answer(state, method, parts)
        if rule is not None and rule.drop_after:
            if 200 <= status < 300:
                state.faults.landed(rule)
            state.record(method, parts.path, parts.query, 0, operation)
            raise _Dropped()
        state.record(method, parts.path, parts.query, status, operation)
        self._send(status, body, headers, rule.trickle_ms if rule is not None else 0)

    def _answer(self, state: NodeState, method: str,
                parts: urllib.parse.SplitResult) -> tuple[int, object, dict[str, str]]:
        try:
            claims = auth.check(self.headers.get("Authorization"), state.jwt_secret)
            if claims is None:
                self._raw()
                raise ApiError(401, "missing, malformed, badly signed or expired token")
            sub = parts.path[len("/api"):]
            admin = auth.is_admin(claims, state.subscription_id)
            proxied = proxy.PATH.match(sub)
            if proxied:
                if _refused_write(state, method, admin):
                    raise ApiError(403, f"{method} {sub}: this node lets only group:Admin "
                                        "write through a microservice's proxy")
                passed = proxy.forward(
                    state.store, state.containers, method=method,
                    system_id=urllib.parse.unquote(proxied.group(1)), rest=proxied.group(2),
                    query=parts.query, headers=list(self.headers.items()), body=self._raw())
                return passed.status, passed, {}
            for route_method, pattern, fn in ROUTES:
                match = pattern.match(sub)
                if match and route_method == method:
                    if _refused_write(state, method, admin):
                        self._raw()
                        raise ApiError(403, f"{method} {sub}: this node lets only group:Admin "
                                            "change its configuration or pumps")
                    args = tuple(urllib.parse.unquote(a) for a in match.groups())
                    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
                    req = Request(method=method, args=args, query=query, body=self._body(),
                                  admin=admin,
                                  principals=auth.principals(claims, state.subscription_id),
                                  accept=self.headers.get("Accept", ""))
                    answer = fn(state.store, req)
                    return answer if len(answer) == 3 else (*answer, {})
            self._raw()
            raise ApiError(404, "no such endpoint")
        except ApiError as exc:
            return exc.status, exc.body or _error_body(exc), {}
        except Exception:  # a bug in the emulator: answer 500 rather than hang up silently
            log.exception("internal error on %s %s", method, parts.path)
            return 500, {"message": "internal emulator error", "status": 500}, {}

    def _emulator(self, state: NodeState, path: str) -> None:
        if path == "/_emulator/requests" and self.command == "GET":
            with state.log_lock:
                self._send(200, list(state.requests))
        elif path == "/_emulator/requests" and self.command == "DELETE":
            with state.log_lock:
                state.requests.clear()
            self._send(200, {})
        elif path == "/_emulator/faults" and self.command == "POST":
            try:
                self._send(201, {"id": state.faults.add(self._body())})
            except (ValueError, ApiError) as exc:
                self._send(400, {"message": str(exc)})
        elif path == "/_emulator/faults" and self.command == "GET":
            self._send(200, state.faults.report())
        elif path == "/_emulator/faults/release" and self.command == "POST":
            self._send(200, {"released": state.faults.release()})
        elif path == "/_emulator/faults" and self.command == "DELETE":
            state.faults.clear()
            self._send(200, {})
        elif path == "/_emulator/containers" and self.command == "POST":
            try:
                self._send(200, state.containers.register(self._body()))
            except (ValueError, ApiError) as exc:
                self._send(400, {"message": str(exc)})
        elif path == "/_emulator/config" and self.command == "GET":
            self._send(200, {"latency_ms": state.latency_ms, **vars(state.store.knobs)})
        elif path == "/_emulator/config" and self.command == "POST":
            try:
                self._send(200, state.set_knobs(self._body()))
            except (ValueError, ApiError) as exc:
                self._send(400, {"message": str(exc)})
        else:
            self._send(404, {"message": "not found"})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch


def _multipart(raw: bytes, ctype: str) -> dict[str, bytes]:
    """The fields of a multipart/form-data body (sesamclient uploads config as `file`)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + raw)
    if not message.is_multipart():
        raise ApiError(400, "the multipart/form-data body cannot be parsed")
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)   # None for a nested multipart part
            fields[name] = payload if isinstance(payload, bytes) else b""
    return fields


def _refused_write(state: NodeState, method: str, admin: bool) -> bool:
    # Pump operations are POSTs too: under the rule they need group:Admin like any write.
    return state.admin_writes_only and not admin and method in ("POST", "PUT", "PATCH", "DELETE")


def _error_body(exc: ApiError) -> dict[str, Any]:
    """The error answer. A 403 is a problem document (RFC 7807), the shape Sesam's API layer
    (the swagger's operationIds are connexion's) answers with; `message` stays for clients
    that read it."""
    body: dict[str, Any] = {"message": exc.message, "status": exc.status}
    if exc.status == 403:
        body.update(type="about:blank", title="Forbidden", detail=exc.message)
    return body


class NodeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: NodeState) -> None:
        super().__init__(address, Handler)
        self.state = state
        # serve() waits on the listening socket and on this pair's reading end, so
        # stop_serving() wakes it at once (serve_forever polls for its shutdown flag: tests
        # start and stop hundreds of nodes, and every stop would wait for that poll).
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._stopping = threading.Event()
        # The connections being served: a node that goes down drops them, so a client's
        # kept-alive connection must not go on reaching a stopped node.
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self.accepted = 0          # connections accepted since the node started

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
            self.accepted += 1
        # As ThreadingMixIn does with a daemon thread of its own, in a thread kept for reuse.
        threads.CONNECTIONS.run(lambda: self.process_request_thread(request, client_address))

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def serve(self) -> None:
        """Accept connections (each served in its own thread) until stop_serving()."""
        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self and not self._stopping.is_set():
                        self.handle_request()   # one waiting connection: no wait here

    def stop_serving(self) -> None:
        """Make serve() return (now, or at once when it starts later)."""
        self._stopping.set()
        self._wake_writer.send(b"\0")

    def server_close(self) -> None:
        super().server_close()
        with self._open_lock:
            still_open, self._open = self._open, set()
        for connection in still_open:
            try:
                connection.shutdown(socket.SHUT_RDWR)   # its handler's read ends at once
            except OSError:
                pass                                    # the client closed it already
        self._wake_reader.close()
        self._wake_writer.close()
