"""A pipe's pump: its operations, and its runs (in the background, as on a real node).

A run reads its source, then commits the entities to its sink in batches; after each batch
it commits its own offset (last-seen). A full run (no last-seen) tracks deletions and marks
its sink dataset populated once it completes.
"""
from __future__ import annotations

import gzip
import json
import re
import threading
import time
import urllib.parse
import urllib.request
from typing import Any

from .datasets import BINARY_TYPE
from .kinds import Operation, PumpMode
from .store import ApiError, Pipe, Store

_SCHEDULED: list[Operation] = ["start", "stop", "enable", "disable", "update-last-seen"]
# configuration-pump.rst: a `manual` pump is not scheduled and is operated through the API
# (the docs do not say enable/disable are withdrawn: the emulator keeps them, the pump's
# disabled flag is its own state); an `off` pump "cannot be started at all": the docs are
# silent on the rest, so the emulator offers nothing in `off` mode (the stricter reading).
_BY_MODE: dict[PumpMode, list[Operation]] = {"scheduled": _SCHEDULED, "manual": _SCHEDULED,
                                             "off": []}
_SECRET = re.compile(r"\$SECRET\(([^)]*)\)")


class _Stopped(Exception):
    """The `stop` operation ended the run between two batches."""


def supported_operations(pipe: Pipe) -> list[Operation]:
    mode = (pipe.effective.get("pump") or {}).get("mode", "scheduled")
    ops = list(_BY_MODE.get(mode, _SCHEDULED))
    if pipe.effective.get("disable_set_last_seen") is True and "update-last-seen" in ops:
        ops.remove("update-last-seen")   # configuration-pipes.rst: protects from resets
    return ops


def pump_json(pid: str, pipe: Pipe) -> dict[str, Any]:
    run = pipe.last_run
    return {"_id": f"pump:{pid}", "type": "pump",
            "runtime": {"supported-operations": supported_operations(pipe),
                        "is-disabled": pipe.disabled, "is-running": pipe.running,
                        "last-seen": pipe.last_seen, "queues": {},
                        "progress": {"processed": run.get("processed", 0)},
                        "success": run.get("success"),
                        "last-run": run.get("finished"),
                        "last-error": run.get("error"),
                        "config": pipe.effective.get("pump", {})}}


def _with_since(url: str, since: str | None) -> str:
    if since in (None, ""):
        return url
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, v) for k, v in query if k != "since"] + [("since", since)]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _resolve_secrets(value: str, secrets: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(1) not in secrets:
            raise RuntimeError(f"unknown secret '{match.group(1)}'")
        return secrets[match.group(1)]
    return _SECRET.sub(one, value)


def _http_request(store: Store, part: dict[str, Any], *, since: str | None = None,
                  body: bytes | None = None) -> urllib.request.Request:
    """A request to the system:url that a json/binary source or a json sink names."""
    with store.lock:
        listed = store.system_json.get(part.get("system", ""), {})
        system = listed.get("config", {}).get("effective")
        secrets = store.secrets_for(part.get("system"))
    if not system or system.get("type") != "system:url":
        raise RuntimeError(f"system '{part.get('system')}' is not a system:url")
    pattern = system.get("url_pattern") or (system.get("base_url", "").rstrip("/") + "/%s")
    url = pattern % part.get("url", "") if "%s" in pattern else pattern + part.get("url", "")
    if part.get("supports_since"):
        url = _with_since(url, since)
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if system.get("authentication") == "jwt" or system.get("jwt_token"):
        token = _resolve_secrets(str(system.get("jwt_token", "")), secrets)
        headers["Authorization"] = "Bearer " + token
    request = urllib.request.Request(url, data=body, headers=headers,
                                     method="GET" if body is None else "POST")
    request.timeout = float(system.get("read_timeout", 30))
    return request


def _call(request: urllib.request.Request, what: str) -> tuple[bytes, str]:
    """The answer's body and content type."""
    try:
        with urllib.request.urlopen(request, timeout=request.timeout) as resp:
            return resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{what} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise RuntimeError(f"{what} failed: {type(exc).__name__}") from None


def _read_http(store: Store, source: dict[str, Any], since: str | None) -> list[dict[str, Any]]:
    binary = source.get("type") == "binary"
    request = _http_request(store, source, since=since)
    if binary:
        # Sesam's binary protocol is not public: the emulator's stand-in (see routes.py)
        # is the only answer a binary source reads; JSON is refused, never read silently.
        request.add_header("Accept", BINARY_TYPE)
    raw, content_type = _call(request, "source")
    if binary:
        if BINARY_TYPE not in content_type:
            raise RuntimeError(f"binary source got '{content_type or 'no content type'}', "
                               "not Sesam's binary protocol")
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError):
            raise RuntimeError("binary source answer is not valid") from None
    try:
        body = json.loads(raw.decode("utf-8"))
    except ValueError:
        raise RuntimeError("source did not answer JSON") from None
    if not isinstance(body, list):
        raise RuntimeError("source did not answer a JSON array")
    return body


def _write_http(store: Store, sink: dict[str, Any], entities: list[dict[str, Any]]) -> None:
    # Sesam's JSON push sink: the entities, as a JSON array, POSTed to the system's url.
    if entities:
        _call(_http_request(store, sink, body=json.dumps(entities).encode("utf-8")), "sink")


def _read(store: Store, source: dict[str, Any], since: str | None) -> list[dict[str, Any]]:
    kind = source.get("type")
    if kind == "embedded":
        return list(source.get("entities", []))
    if kind == "dataset":
        with store.lock:
            ds = store.datasets.get(source.get("dataset", ""))
            if ds is None:
                return []
            start = None if since in (None, "") else int(since)
            return ds.entities(since=start, limit=None, history=False, deleted=True)
    if kind in ("json", "binary"):
        return _read_http(store, source, since)
    raise RuntimeError(f"source type '{kind}' is not supported by the emulator")


def _source_populated(store: Store, source: dict[str, Any]) -> bool:
    if source.get("type") != "dataset":
        return True     # a source outside the node is complete once read to its end
    ds = store.datasets.get(source.get("dataset", ""))
    return ds is not None and ds.populated


def _batches(entities: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    size = size if size > 0 else max(1, len(entities))
    return [entities[i:i + size] for i in range(0, len(entities), size)]


class _Run:
    """One run of one pipe; commits go through the store lock, batch by batch."""

    def __init__(self, store: Store, pid: str) -> None:
        self.store, self.pid = store, pid
        with store.lock:
            pipe = store.pipes[pid]
            self.eff, self.since = pipe.effective, pipe.last_seen
            self.incarnation, self.errors = pipe.incarnation, pipe.errors
            self.full = self.since in (None, "") or pipe.full_run
            # A full run that failed half-way is resumed from its committed offset.
            self.seen: set[str] = set(pipe.seen) if self.since not in (None, "") else set()
        self.processed = 0

    def _pipe(self) -> Pipe:
        """The pipe this run belongs to, still there and not stopped (store lock held)."""
        pipe = self.store.pipes.get(self.pid)
        if pipe is None or pipe.incarnation != self.incarnation:
            raise RuntimeError("the pipe was deleted during the run")
        if pipe.stop_requested:
            raise _Stopped()
        return pipe

    def execute(self) -> None:
        sink, source = self.eff["sink"], self.eff["source"]
        if sink.get("type") not in ("dataset", "json"):
            raise RuntimeError(f"sink type '{sink.get('type')}' is not supported by the emulator")
        if sink.get("type") == "dataset" and sink.get("set_initial_offset") == "initially":
            with self.store.lock:
                self.store.dataset(self._dataset_id(), create=True).populated = True
        entities = [e for e in _read(self.store, source, self.since)
                    if isinstance(e, dict) and "_id" in e]
        if self.full and not entities and source.get("if_source_empty") == "fail":
            raise RuntimeError("the source returned no entities (if_source_empty: fail)")
        knobs = self.store.knobs
        for number, batch in enumerate(_batches(entities, knobs.batch_size)):
            if knobs.fail_after_batches is not None and number >= knobs.fail_after_batches:
                raise RuntimeError("the run failed half-way (emulator knob fail_after_batches)")
            self._commit(sink, batch)
            if knobs.batch_delay_ms:
                time.sleep(knobs.batch_delay_ms / 1000)
        if sink.get("type") == "dataset":
            self._finish(source, sink)

    def _dataset_id(self) -> str:
        return self.eff["sink"].get("dataset") or self.pid

    def _commit(self, sink: dict[str, Any], batch: list[dict[str, Any]]) -> None:
        clean = [{k: v for k, v in e.items() if k not in ("_updated", "_previous")} for e in batch]
        offsets = [str(e["_updated"]) for e in batch if "_updated" in e]
        if sink.get("type") == "json":
            with self.store.lock:
                self._pipe()
            _write_http(self.store, sink, clean)
        with self.store.lock:
            pipe = self._pipe()
            if sink.get("type") == "dataset":
                target = self.store.dataset(self._dataset_id(), create=True)
                for entity in clean:
                    target.put(entity)
            self.seen.update(e["_id"] for e in clean)
            self.processed += len(clean)
            self.since = offsets[-1] if offsets else self.since
            # The run commits its own offset: a reset made meanwhile is overwritten here.
            pipe.last_seen, pipe.full_run = self.since, self.full
            # Shared with the run, which alone adds to it (a reset gives the pipe a new set).
            pipe.seen = self.seen if self.full else set()
            self.store.pipe_changed(self.pid)

    def _finish(self, source: dict[str, Any], sink: dict[str, Any]) -> None:
        with self.store.lock:
            pipe = self._pipe()
            target = self.store.dataset(self._dataset_id(), create=True)
            if self.full and sink.get("deletion_tracking", True) is not False:
                target.delete_unseen(self.seen)
            when = sink.get("set_initial_offset", "if-source-populated")
            complete = self.full or source.get("type") == "dataset"
            if when == "always" or (when == "if-source-populated" and complete
                                    and _source_populated(self.store, source)):
                target.populated = True
            pipe.full_run, pipe.seen = False, set()


def run_pipe(store: Store, pid: str) -> None:
    """Run the pipe to completion (or failure, or stop); the outcome goes to its pump."""
    run, error = None, None
    try:
        run = _Run(store, pid)
        if run.errors:
            raise RuntimeError("the pipe config is not valid")
        run.execute()
    except _Stopped:
        error = "the run was stopped"
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        error = str(exc)
    with store.lock:
        current = store.pipes.get(pid)
        if current is None or (run is not None and current.incarnation != run.incarnation):
            return
        current.running = current.stop_requested = False
        current.last_run = {"processed": run.processed if run else 0, "success": error is None,
                            "error": error,
                            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        store.pipe_changed(pid)


def start_run(store: Store, pid: str) -> None:
    """Start a run of the pipe in the background (the caller holds the store lock)."""
    pipe = store.pipes[pid]
    pipe.running, pipe.stop_requested = True, False
    store.pipe_changed(pid)
    threading.Thread(target=run_pipe, args=(store, pid), daemon=True,
                     name=f"emulator-run-{pid}").start()


def operate(store: Store, pid: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """Apply one pump operation (form data, as sesamclient posts it); the status and the pump
    JSON after it. `start` starts a run in the background and answers at once, as a real node
    does; on a pump already running it answers 409 with the pump JSON (as sesamclient reads it)."""
    operation = form.get("operation")
    with store.lock:
        if pid not in store.pipes:
            raise ApiError(404, "no pipe with that id")
        pipe = store.pipes[pid]
        if pipe.deploying():
            # Docs silent: the stricter reading is that a pump still deploying refuses.
            raise ApiError(503, "the pipe is deploying; its pump cannot be operated yet")
        if operation not in supported_operations(pipe):
            raise ApiError(400, f"The pump doesn't support the operation '{operation}'")
        if operation in ("enable", "disable"):
            pipe.disabled = operation == "disable"
        elif operation == "stop":
            pipe.stop_requested = pipe.running
        elif operation == "update-last-seen":
            if "last-seen" not in form:
                raise ApiError(400, "update-last-seen needs a 'last-seen' parameter")
            pipe.last_seen = form["last-seen"] or None
            # A reset owes a full run; a run in flight overwrites both at its next commit.
            pipe.full_run, pipe.seen = pipe.last_seen is None, set()
        elif operation == "start":
            if pipe.running:
                return 409, pump_json(pid, pipe)
            start_run(store, pid)
        store.pipe_changed(pid)
        return 200, pump_json(pid, pipe)
