"""Serving: Cheroot's WSGI server in front of the Flask app, plus the schedule.

Cheroot (CherryPy's own HTTP server) rather than Flask's development server: a thread
pool, keep-alive, and a clean stop; used alone, without the CherryPy framework around it,
whose imports cost the container ~5 MB of its 128. `serve(config)` blocks until SIGTERM
(what `docker stop` and Sesam send) or SIGINT.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from types import FrameType

from cheroot import server as http
from cheroot import wsgi

from service import logs
from service.config import Config, LogFormat, LogLevel
from service.web.app import create_app
from service.web.runner import RunFunction, Runner

log = logging.getLogger("service")

# A run in progress at SIGTERM gets this long to finish; docker stop waits 10 s before
# SIGKILL. The contract makes every run crash-safe, so cutting one short loses nothing.
STOP_GRACE_SECONDS = 5.0
FIRST_RUN_DELAY_SECONDS = 3.0


def _configure_logging(level: LogLevel, fmt: LogFormat) -> None:
    # Logs go to stdout, one line each (or one JSON object each).
    logs.configure(level, fmt, sys.stdout)
    # APScheduler logs every job start and end at INFO; our own run lines say more.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def _check_port_free(port: int) -> None:
    # A taken port would otherwise surface as a traceback from the server's bind; say it in
    # one line instead, before anything starts.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError as exc:
            print(f"cannot listen on port {port}: {exc.strerror or exc}", file=sys.stderr)
            raise SystemExit(1) from None


def serve(config: Config, *, run: RunFunction | None = None,
          first_run_delay: float = FIRST_RUN_DELAY_SECONDS) -> None:
    """Serve on 0.0.0.0:config.port until SIGTERM/SIGINT. `run` defaults to the
    orchestrator's (injectable so the shell can be exercised with a stand-in)."""
    _configure_logging(config.log_level, config.log_format)
    _check_port_free(config.port)
    if run is None:
        from service.orchestrator import run as orchestrator_run
        run = orchestrator_run
    runner = Runner(config=config, run=run)
    app = create_app(config=config, runner=runner)
    # /status must answer while a /sync holds a thread: 16 threads. CherryPy's listen backlog
    # of 5 dropped a burst of clients' SYNs (a late POST /sync would then start a 2nd run).
    server = wsgi.Server(("0.0.0.0", config.port), app, numthreads=16, request_queue_size=128,
                         timeout=10, shutdown_timeout=5)
    # The request limits CherryPy set around Cheroot, kept: 500 KB of headers, 100 MB of body.
    server.max_request_header_size = 500 * 1024
    server.max_request_body_size = 100 * 1024 * 1024
    server.error_log = _error_log    # type: ignore[method-assign]
    server.ConnectionClass = _Connection

    stopping = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stopping.set()

    # Installed before the server listens: a SIGTERM right after start is still clean.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.prepare()
    serving = threading.Thread(target=server.serve, name="HTTPServer", daemon=True)
    serving.start()
    if not stopping.is_set():
        log.info("serving on 0.0.0.0:%d", config.port)
        runner.start(first_delay=first_run_delay)
    stopping.wait()
    # The runs first, then the server, whose stop joins its threads (a run's among them).
    runner.shutdown()
    if not runner.wait_idle(STOP_GRACE_SECONDS):
        log.warning("stopped in the middle of a run; the next start completes it")
        logging.shutdown()
        os._exit(0)
    server.stop()
    serving.join(STOP_GRACE_SECONDS)
    log.info("stopped")


class _Request(http.HTTPRequest):
    # As under CherryPy: a request line may carry an absolute URI (`GET http://host/path`).
    def __init__(self, server: http.HTTPServer, conn: http.HTTPConnection) -> None:
        super().__init__(server, conn, proxy_mode=True)


class _Connection(http.HTTPConnection):
    RequestHandlerClass = _Request


def _error_log(msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
    """Cheroot's own messages (a client's broken request, a crash in a worker) go through
    our log, in its format, rather than to stderr."""
    logging.getLogger("cheroot").log(level, "%s", msg, exc_info=traceback)
