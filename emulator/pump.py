"""Running a pipe once: read its source, write changed entities to its dataset sink."""
from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request

from .store import ApiError, Pipe, Store

OPERATIONS = ["start", "stop", "enable", "disable", "update-last-seen"]
_SECRET = re.compile(r"\$SECRET\(([^)]*)\)")


def pump_json(pid: str, pipe: Pipe) -> dict:
    run = pipe.last_run
    return {"_id": f"pump:{pid}", "type": "pump",
            "runtime": {"supported-operations": list(OPERATIONS),
                        "is-disabled": pipe.disabled, "is-running": False,
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
    def one(match: re.Match) -> str:
        if match.group(1) not in secrets:
            raise RuntimeError(f"unknown secret '{match.group(1)}'")
        return secrets[match.group(1)]
    return _SECRET.sub(one, value)


def _http_request(store: Store, part: dict, *, since: str | None = None,
                  body: bytes | None = None) -> urllib.request.Request:
    """A request to the system:url that a json/binary source or a json sink names."""
    with store.lock:
        system = store.system_json.get(part.get("system"), {}).get("config", {}).get("effective")
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
        headers["Authorization"] = "Bearer " + _resolve_secrets(str(system.get("jwt_token", "")), secrets)
    request = urllib.request.Request(url, data=body, headers=headers,
                                     method="GET" if body is None else "POST")
    request.timeout = float(system.get("read_timeout", 30))  # type: ignore[attr-defined]
    return request


def _call(request: urllib.request.Request, what: str) -> bytes:
    try:
        with urllib.request.urlopen(request, timeout=request.timeout) as resp:  # type: ignore[attr-defined]
            return resp.read()
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{what} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise RuntimeError(f"{what} failed: {type(exc).__name__}") from None


def _read_http(store: Store, source: dict, since: str | None) -> list[dict]:
    # json and binary sources both read a system:url; the emulator speaks JSON for both.
    raw = _call(_http_request(store, source, since=since), "source")
    try:
        body = json.loads(raw.decode("utf-8"))
    except ValueError:
        raise RuntimeError("source did not answer JSON") from None
    if not isinstance(body, list):
        raise RuntimeError("source did not answer a JSON array")
    return body


def _write_http(store: Store, sink: dict, entities: list[dict]) -> None:
    # Sesam's JSON push sink: the entities, as a JSON array, POSTed to the system's url.
    if entities:
        _call(_http_request(store, sink, body=json.dumps(entities).encode("utf-8")), "sink")


def _read(store: Store, source: dict, since: str | None) -> list[dict]:
    kind = source.get("type")
    if kind == "embedded":
        return list(source.get("entities", []))
    if kind == "dataset":
        with store.lock:
            ds = store.datasets.get(source.get("dataset"))
            if ds is None:
                return []
            start = None if since in (None, "") else int(since)
            return ds.entities(since=start, limit=None, history=False, deleted=True)
    if kind in ("json", "binary"):
        return _read_http(store, source, since)
    raise RuntimeError(f"source type '{kind}' is not supported by the emulator")


def run_pipe(store: Store, pid: str) -> None:
    """Run the pipe to completion; the outcome goes to its pump's runtime."""
    with store.lock:
        pipe = store.pipes[pid]
        eff, since = pipe.effective, pipe.last_seen
    processed, error = 0, None
    try:
        if pipe.errors:
            raise RuntimeError("the pipe config is not valid")
        sink = eff["sink"]
        if sink.get("type") not in ("dataset", "json"):
            raise RuntimeError(f"sink type '{sink.get('type')}' is not supported by the emulator")
        entities = _read(store, eff["source"], since)
        if sink.get("type") == "json":
            pushed = [{k: v for k, v in e.items() if k not in ("_updated", "_previous")}
                      for e in entities if isinstance(e, dict) and "_id" in e]
            _write_http(store, sink, pushed)
            processed = len(pushed)
            offsets = [e["_updated"] for e in entities if isinstance(e, dict) and "_updated" in e]
            since = str(offsets[-1]) if offsets else since
        else:
            with store.lock:
                target = store.dataset(sink.get("dataset") or pid, create=True)
                for entity in entities:
                    if not isinstance(entity, dict) or "_id" not in entity:
                        continue
                    clean = {k: v for k, v in entity.items() if k not in ("_updated", "_previous")}
                    target.put(clean)
                    processed += 1
                    if "_updated" in entity:
                        since = str(entity["_updated"])
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        error = str(exc)
    with store.lock:
        if pid in store.pipes:
            current = store.pipes[pid]
            if error is None:
                current.last_seen = since
            current.last_run = {"processed": processed, "success": error is None,
                                "error": error, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            store.pipe_changed(pid)


def operate(store: Store, pid: str, form: dict[str, str]) -> dict:
    """Apply one pump operation (form data, as sesamclient posts it); the pump JSON after it."""
    operation = form.get("operation")
    with store.lock:
        if pid not in store.pipes:
            raise ApiError(404, "no pipe with that id")
        if operation not in OPERATIONS:
            raise ApiError(400, f"The pump doesn't support the operation '{operation}'")
        pipe = store.pipes[pid]
        if operation in ("enable", "disable"):
            pipe.disabled = operation == "disable"
        elif operation == "update-last-seen":
            if "last-seen" not in form:
                raise ApiError(400, "update-last-seen needs a 'last-seen' parameter")
            pipe.last_seen = form["last-seen"] or None
        store.pipe_changed(pid)
    if operation == "start":
        run_pipe(store, pid)
    with store.lock:
        return pump_json(pid, store.pipes[pid])
