"""The real service process (`python -m service`) started for a test, and stopped."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import requests

from emulator import EmulatorNode

from repo_root import ROOT

API_TOKEN = "process-test-api-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


@dataclass
class Service:
    proc: subprocess.Popen
    url: str
    port: int
    output: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None
    auth: dict[str, str] = field(default_factory=lambda: {"Authorization": f"Bearer {API_TOKEN}"})

    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(self.url + path, timeout=30, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        # A script, not a cross-site form: POST /sync refuses those.
        headers = {"X-Requested-With": "tests", **kw.pop("headers", {})}
        return requests.post(self.url + path, timeout=30, headers=headers, **kw)

    def log(self) -> str:
        return "".join(self.output)

    def read_output(self) -> None:
        # Drain the output as it comes, so a full pipe never blocks the service.
        self.reader = threading.Thread(
            target=lambda: self.output.extend(iter(self.proc.stdout.readline, "")), daemon=True)
        self.reader.start()


def start_service(env: dict[str, str]) -> Service:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "service"], cwd=ROOT,
                            env={**os.environ, **env, "PORT": str(port)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    service = Service(proc=proc, url=f"http://127.0.0.1:{port}", port=port)
    service.read_output()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"service exited {proc.returncode}: {service.log()}"
        try:
            if service.get("/health").status_code == 200:
                return service
        except requests.ConnectionError:
            time.sleep(0.05)
    stop_service(service)
    raise AssertionError(f"service never answered /health: {service.log()}")


def stop_service(service: Service) -> int:
    if service.proc.poll() is None:
        service.proc.send_signal(signal.SIGTERM)
        try:
            service.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(service.proc.pid, signal.SIGKILL)
            service.proc.wait()
    if service.reader is not None:
        service.reader.join(5)      # the last lines, written just before the exit
    return service.proc.returncode


def assert_json_one_line(body: bytes) -> dict:
    """An answer body that is one JSON object on one line."""
    text = body.decode("utf-8")
    assert text.rstrip("\n").count("\n") == 0, text
    value = json.loads(text)
    assert isinstance(value, dict)
    return value


def at_once_watching_status(service: Service, calls: list[Callable[[], requests.Response]],
                            nodes: tuple[EmulatorNode, ...], latency_ms: int
                            ) -> tuple[list[requests.Response], bool]:
    """Make the calls at the same moment while every node answers `latency_ms` late, and poll
    /status meanwhile (each answer a 200). Returns the calls' answers in order, and whether
    /status said a run was in progress while the calls were still open: an answer that came
    back before the run ended did not wait for the run."""
    for node in nodes:
        node.latency_ms = latency_ms
        node.clear_requests()
    barrier = threading.Barrier(len(calls))

    def call(fn: Callable[[], requests.Response]) -> requests.Response:
        barrier.wait()
        return fn()
    seen_running = False
    try:
        with ThreadPoolExecutor(len(calls)) as pool:
            futures = [pool.submit(call, fn) for fn in calls]
            while not all(f.done() for f in futures):
                status = service.get("/status")
                assert status.status_code == 200
                seen_running |= status.json()["running"] and not all(f.done() for f in futures)
                time.sleep(0.05)
            answers = [f.result() for f in futures]
    finally:
        for node in nodes:
            node.latency_ms = 0
    return answers, seen_running
