"""SesamClient: the only code that speaks HTTP to a Sesam node.

One `requests.Session` per node gives connection pooling; urllib3's `Retry` repeats the
idempotent calls (GET, PUT, DELETE) with backoff, honouring `Retry-After`; a POST is never
repeated blindly, because a bulk create that did land would then answer 409 and a pump
operation would run twice. A semaphore keeps at most `concurrency` requests in flight per
node. Errors are one line, name the node, method, path and status, and never carry a
response body or a token.

Every answer is read as it arrives and capped at `max_answer_mb` MB after decompression
(MAX_ANSWER_MB): a runaway listing or a gzip bomb stops with one line naming the node,
instead of the container running out of memory. Listings are parsed entry by entry
(service/stream.py) and handed to a caller's `keep` one at a time.
"""
from __future__ import annotations

import json
import threading
from sys import intern
from typing import Any, Callable, Iterable, TypeVar
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

from .opaque import dumps, freeze
from .stream import EntryTooLarge, NotAnArray, TooLarge, capped, iter_array
from .text import name, node_message

T = TypeVar("T")
MAX_ANSWER_MB = 256   # default cap on one answer, decompressed (config: MAX_ANSWER_MB)
_CHUNK = 64 * 1024
MAX_ENTRY_MB = 16     # one listing entry (a component) is parsed whole: held in memory


class SesamError(Exception):
    """One line: `<node> <METHOD> <path>: <what went wrong>`."""


class SesamForbidden(SesamError):
    """403: the token lacks a permission (for /env and /secrets: group:Admin)."""


class SesamInvalid(SesamError):
    """400 on a config upload: the node refused the configs it names, with its messages."""

    def __init__(self, where: str, messages: dict[str, str]) -> None:
        said = "; ".join(f"{name(cid)}: {msg}" for cid, msg in messages.items()) or "no details"
        super().__init__(f"{where}: 400 refused ({said})")
        self.where = where
        self.messages = messages   # component id -> the node's validation messages, one line


def _validation_messages(body: Any) -> dict[str, str]:
    """id -> the node's messages from a 400's `validation_errors` (sesamclient's shape).
    Only the `msg` texts are kept, one line, capped, anything token-like blanked out."""
    errors = body.get("validation_errors") if isinstance(body, dict) else None
    found: dict[str, str] = {}
    for item in errors if isinstance(errors, list) else []:
        posted = item.get("posted-config") if isinstance(item, dict) else None
        cid = posted.get("_id") if isinstance(posted, dict) else None
        msgs = [e.get("msg") for e in item.get("config-errors") or [] if isinstance(e, dict)]
        text = "; ".join(str(m) for m in msgs if m)
        if isinstance(cid, str):
            found[cid] = node_message(text) or "invalid config"
    return found


def operation(method: str, path: str) -> str:
    """What a request tries to do, in words, for a 403 answer: `path` is the API path."""
    parts = path.split("?")[0].strip("/").split("/")
    kind = parts[0]
    if kind in ("env", "secrets"):
        verb = "read" if method == "GET" else "change"
        noun = "env vars" if kind == "env" else "secret names" if method == "GET" else "secrets"
        return f"{verb} {noun} (Sesam requires group:Admin for these)"
    if parts[-1] == "pump":
        return "run pump operations on that pipe"
    if parts[-1] == "secrets":
        return "read the names of that system's local secrets" if method == "GET" \
            else "change that system's local secrets"
    if len(parts) == 1:
        return {"GET": f"list {kind}", "POST": f"create {kind}"}.get(method, f"{method} {kind}")
    if method == "DELETE":
        return f"delete that {kind[:-1]}"
    if parts[-1] == "config":
        return f"{'read' if method == 'GET' else 'change'} that {kind[:-1]}'s config"
    return f"{'read' if method == 'GET' else 'write'} that {kind[:-1]}"


class SesamBusy(SesamError):
    """503 on a POST (never retried by the adapter): e.g. a pump whose pipe is still deploying."""


_SHARE_ABOVE = 1_000_000   # bytes


def _shared_strings(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A node's list answers repeat the same short values thousands of times ("pipe",
    # "dataset", system ids, each in original and effective config): one shared object per
    # distinct value keeps a 10,000-pipe master's snapshot ~8 MB smaller (the 128 MB container).
    # Keys too: a listing is parsed entry by entry, so the decoder's own key sharing (within
    # one parse) no longer spans the listing.
    return {intern(k): intern(v) if v.__class__ is str and len(v) <= 256 else v
            for k, v in pairs}


# Entries of a listing are parsed one by one: without this, each would hold its own copy
# of every key and short value.
_SHARED = json.JSONDecoder(object_pairs_hook=_shared_strings)


def q(component_id: str) -> str:
    # Ids may hold '/', '%', spaces or quotes: one path segment each, fully quoted.
    return quote(component_id, safe="")


class SesamClient:
    def __init__(self, *, node_id: str, api_url: str, token: str, timeout: float = 30.0,
                 concurrency: int = 8, retries: int = 3, backoff: float = 0.2,
                 max_answer_mb: int = MAX_ANSWER_MB) -> None:
        self.node_id = node_id
        self._max_answer = max_answer_mb * 1024 * 1024
        self.concurrency = max(1, concurrency)   # the executor schedules by it, too
        self.api_url = api_url.rstrip("/")
        self._timeout = (min(timeout, 10.0), timeout)
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"
        retry = Retry(total=retries, connect=retries, read=retries, status=retries,
                      backoff_factor=backoff, status_forcelist=(429, 500, 502, 503, 504),
                      allowed_methods=frozenset({"GET", "PUT", "DELETE"}),
                      respect_retry_after_header=True, raise_on_status=False,
                      raise_on_redirect=False, redirect=0)
        adapter = HTTPAdapter(max_retries=retry, pool_connections=1,
                              pool_maxsize=self.concurrency)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    # --- reads ---
    def list_pipes(self, keep: Callable[[dict], T] | None = None) -> list[T]:
        """The pipe listing; `keep` (if given) turns each entry into what the caller keeps,
        as it arrives, so the whole parsed listing is never held at once."""
        return self._list("/pipes", keep)

    def list_systems(self, keep: Callable[[dict], T] | None = None) -> list[T]:
        return self._list("/systems", keep)

    def get_env(self) -> dict:
        body = self._request("GET", "/env")
        if not isinstance(body, dict):
            raise SesamError(f"{self.node_id} GET /env: answer is not a JSON object")
        return body

    def get_pump(self, pipe_id: str) -> dict:
        body = self._request("GET", f"/pipes/{q(pipe_id)}/pump")
        if not isinstance(body, dict) or not isinstance(body.get("runtime"), dict):
            raise SesamError(f"{self.node_id} GET /pipes/{q(pipe_id)}/pump: answer is not a pump")
        return body

    def list_secrets(self) -> list[str]:
        return self._names("/secrets")

    def list_system_secrets(self, system_id: str) -> list[str]:
        """The names of a system's local secrets (values never leave a node)."""
        return self._names(f"/systems/{q(system_id)}/secrets")

    def _names(self, path: str) -> list[str]:
        body = self._request("GET", path)
        if not isinstance(body, list) or not all(isinstance(s, str) for s in body):
            raise SesamError(f"{self.node_id} GET {path}: answer is not a list of names")
        return body

    def get_config(self, kind: str, component_id: str) -> dict | None:
        """A pipe's or system's original config (`kind`: pipes | systems); None if gone."""
        body = self._request("GET", f"/{kind}/{q(component_id)}/config", missing_ok=True)
        if body is not None and not isinstance(body, dict):
            raise SesamError(f"{self.node_id} GET /{kind}/{q(component_id)}/config: answer is "
                             "not a JSON object")
        # As a listing's entries are kept: compared with them (the executor's re-read).
        return freeze(body) if body is not None and kind == "pipes" else body

    # --- writes ---
    def create_pipes(self, configs: Iterable[dict]) -> None:
        self._request("POST", "/pipes", json=list(configs))

    def create_systems(self, configs: Iterable[dict]) -> None:
        self._request("POST", "/systems", json=list(configs))

    def put_pipe(self, pipe_id: str, config: dict) -> None:
        self._request("PUT", f"/pipes/{q(pipe_id)}/config", json=config)

    def put_system(self, system_id: str, config: dict) -> None:
        self._request("PUT", f"/systems/{q(system_id)}/config", json=config)

    def delete_pipe(self, pipe_id: str) -> None:
        self._request("DELETE", f"/pipes/{q(pipe_id)}", missing_ok=True)

    def delete_system(self, system_id: str) -> None:
        self._request("DELETE", f"/systems/{q(system_id)}", missing_ok=True)

    def delete_dataset(self, dataset_id: str) -> None:
        self._request("DELETE", f"/datasets/{q(dataset_id)}", missing_ok=True)

    def pump_operation(self, pipe_id: str, operation: str, **params: str) -> dict | None:
        """The pump JSON the node answers with (None when the answer is not one)."""
        # Sesam takes pump operations as form fields, as sesamclient sends them.
        form = {"operation": operation, **params}
        body = self._request("POST", f"/pipes/{q(pipe_id)}/pump", data=form, answer=True)
        return body if isinstance(body, dict) and isinstance(body.get("runtime"), dict) else None

    def post_env(self, values: dict[str, Any]) -> None:
        self._request("POST", "/env", json=values)

    def close(self) -> None:
        self._session.close()

    # --- plumbing ---
    def _list(self, path: str, keep: Callable[[dict], Any] | None) -> list[Any]:
        def each(at: int, item: Any) -> Any:
            if not (isinstance(item, dict) and isinstance(item.get("_id"), str)):
                raise SesamError(f"{self.node_id} GET {path}: malformed entry at position {at} "
                                 "(not an object with a string '_id')")
            return keep(item) if keep is not None else item
        return self._request("GET", path, each=each)

    def _request(self, method: str, path: str, *, missing_ok: bool = False, answer: bool = False,
                 each: Callable[[int, Any], Any] | None = None, **kwargs: Any) -> Any:
        """The answer's JSON (None for a write unless `answer`); with `each`, the answer must
        be a JSON array and the result is [each(position, entry), ...], parsed as it comes."""
        where = f"{self.node_id} {method} {path}"
        if "json" in kwargs:
            kwargs["data"] = dumps(kwargs.pop("json"))
            kwargs["headers"] = {"Content-Type": "application/json"}
        try:
            with self._slots:
                response = self._session.request(method, self.api_url + path,
                                                 timeout=self._timeout, allow_redirects=False,
                                                 stream=True, **kwargs)
                try:
                    return self._answer(where, method, response, missing_ok=missing_ok,
                                        answer=answer, each=each)
                finally:
                    response.close()
        except requests.exceptions.Timeout:
            raise SesamError(f"{where}: no answer within {self._timeout[1]:g} s") from None
        except requests.exceptions.RetryError:
            raise SesamError(f"{where}: still failing after retries") from None
        except requests.exceptions.ConnectionError as exc:
            # After retries, requests reports a read timeout as a ConnectionError.
            reason = getattr(exc.args[0] if exc.args else None, "reason", None)
            if isinstance(reason, ReadTimeoutError):
                raise SesamError(f"{where}: no answer within {self._timeout[1]:g} s") from None
            raise SesamError(f"{where}: connection failed or was cut") from None
        except requests.exceptions.RequestException as exc:
            raise SesamError(f"{where}: request failed ({type(exc).__name__})") from None

    def _answer(self, where: str, method: str, response: requests.Response, *,
                missing_ok: bool, answer: bool, each: Callable[[int, Any], Any] | None) -> Any:
        path = where.split(" ", 2)[2]
        status = response.status_code
        chunks = capped(response.iter_content(_CHUNK), self._max_answer)
        kind = response.headers.get("Content-Type", "unknown").split(";")[0]
        try:
            if each is not None and 200 <= status < 300:
                entries = iter_array(chunks, _SHARED,
                                     max_entry=min(self._max_answer, MAX_ENTRY_MB * 2**20))
                return [each(at, item) for at, item in enumerate(entries)]
            # Read to the end (capped) whatever the status: the connection is then reused.
            body = b"".join(chunks)
        except EntryTooLarge as exc:
            raise SesamError(f"{where}: an entry larger than {exc.limit // 2**20} MB; "
                             "not read") from None
        except TooLarge:
            raise SesamError(f"{where}: answer larger than {self._max_answer // 2**20} MB "
                             "(MAX_ANSWER_MB); not read") from None
        except NotAnArray:
            raise SesamError(f"{where}: answer is not a list of components") from None
        except ValueError:
            raise SesamError(f"{where}: answer is not valid JSON (content type {kind})") from None
        self._check_status(where, method, path, status, response.reason, body,
                           missing_ok=missing_ok)
        if status == 404:    # missing_ok
            return None
        if method != "GET" and not answer:
            return None
        try:
            # Sharing strings pays for itself in memory only on big answers; it costs CPU.
            hook = _shared_strings if len(body) > _SHARE_ABOVE else None
            return json.loads(body, object_pairs_hook=hook)
        except ValueError:
            if method != "GET":   # a write's answer is a bonus: unreadable is not an error
                return None
            raise SesamError(f"{where}: answer is not valid JSON (content type {kind})") from None

    def _check_status(self, where: str, method: str, path: str, status: int, reason: str | None,
                      body: bytes, *, missing_ok: bool) -> None:
        if status == 404 and missing_ok:
            return
        if status == 403:
            raise SesamForbidden(f"{where}: 403 Forbidden: node {self.node_id} does not let "
                                 f"this jwt_token {operation(method, path)}")
        if status == 400 and method in ("POST", "PUT") and path.startswith(("/pipes", "/systems")):
            try:
                said = json.loads(body)
            except ValueError:
                said = None
            raise SesamInvalid(where, _validation_messages(said))
        if status == 401:
            raise SesamError(f"{where}: 401 Unauthorized (the node rejected the jwt_token)")
        if status == 503:
            raise SesamBusy(f"{where}: 503 {reason or 'Service Unavailable'}")
        if not 200 <= status < 300:
            raise SesamError(f"{where}: {status} {reason or 'error'}")
