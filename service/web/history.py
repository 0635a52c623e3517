"""The last run reports, kept in a JSON file when HISTORY_PATH is set, so they survive a
restart. Written whole to a temporary file and renamed over the old one: a crash mid-write
leaves the previous history, never half a file. Reports are redacted before they get here.

In memory each report is kept as its JSON text deflated (`Entry`), parsed when asked for:
a first run's report lists thousands of actions, held for as long as the service runs. At
10,000 pipes (21,000 actions) that is ~3.6 MB as dicts, 3 MB as text, 0.3 MB deflated;
made at the end of a run among the run's own objects, dicts would also keep the heap
pages they share from being reused.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from typing import Any, NamedTuple

from service.web.json_pieces import deflated, inflated, json_text

log = logging.getLogger("service.runs")


class Entry(NamedTuple):
    id: int
    outcome: str | None
    placed: bool            # it has a placement
    packed: bytes           # the whole report, JSON deflated


def pack(entry: dict[str, Any]) -> Entry:
    return Entry(entry["id"], entry.get("outcome"), bool(entry.get("placement")),
                 deflated(entry))


def unpack(entry: Entry) -> dict[str, Any]:
    found: dict[str, Any] = inflated(entry.packed)
    return found


def load(path: str | None) -> list[dict[str, Any]]:
    """The kept reports, oldest first; none (and one log line) when the file is unreadable."""
    if path is None or not os.path.exists(path):
        return []
    try:
        with open(path, encoding="utf-8") as handle:
            entries = json.load(handle)
    except (OSError, ValueError, RecursionError) as exc:
        log.warning("history at HISTORY_PATH could not be read (%s); starting without it",
                    type(exc).__name__)
        return []
    if not isinstance(entries, list):
        log.warning("history at HISTORY_PATH is not a list of reports; starting without it")
        return []
    return [e for e in entries if isinstance(e, dict) and isinstance(e.get("id"), int)]


def save(path: str | None, entries: list[Entry]) -> None:
    """Replace the file with these reports; a failure is logged, never raised (a full disk
    must not stop the service reconciling)."""
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, temp = tempfile.mkstemp(dir=folder, prefix=".history-", suffix=".json")
        try:
            with os.fdopen(fd, "wb") as handle:
                # A JSON list of the reports (compact), one report's text at a time,
                # never parsed.
                handle.write(b"[")
                for at, entry in enumerate(entries):
                    handle.write(b", " * bool(at) + json_text(entry.packed))
                handle.write(b"]")
            os.replace(temp, path)
        except BaseException:
            os.unlink(temp)
            raise
    except OSError as exc:
        log.warning("history could not be written to HISTORY_PATH (%s: %s)",
                    type(exc).__name__, exc.strerror or "error")
