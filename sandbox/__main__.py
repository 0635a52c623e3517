"""`python -m sandbox`: a place to try the service by hand.

Emulated master `m1` and slaves `s1`, `s2` loaded with the demo's configuration (README's
example), an on-premise stand-in, and the real service (`python -m service`, a separate
process) on http://127.0.0.1:5000 against them. The nodes' schedulers run pipes every few
seconds, so data flows. Prints what to open and curl; Ctrl-C (or SIGTERM) stops everything.
The nodes' tokens go to files in a private temporary directory, never to the screen.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from demo import scenario
from emulator import EmulatorNode

ROOT = Path(__file__).resolve().parent.parent
YEAR = 365 * 86_400
PIPE_EVERY_MS = 5000         # the emulated nodes start due pipes this often


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox", description=__doc__.split("\n\n")[1].replace("\n", " "),
        epilog="Stop it with Ctrl-C. README.rst, 'A sandbox', shows how to load your own "
               "configuration into the emulated master.")
    parser.add_argument("--port", type=int, default=5000,
                        help="the service's port (default 5000)")
    parser.add_argument("--update-interval", type=int, default=60,
                        help="seconds between the service's runs (default 60)")
    return parser.parse_args(argv)


def _nodes() -> dict[str, EmulatorNode]:
    nodes = {nid: EmulatorNode(jwt_secret=secrets.token_hex(32)).start()
             for nid in (scenario.MASTER_ID, *scenario.SLAVES)}
    for node in nodes.values():
        node.set_knobs(schedule_ms=PIPE_EVERY_MS)
    return nodes


def _load(nodes: dict[str, EmulatorNode], onprem_url: str) -> dict[str, str]:
    """The demo's configuration in the master and the shared secrets everywhere; the
    environment the service gets (as Sesam would pass it)."""
    tokens = {nid: n.token(admin=True, expires_in=YEAR) for nid, n in nodes.items()}
    shared = {scenario.MASTER_SECRET_KEY: tokens[scenario.MASTER_ID],
              **{key: tokens[sid] for sid, (_, key) in scenario.SLAVES.items()},
              "oracle-password": "not-a-real-password"}
    for node in nodes.values():
        node.seed(secrets=shared)
    nodes[scenario.MASTER_ID].seed(env=scenario.master_env(onprem_url),
                                   systems=scenario.master_systems(),
                                   pipes=scenario.master_pipes())
    master = nodes[scenario.MASTER_ID]
    return {
        "MASTER_NODE": json.dumps({"_id": scenario.MASTER_ID, "endpoint": master.url,
                                   "jwt_token": tokens[scenario.MASTER_ID],
                                   "jwt_secret_key": scenario.MASTER_SECRET_KEY}),
        "SLAVE_NODES": json.dumps([
            {"_id": sid, "endpoint": nodes[sid].url, "jwt_token": tokens[sid],
             "managed_systems": systems, "jwt_secret_key": key, "sync_interval": "60"}
            for sid, (systems, key) in scenario.SLAVES.items()]),
    }


def _token_files(nodes: dict[str, EmulatorNode]) -> Path:
    where = Path(tempfile.mkdtemp(prefix="orchestrator-sandbox-"))
    for nid, node in nodes.items():
        path = where / f"{nid}.jwt"
        path.write_text(node.token(admin=True, expires_in=YEAR))
        path.chmod(0o600)
    return where


def _guide(nodes: dict[str, EmulatorNode], onprem_url: str, port: int, tokens: Path) -> str:
    service = f"http://127.0.0.1:{port}"
    master = nodes[scenario.MASTER_ID]
    lines = [f"Sandbox: the service on {service} against emulated Sesam nodes"]
    lines += [f"  {nid:3} {'master' if nid == scenario.MASTER_ID else 'slave '} {n.api_url}"
              for nid, n in nodes.items()]
    lines += [f"  on-premise stand-in {onprem_url}",
              "",
              "Open:", f"  {service}/                the page",
              "Curl:",
              f"  curl {service}/status",
              f"  curl {service}/plan",
              f"  curl -X POST -H 'X-Requested-With: curl' {service}/sync",
              f"  curl {service}/metrics",
              "Your own configuration, into the master (then POST /sync):",
              f"  TOKEN=$(cat {tokens}/{scenario.MASTER_ID}.jwt)",
              f"  curl -H \"Authorization: Bearer $TOKEN\" {master.api_url}/pipes",
              f"  curl -X POST -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: "
              f"application/json' -d @my-pipes.json {master.api_url}/pipes",
              "Ctrl-C stops everything."]
    return "\n".join(lines)


def _service(env: dict[str, str], port: int, update_interval: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "service"], cwd=ROOT,
        env={**os.environ, **env, "PORT": str(port), "UPDATE_INTERVAL": str(update_interval),
             "PYTHONPATH": str(ROOT)},
        # Its own session: Ctrl-C reaches the sandbox only, which then stops the service.
        start_new_session=True)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    nodes: dict[str, EmulatorNode] = {}
    onprem = scenario.OnPremise(scenario.ONPREM_DATA).start()
    service: subprocess.Popen | None = None
    tokens: Path | None = None
    try:
        nodes = _nodes()
        env = _load(nodes, onprem.url)
        tokens = _token_files(nodes)
        print(_guide(nodes, onprem.url, args.port, tokens), "", sep="\n", flush=True)
        service = _service(env, args.port, args.update_interval)
        while not stop.wait(0.2):
            if service.poll() is not None:
                print(f"the service exited with code {service.returncode}", flush=True)
                return 1
        return 0
    finally:
        if service is not None and service.poll() is None:
            service.send_signal(signal.SIGTERM)
            try:
                service.wait(15)
            except subprocess.TimeoutExpired:
                service.kill()
                service.wait()
        for node in nodes.values():
            node.stop()
        onprem.stop()
        if tokens is not None:
            shutil.rmtree(tokens, ignore_errors=True)
        print("Sandbox stopped: the service, the nodes and the stand-in.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
