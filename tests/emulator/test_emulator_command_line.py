"""The emulator's command line: printing a token, and serving a node until SIGTERM."""
from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys

import jwt

SECRET = "cli-secret-0123456789-0123456789-0123"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emulator", *args], capture_output=True,
                          text=True, timeout=30, check=True)


def test_token_command() -> None:
    admin = jwt.decode(_cli("token", "--jwt-secret", SECRET).stdout.strip(), SECRET,
                       algorithms=["HS256"])
    plain = jwt.decode(_cli("token", "--jwt-secret", SECRET, "--no-admin",
                            "--expires-in", "60").stdout.strip(), SECRET, algorithms=["HS256"])
    assert admin["principals"] == ["group:Admin"]
    assert plain["principals"] == [] and plain["exp"] - plain["iat"] == 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_until_sigterm() -> None:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "emulator", "--port", str(port),
                             "--jwt-secret", SECRET, "--latency-ms", "1"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == f"emulator serving http://127.0.0.1:{port}/api"
        token = _cli("token", "--jwt-secret", SECRET).stdout.strip()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/api/pipes", headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b"[]")
        conn.request("GET", "/_emulator/config")
        assert json.loads(conn.getresponse().read())["latency_ms"] == 1
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
