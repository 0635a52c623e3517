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
    parser = argparse.ArgumentParser(prog="python -m emulator token",
                                     description="Print a token for an emulated node.")
    parser.add_argument("--jwt-secret", required=True, help="the node's --jwt-secret")
    parser.add_argument("--no-admin", action="store_true",
                        help="a token not issued to group:Admin")
    parser.add_argument("--expires-in", type=int, default=86400,
                        help="seconds until it expires (default 86400)")
    args = parser.parse_args(argv)
    print(make_token(args.jwt_secret, admin=not args.no_admin, expires_in=args.expires_in))
    return 0


COMMANDS = """commands:
  python -m emulator --jwt-secret K [--port P] [--host H] [--latency-ms N]
      serve one emulated Sesam node until Ctrl-C (its API at http://H:P/api)
  python -m emulator token --jwt-secret K [--no-admin] [--expires-in SECONDS]
      print a JWT the node serving with the same secret accepts
see python -m emulator token --help, and docs/emulator.md"""


def _serve(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulator", description="An emulated Sesam node on 127.0.0.1.",
        epilog=COMMANDS, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="0 (the default) picks a free one")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--jwt-secret", required=True,
                        help="the key tokens are signed with (32 characters or more)")
    parser.add_argument("--latency-ms", type=int, default=0,
                        help="delay every request, like a node far away")
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
