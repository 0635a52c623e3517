"""EmulatorNode: one emulated Sesam node in a background thread, plus test helpers."""
from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from .auth import make_token
from .server import NodeServer, NodeState, Observer
from .store import Store


class EmulatorNode:
    def __init__(self, *, jwt_secret: str = "emulator-secret-0123456789-0123456789",
                 latency_ms: int = 0,
                 host: str = "127.0.0.1", port: int = 0,
                 subscription_id: str | None = None,
                 admin_writes_only: bool = False) -> None:
        # subscription_id: the key of this node in a token's {subscription: [principals]}.
        # admin_writes_only: every write (config, pump, env, datasets) needs group:Admin.
        self._state = NodeState(jwt_secret=jwt_secret, latency_ms=latency_ms,
                                subscription_id=subscription_id or str(uuid.uuid4()),
                                admin_writes_only=admin_writes_only)
        self._made_with = (latency_ms, admin_writes_only)    # what reset() goes back to
        self._host, self._port = host, port
        self._server: NodeServer | None = None
        self._thread: threading.Thread | None = None

    # --- life cycle ---
    def start(self) -> EmulatorNode:
        self._server = NodeServer((self._host, self._port), self._state)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve, daemon=True,
                                        name=f"emulator-{self._port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._state.scheduler.stop()
        if self._server is not None:
            self._server.stop_serving()
            if self._thread is not None:
                self._thread.join()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> EmulatorNode:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- addresses and knobs ---
    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def api_url(self) -> str:
        return self.url + "/api"

    @property
    def latency_ms(self) -> int:
        return self._state.latency_ms

    @latency_ms.setter
    def latency_ms(self, value: int) -> None:
        self._state.latency_ms = value

    @property
    def subscription_id(self) -> str:
        return self._state.subscription_id

    @property
    def admin_writes_only(self) -> bool:
        return self._state.admin_writes_only

    @admin_writes_only.setter
    def admin_writes_only(self, value: bool) -> None:
        self._state.admin_writes_only = value

    @property
    def store(self) -> Store:
        """The in-memory state, for white-box assertions in tests."""
        return self._state.store

    def save_state(self) -> dict[str, Any]:
        """A deep copy of everything the node holds (config, datasets, env, secrets)."""
        return self._state.store.save()

    def restore_state(self, saved: dict[str, Any]) -> None:
        """Back to a state from save_state(); the request log and fault rules are cleared."""
        self._state.store.restore(saved)
        self._state.faults.clear()
        with self._state.log_lock:
            self._state.requests.clear()

    def reset(self) -> None:
        """Back to the state the node started in, keeping its address, secret and
        subscription: no config, datasets, env, secrets, fault rules, logged requests,
        observers, registered containers or run knobs, and the latency and admin-writes rule
        it was made with. A test that runs many examples resets its nodes between them
        instead of starting new ones."""
        self._state.store.reset()
        self._state.faults.clear()
        self._state.observers.clear()
        self._state.containers.clear()
        with self._state.log_lock:
            self._state.requests.clear()
        self._state.latency_ms, self._state.admin_writes_only = self._made_with

    @property
    def connections_accepted(self) -> int:
        """How many connections the node has accepted since it started (0 when stopped)."""
        return self._server.accepted if self._server is not None else 0

    def token(self, *, admin: bool = True, expires_in: int = 86400,
              principals: list[str] | dict[str, list[str]] | None = None) -> str:
        return make_token(self._state.jwt_secret, admin=admin, expires_in=expires_in,
                          principals=principals)

    def add_observer(self, fn: Observer) -> None:
        self._state.observers.append(fn)

    # --- talking to the node over HTTP ---
    def api(self, method: str, path: str, json: object = None, *,
            token: str | None = None) -> tuple[int, Any]:
        """One request to `api_url + path` with an admin token; (status, parsed body)."""
        headers = {"Authorization": "Bearer " + (token or self.token())}
        return self._request(method, "/api" + path, json, headers)

    def _request(self, method: str, path: str, body: object,
                 headers: dict[str, str]) -> tuple[int, Any]:
        conn = http.client.HTTPConnection(self._host, self._port, timeout=60)
        try:
            data = None
            if body is not None:
                data = json_dumps(body)
                headers = {**headers, "Content-Type": "application/json"}
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, (json.loads(raw) if raw else None)
        finally:
            conn.close()

    def emulator(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        """A request to the test-only /_emulator endpoints."""
        return self._request(method, "/_emulator" + path, body, {})

    def add_fault(self, **rule: object) -> int:
        status, body = self.emulator("POST", "/faults", rule)
        assert status == 201, body
        return int(body["id"])

    def faults(self) -> list[dict[str, Any]]:
        """Every fault rule with `hits` (times it fired) and `landed` (drop_after hits the
        node carried out with a 2xx)."""
        status, body = self.emulator("GET", "/faults")
        assert status == 200 and isinstance(body, list), body
        return body

    def release_held(self) -> int:
        """Let the requests that fault delays hold now go on at once (each then does what its
        rule says: dropped, carried out and cut, or answered); how many there were."""
        status, body = self.emulator("POST", "/faults/release")
        assert status == 200 and isinstance(body, dict), body
        return int(body["released"])

    def register_container(self, system_id: str, url: str) -> dict[str, Any]:
        """Where `system:microservice` `system_id`'s container listens (`http://127.0.0.1:PORT`):
        the emulator runs no image, and its proxy (emulator/proxy.py) forwards there."""
        status, body = self.emulator("POST", "/containers", {system_id: url})
        if status != 200 or not isinstance(body, dict):
            raise ValueError(body)
        return body

    def set_knobs(self, **knobs: object) -> dict[str, Any]:
        """Run knobs (batch_size, batch_delay_ms, fail_after_batches, deploy_ms)."""
        status, body = self.emulator("POST", "/config", knobs)
        assert status == 200 and isinstance(body, dict), body
        return body

    def wait_ticks(self, count: int, *, timeout: float = 10.0) -> None:
        """Wait until the scheduler (knob schedule_ms) has done `count` more rounds."""
        scheduler = self._state.scheduler
        goal, deadline = scheduler.ticks + count, time.monotonic() + timeout
        while scheduler.ticks < goal:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the scheduler did not do {count} rounds in {timeout} s")
            time.sleep(0.01)

    def wait_idle(self, pipe_id: str, *, timeout: float = 10.0) -> dict[str, Any]:
        """Poll the pump until no run is in flight (deadline `timeout`); its pump JSON."""
        deadline = time.monotonic() + timeout
        while True:
            status, pump = self.api("GET", f"/pipes/{self.quote(pipe_id)}/pump")
            assert status == 200 and isinstance(pump, dict), pump
            if not pump["runtime"]["is-running"]:
                return pump
            if time.monotonic() > deadline:
                raise TimeoutError(f"pipe {pipe_id!r} still running after {timeout} s")
            time.sleep(0.01)

    def run_pipe(self, pipe_id: str, *, timeout: float = 10.0) -> dict[str, Any]:
        """Start the pipe's pump and wait for that run to end (runs are in the background, as
        on a real node); the pump JSON after the run."""
        status, body = self.api("POST", f"/pipes/{self.quote(pipe_id)}/pump",
                                {"operation": "start"})
        if status != 200:
            raise RuntimeError(f"start of {pipe_id!r} answered {status}: {body}")
        return self.wait_idle(pipe_id, timeout=timeout)

    def requests(self) -> list[dict[str, Any]]:
        """The request log, as GET /_emulator/requests answers it; read in this process (a
        test checks the log after every run, and over HTTP that was a tenth of its time)."""
        with self._state.log_lock:
            return [dict(entry) for entry in self._state.requests]

    def clear_requests(self) -> None:
        """Empty the request log, as DELETE /_emulator/requests does."""
        with self._state.log_lock:
            self._state.requests.clear()

    def seed(self, *, systems: Sequence[dict[str, Any]] = (), pipes: Sequence[dict[str, Any]] = (),
             env: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None,
             force: bool = False) -> None:
        """Load config through the API, in the order a user would: env, secrets, systems, pipes.
        `force` stores configs with errors (as invalid) instead of having them refused."""
        steps: list[tuple[str, str, object]] = []
        if env:
            steps.append(("POST", "/env", env))
        if secrets:
            steps.append(("POST", "/secrets", secrets))
        forced = "?force=true" if force else ""
        if systems:
            steps.append(("POST", "/systems" + forced, list(systems)))
        if pipes:
            steps.append(("POST", "/pipes" + forced, list(pipes)))
        for method, path, body in steps:
            status, answer = self.api(method, path, body)
            if status not in (200, 201):
                raise RuntimeError(f"seeding {path} failed: {status} {answer}")

    @staticmethod
    def quote(component_id: str) -> str:
        """An id as one URL path segment (slashes too; `.` and `..` with their dots encoded,
        or they would be resolved as "here" and "up")."""
        quoted = urllib.parse.quote(component_id, safe="")
        return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


def json_dumps(body: object) -> bytes:
    return json.dumps(body).encode("utf-8")


@contextlib.contextmanager
def running_nodes(*node_ids: str, latency_ms: int = 0,
                  jwt_secret: str = "emulator-secret-0123456789-0123456789",
                  ) -> Iterator[dict[str, EmulatorNode]]:
    nodes: dict[str, EmulatorNode] = {}
    try:
        for nid in node_ids:
            nodes[nid] = EmulatorNode(jwt_secret=jwt_secret, latency_ms=latency_ms).start()
        yield nodes
    finally:
        for node in nodes.values():
            node.stop()
