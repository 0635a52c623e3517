"""CLI: `python -m emulator --port P --jwt-secret K` serves a node;
`python -m emulator token --jwt-secret K` prints a token."""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from .auth import make_token
from .node import EmulatorNode


def _token(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator token")
    parser.add_argument("--jwt-secret", required=True)
    parser.add_argument("--no-admin", action="store_true")
    parser.add_argument("--expires-in", type=int, default=86400)
    args = parser.parse_args(argv)
    print(make_token(args.jwt_secret, admin=not args.no_admin, expires_in=args.expires_in))
    return 0


def _serve(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--jwt-secret", required=True)
    parser.add_argument("--latency-ms", type=int, default=0)
    args = parser.parse_args(argv)
    node = EmulatorNode(jwt_secret=args.jwt_secret, latency_ms=args.latency_ms,
                        host=args.host, port=args.port).start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"emulator serving {node.api_url}", flush=True)
    stop.wait()
    node.stop()
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["token"]:
        return _token(argv[1:])
    return _serve(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
