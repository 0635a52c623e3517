"""Serving: CherryPy's WSGI server in front of the Flask app, plus the schedule.

CherryPy rather than Flask's development server: a thread pool, keep-alive, and a clean
stop. `serve(config)` blocks until SIGTERM (what `docker stop` and Sesam send) or SIGINT.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterable, Iterator
from types import FrameType
from typing import TYPE_CHECKING

import cherrypy
from cherrypy._cpwsgi_server import CPWSGIServer

from service import logs
from service.config import Config, LogFormat, LogLevel
from service.web.app import create_app
from service.web.runner import RunFunction, Runner

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

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
    # CherryPy reports a taken port with pages of tracebacks and os._exit(70); say it in one
    # line instead, before anything starts.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError as exc:
            print(f"cannot listen on port {port}: {exc.strerror or exc}", file=sys.stderr)
            raise SystemExit(1) from None


# Cheroot copies whatever a response hands it into a per-connection buffer and copies that
# buffer again for every socket write, so a 1.2 MB answer (a 3,000-pipe plan with its
# flows) sent to the 4 GET /plan callers sharing it cost ~10 MB at once: the steady run's
# peak. Handed over in pieces, each connection holds a piece or two at a time.
PIECE = 64 * 1024


def in_pieces(app: WSGIApplication) -> WSGIApplication:
    """`app` with its response bodies handed to the server at most PIECE bytes at a time
    (same bytes, same headers)."""
    def pieces(body: Iterable[bytes]) -> Iterator[bytes]:
        try:
            for chunk in body:
                if len(chunk) <= PIECE:
                    yield chunk
                    continue
                view = memoryview(chunk)
                for at in range(0, len(chunk), PIECE):
                    yield bytes(view[at:at + PIECE])
        finally:
            close = getattr(body, "close", None)
            if close is not None:       # WSGI: the app's iterable is closed once sent
                close()

    def wrapped(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return pieces(app(environ, start_response))
    return wrapped


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

    cherrypy.tree.graft(in_pieces(app), "/")
    cherrypy.config.update({
        "server.socket_host": "0.0.0.0",
        "server.socket_port": config.port,
        "server.thread_pool": 16,          # /status must answer while a /sync holds a thread
        # CherryPy's default listen backlog is 5: a burst of clients beyond it has its SYNs
        # dropped and retried a second later (a late POST /sync would then start a 2nd run).
        "server.socket_queue_size": 128,
        "engine.autoreload.on": False,
        "checker.on": False,
        "log.screen": False,               # our stdout carries our own log lines
        "environment": "production",
    })
    # CherryPy's engine messages reach our stdout through the root logger; its access log
    # (a line per /health probe) would drown the run lines, so it stays quiet.
    cherrypy.log.access_log.propagate = False
    # Cheroot's accept loop sees a stop only when its select() times out, every 0.5 s by
    # default: half a second added to every stop. A 0.05 s timeout costs 20 idle wake-ups a
    # second, too few to measure.
    httpserver = CPWSGIServer(cherrypy.server)
    httpserver.expiration_interval = 0.05
    cherrypy.server.instance = httpserver

    stopping = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stopping.set()
        # During start-up the engine cannot exit yet; the flag is checked once it is up.
        if cherrypy.engine.state == cherrypy.engine.states.STARTED:
            cherrypy.engine.exit()

    def stop_runs() -> None:
        # Before CherryPy joins the remaining threads, which would include a run's thread.
        runner.shutdown()
        if not runner.wait_idle(STOP_GRACE_SECONDS):
            log.warning("stopped in the middle of a run; the next start completes it")
            logging.shutdown()
            os._exit(0)

    # Installed before the server listens: a SIGTERM right after start is still clean.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    cherrypy.engine.subscribe("stop", stop_runs, priority=10)
    cherrypy.engine.start()
    if cherrypy.engine.state != cherrypy.engine.states.STARTED:
        # e.g. the port is taken: CherryPy has logged why; do not schedule runs.
        cherrypy.engine.exit()
        raise SystemExit(1)
    if stopping.is_set():
        cherrypy.engine.exit()
    else:
        log.info("serving on 0.0.0.0:%d", config.port)
        runner.start(first_delay=first_run_delay)
    cherrypy.engine.block()
    log.info("stopped")
