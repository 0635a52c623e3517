"""How the service logs: text (the default) or one JSON object per line, the start-up line,
and warnings that are worth one line a day rather than one a run.

Tokens never reach a line: the start-up line is built from ids, endpoints and numbers only,
and every `service` record goes through the redaction (service.redaction) before this
formatter sees it.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Literal, TextIO

from service.config import Config, LogFormat, LogLevel
from service.version import __version__

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DAY = 86_400.0
Mode = Literal["serve", "once", "plan"]    # how the process was started (__main__)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers: time (UTC, ISO 8601), level, logger,
    message, and the exception's text when there is one (newlines escaped by JSON)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, UTC)
                 .isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name,
                 "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: LogLevel, fmt: LogFormat, stream: TextIO) -> None:
    """The root handler for the whole process (CherryPy's lines included). Like
    logging.basicConfig, it leaves a root logger that someone else (a test runner) has
    given handlers alone, apart from the levels."""
    root = logging.getLogger()
    if all(getattr(h, "_orchestrator", False) for h in root.handlers):
        for old in list(root.handlers):
            root.removeHandler(old)
        handler = logging.StreamHandler(stream)
        handler.setFormatter(JsonFormatter() if fmt == "json"
                             else logging.Formatter(TEXT_FORMAT))
        handler._orchestrator = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.setLevel(level)
    logging.getLogger("service").setLevel(level)
    # urllib3 logs every retry of a request; the run's own line per node says what failed.
    logging.getLogger("urllib3").setLevel(logging.ERROR)


def startup_line(config: Config, mode: Mode) -> str:
    """`orchestrator <version> starting (serve): master ...; slaves: ...; ...`, no token."""
    slaves = "; ".join(
        f"{s.id} at {s.endpoint} ({len(s.managed_systems)} system(s), sync every "
        f"{s.sync_interval} s)" for s in config.slaves) or "none (every system un-managed)"
    return (f"orchestrator {__version__} starting ({mode}): master {config.master.id} at "
            f"{config.master.endpoint}; slaves: {slaves}; a run every {config.update_interval} s"
            f"; port {config.port}; API token "
            f"{'required' if config.api_token is not None else 'not set'}; "
            f"request timeout {config.request_timeout:g} s, run timeout "
            f"{config.run_timeout:g} s; log level {config.log_level}")


def action_line(kind: object, node: object, cid: object, status: object) -> str:
    """One action: ids JSON-quoted, so one cannot pass for a line of its own. A failure's
    reason follows in the run's `error:` line."""
    return (f"action {kind} node={json.dumps(str(node), ensure_ascii=False)} "
            f"id={json.dumps(str(cid), ensure_ascii=False)}: {status}")


# The lines of a run, the same in --once and when serving: only these two functions write
# them, so neither mode repeats a line the other's code also logs.
RUNS = logging.getLogger("service.runs")


def log_action(action: Mapping[str, object]) -> None:
    RUNS.info("%s", action_line(action.get("kind"), action.get("node"), action.get("id"),
                                action.get("status")))


def one_line(text: str) -> str:
    # Component ids are user input: a newline in one must not forge a second log line.
    return text.replace("\r", "\\r").replace("\n", "\\n")


def log_findings(warnings: Iterable[str], errors: Iterable[str]) -> None:
    """A run's warnings and errors, one line each."""
    for warning in warnings:
        RUNS.warning("warning: %s", one_line(warning))
    for error in errors:
        RUNS.error("error: %s", one_line(error))


class OncePer:
    """`due(key)` is True when `key` was not let through in the last `period` seconds: a
    token expiring in 10 days is worth a line a day, not one every UPDATE_INTERVAL."""

    def __init__(self, period: float = DAY, clock: Callable[[], float] = time.monotonic):
        self._period, self._clock = period, clock
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def due(self, key: str) -> bool:
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._period:
                return False
            self._last[key] = now
            return True
