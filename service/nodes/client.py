"""SesamClient: the only code that speaks HTTP to a Sesam node.

Requests go through requests' adapter for the node, its connections kept from run to run
(service/nodes/connections.py); no Session, whose per-request merging (cookies, hooks,
~/.netrc, which would replace the bearer token) a node needs none of. GET, PUT and DELETE
are repeated with backoff on 429 and 5xx (honouring `Retry-After`) and on a cut
connection; a POST is repeated only when the connection could not even be opened, because
a bulk create that did land would then answer 409 and a pump operation would run twice. A
semaphore keeps at most `concurrency` requests in flight per node.

Every request has one wall-clock deadline, `timeout` seconds, for all of it: connect, send,
the whole body (read as it arrives, so a node trickling a byte a second cannot hold a run),
retries and their pauses. A run's deadline (`run_timeout`) bounds every request started
under it. Errors are one line, name the node, method, path and status (with the standard
reason phrase, never the node's), and never carry a response body or a token.

Every answer is capped at `max_answer_mb` MB after decompression (MAX_ANSWER_MB), checked
as it is read: a runaway listing or a gzip bomb stops with one line naming the node instead
of the container running out of memory. Listings are parsed entry by entry
(service/nodes/stream.py) and handed to a caller's `keep` one at a time.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any, Literal, TypeVar, overload

import requests
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import NewConnectionError, ReadTimeoutError

from service.core.names import ComponentKind, name, node_message, q
from service.core.opaque import dumps, freeze
from service.nodes import connections
from service.nodes.stream import EntryTooLarge, NotAnArray, iter_array

T = TypeVar("T")
Entry = dict[str, Any]   # one entry of a listing (a pipe's or system's JSON), as parsed
# The pump operations the orchestrator sends (service/nodes/pumps.py says when).
Operation = Literal["stop", "disable", "enable", "update-last-seen"]
MAX_ANSWER_MB = 256   # default cap on one answer, decompressed (config: MAX_ANSWER_MB)
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


class SesamTimeout(SesamError):
    """The request, or the whole run, ran past its deadline."""


def _validation_messages(body: bytes) -> dict[str, str]:
    """id -> the node's messages from a 400's `validation_errors` (sesamclient's shape).
    Only the `msg` texts are kept, one line, capped, anything token-like blanked out."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    errors = parsed.get("validation_errors") if isinstance(parsed, dict) else None
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


def reason(status: int) -> str:
    """The standard phrase of a status code: a node's (or a proxy's) own phrase is its text,
    and may carry anything, a token included."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "non-standard status"


_SHARE_ABOVE = 1_000_000   # bytes


def _sharing(strings: dict[str, str]) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    """A JSON object hook holding one object per distinct key and short value in `strings`.

    A node's list answers repeat the same short values thousands of times ("pipe",
    "dataset", system ids, each in original and effective config): one shared object per
    distinct value keeps a 10,000-pipe master's snapshot ~8 MB smaller (the 128 MB
    container). Keys too: a listing is parsed entry by entry, so the decoder's own key
    sharing (within one parse) does not span the listing. Not `sys.intern`: the process's
    table of interned strings grew to hold a run's 100,000s of them and kept that size
    for good (1.8 MB at 10,000 pipes); `strings` goes when its run has read the nodes."""
    share = strings.setdefault

    def shared(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        return {share(k, k): share(v, v) if v.__class__ is str and len(v) <= 256 else v
                for k, v in pairs}
    return shared


_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_IDEMPOTENT = frozenset({"GET", "PUT", "DELETE"})
_CHUNK = 1 << 16
_CONNECT_TIMEOUT = 10.0


class _Late(Exception):
    """The deadline passed while connecting, sending or reading."""


class _TooLarge(Exception):
    """The answer passed MAX_ANSWER_MB (decompressed) while being read."""


class _Failed(Exception):
    """A connection failed; `sent` says whether the request may have reached the node."""

    def __init__(self, sent: bool) -> None:
        super().__init__()
        self.sent = sent


class SesamClient:
    def __init__(self, *, node_id: str, api_url: str, token: str, timeout: float = 30.0,
                 concurrency: int = 8, retries: int = 3, backoff: float = 0.2,
                 run_timeout: float | None = None, max_answer_mb: int = MAX_ANSWER_MB,
                 strings: dict[str, str] | None = None) -> None:
        """`strings`: where the strings of what it reads are shared (see `_sharing`); a
        run's clients share one and clear it once the nodes are read."""
        self.node_id = node_id
        self._shared = _sharing({} if strings is None else strings)
        self._max_answer = max_answer_mb * 1024 * 1024
        self.concurrency = max(1, concurrency)   # the executor schedules by it, too
        self.api_url = api_url.rstrip("/")
        self._timeout = timeout                   # per request, everything included
        self._retries = max(0, retries)
        self._backoff = backoff
        self._run_timeout = run_timeout
        self._run_ends = time.monotonic() + run_timeout if run_timeout else float("inf")
        self._slots = threading.BoundedSemaphore(self.concurrency)
        # Requests go straight to the adapter: a Session's per-request merging (cookies,
        # hooks, ~/.netrc, which would replace the bearer token) costs more CPU than the
        # node takes to answer, and a node needs none of it.
        self._headers = {**requests.utils.default_headers(), "Authorization": f"Bearer {token}"}
        self._adapter = connections.kept(self.api_url, self.concurrency)
        self._proxies, self._verify, self._cert = connections.environment_settings(self.api_url)

    # --- reads ---
    @overload
    def list_pipes(self) -> list[Entry]: ...
    @overload
    def list_pipes(self, keep: Callable[[Entry], T]) -> list[T]: ...

    def list_pipes(self, keep: Callable[[Entry], Any] | None = None) -> list[Any]:
        """The pipe listing; `keep` (if given) turns each entry into what the caller keeps,
        as it arrives, so the whole parsed listing is never held at once."""
        return self._list("/pipes", keep)

    @overload
    def list_systems(self) -> list[Entry]: ...
    @overload
    def list_systems(self, keep: Callable[[Entry], T]) -> list[T]: ...

    def list_systems(self, keep: Callable[[Entry], Any] | None = None) -> list[Any]:
        return self._list("/systems", keep)

    def list_dataset_ids(self) -> list[str]:
        """The ids of the node's datasets (the listing's other fields are not kept)."""
        return [i for i in self._list("/datasets", lambda item: item.get("_id"))
                if isinstance(i, str)]

    def get_env(self) -> dict[str, Any]:
        body = self._request("GET", "/env")
        if not isinstance(body, dict):
            raise SesamError(f"{self.node_id} GET /env: answer is not a JSON object")
        return body

    @overload
    def get_pump(self, pipe_id: str, *, missing_ok: Literal[False] = False) -> dict[str, Any]: ...
    @overload
    def get_pump(self, pipe_id: str, *, missing_ok: bool) -> dict[str, Any] | None: ...

    def get_pump(self, pipe_id: str, *, missing_ok: bool = False) -> dict[str, Any] | None:
        """The pump's JSON (with its `runtime`); None only with `missing_ok`, when the pipe
        is gone."""
        body = self._request("GET", f"/pipes/{q(pipe_id)}/pump", missing_ok=missing_ok)
        if body is None and missing_ok:
            return None
        if not isinstance(body, dict) or not isinstance(body.get("runtime"), dict):
            raise SesamError(f"{self.node_id} GET /pipes/{q(pipe_id)}/pump: answer is not a pump")
        return body

    def dataset_count(self, dataset_id: str) -> int | None:
        """How many entities a dataset holds, where the node says it (runtime
        `count-indexed`); None when it does not, or the dataset is gone."""
        body = self._request("GET", f"/datasets/{q(dataset_id)}", missing_ok=True)
        runtime = body.get("runtime") if isinstance(body, dict) else None
        count = runtime.get("count-indexed") if isinstance(runtime, dict) else None
        return count if isinstance(count, int) and not isinstance(count, bool) else None

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

    def get_config(self, kind: ComponentKind, component_id: str) -> dict[str, Any] | None:
        """A pipe's or system's original config (`kind`: pipes | systems); None if gone."""
        body = self._request("GET", f"/{kind}/{q(component_id)}/config", missing_ok=True)
        if body is not None and not isinstance(body, dict):
            raise SesamError(f"{self.node_id} GET /{kind}/{q(component_id)}/config: answer is "
                             "not a JSON object")
        # As a listing's entries are kept: compared with them (the executor's re-read).
        return freeze(body) if body is not None and kind == "pipes" else body

    # --- writes ---
    # Configs are dicts, not any Mapping: the JSON encoder writes dicts (and lists) only.
    def create_pipes(self, configs: Iterable[dict[str, Any]]) -> None:
        self._request("POST", "/pipes", json=list(configs))

    def create_systems(self, configs: Iterable[dict[str, Any]]) -> None:
        self._request("POST", "/systems", json=list(configs))

    def put_pipe(self, pipe_id: str, config: dict[str, Any]) -> None:
        self._request("PUT", f"/pipes/{q(pipe_id)}/config", json=config)

    def put_system(self, system_id: str, config: dict[str, Any]) -> None:
        self._request("PUT", f"/systems/{q(system_id)}/config", json=config)

    def delete_pipe(self, pipe_id: str) -> None:
        self._request("DELETE", f"/pipes/{q(pipe_id)}", missing_ok=True)

    def delete_system(self, system_id: str) -> None:
        self._request("DELETE", f"/systems/{q(system_id)}", missing_ok=True)

    def delete_dataset(self, dataset_id: str) -> None:
        self._request("DELETE", f"/datasets/{q(dataset_id)}", missing_ok=True)

    def pump_operation(self, pipe_id: str, operation: Operation,
                       **params: str) -> dict[str, Any] | None:
        """The pump JSON the node answers with (None when the answer is not one)."""
        # Sesam takes pump operations as form fields, as sesamclient sends them.
        form = {"operation": operation, **params}
        body = self._request("POST", f"/pipes/{q(pipe_id)}/pump", data=form, answer=True)
        return body if isinstance(body, dict) and isinstance(body.get("runtime"), dict) else None

    def post_env(self, values: dict[str, Any]) -> None:
        self._request("POST", "/env", json=values)

    # --- plumbing ---
    def _list(self, path: str, keep: Callable[[Entry], Any] | None) -> list[Any]:
        def each(at: int, item: Any) -> Any:
            if not (isinstance(item, dict) and isinstance(item.get("_id"), str)):
                raise SesamError(f"{self.node_id} GET {path}: malformed entry at position {at} "
                                 "(not an object with a string '_id')")
            return keep(item) if keep is not None else item
        entries: list[Any] = self._request("GET", path, each=each)   # with `each`: a list
        return entries

    def _request(self, method: str, path: str, *, missing_ok: bool = False, answer: bool = False,
                 each: Callable[[int, Any], Any] | None = None, **kwargs: Any) -> Any:
        """`path` is sent exactly as built (ids quoted by `q`), so a 404 on a delete is about
        that component's own path and nothing else: only then is it "already gone".
        `answer`: a write's parsed answer is wanted (pump operations). With `each`, the
        answer must be a JSON array and the result is [each(position, entry), ...]."""
        where = f"{self.node_id} {method} {path}"
        data = self._slot_and_body(where, kwargs.pop("json", None))
        if data is not None:
            kwargs["data"] = data
            kwargs["headers"] = {"Content-Type": "application/json"}
        try:
            status, headers, body, attempts = self._exchange(
                method, path, where, kwargs, each=each, drop_ok=method != "GET" and not answer)
        except _TooLarge:
            raise SesamError(f"{where}: answer larger than {self._max_answer // 2**20} MB "
                             "(MAX_ANSWER_MB); not read") from None
        finally:
            if data is not None:
                _BODIES.done(data)
            self._slots.release()
        if status == 404 and missing_ok:
            return None
        if status == 403:
            raise SesamForbidden(f"{where}: 403 Forbidden: node {self.node_id} does not let "
                                 f"this jwt_token {operation(method, path)}")
        if status == 400 and method in ("POST", "PUT") and path.startswith(("/pipes", "/systems")):
            raise SesamInvalid(where, _validation_messages(body))
        if status == 401:
            raise SesamError(f"{where}: 401 Unauthorized (the node rejected the jwt_token)")
        if status == 503:
            raise SesamBusy(f"{where}: 503 {reason(503)}")
        if not 200 <= status < 300:
            tries = f" (after {attempts} attempts)" if attempts > 1 else ""
            raise SesamError(f"{where}: {status} {reason(status)}{tries}")
        if method != "GET" and not answer:
            return None
        if method != "GET":   # a write's answer is a bonus: unreadable is not an error
            try:
                return self._parse(where, body, headers)
            except SesamError:
                return None
        if each is not None:
            return body      # parsed as it arrived (_once)
        return self._parse(where, body, headers)

    def _entries(self, where: str, chunks: Iterable[bytes], headers: Any,
                 each: Callable[[int, Any], Any]) -> list[Any]:
        """A listing parsed entry by entry as its chunks arrive: only what `each` keeps of
        each entry stays, never the listing's text (tens of MB for a big master)."""
        with _json_errors(where, headers):
            try:
                # Entries are parsed one by one: without the hook, each would hold its own
                # copy of every key and short value.
                decoder = json.JSONDecoder(object_pairs_hook=self._shared)
                entries = iter_array(chunks, decoder,
                                     max_entry=min(self._max_answer, MAX_ENTRY_MB * 2**20))
                return [each(at, item) for at, item in enumerate(entries)]
            except EntryTooLarge as exc:
                raise SesamError(f"{where}: an entry larger than {exc.limit // 2**20} MB; "
                                 "not read") from None
            except NotAnArray:
                raise SesamError(f"{where}: answer is not a list of components") from None

    def _parse(self, where: str, body: bytes, headers: Any) -> Any:
        with _json_errors(where, headers):
            # Sharing strings pays for itself in memory only on big answers; it costs CPU.
            hook = self._shared if len(body) > _SHARE_ABOVE else None
            return json.loads(body, object_pairs_hook=hook)

    def _exchange(self, method: str, path: str, where: str, kwargs: dict[str, Any], *,
                  each: Callable[[int, Any], Any] | None = None,
                  drop_ok: bool = False) -> tuple[int, Any, Any, int]:
        """Send until an answer is final, the retries are spent or the deadline is near.
        With `each`, a 2xx answer's body is the listing parsed by it (see `_entries`); a
        connection cut midway reads the whole listing again (a GET, so it may). `drop_ok`:
        a 2xx answer's body is read and not kept (a write whose answer is not wanted)."""
        ends = min(time.monotonic() + self._timeout, self._run_ends)
        attempt = 0
        while True:
            attempt += 1
            pause = self._backoff * 2 ** (attempt - 1)
            try:
                status, headers, body = self._once(method, path, where, kwargs, ends, each,
                                                   drop_ok)
            except _Late:
                raise self._late(where, ends) from None
            except _Failed as failed:
                if attempt > self._retries or (failed.sent and method not in _IDEMPOTENT):
                    what = "connection failed or was cut" if failed.sent else "connection failed"
                    tries = f" (after {attempt} attempts)" if attempt > 1 else ""
                    raise SesamError(f"{where}: {what}{tries}") from None
            else:
                if (status not in _RETRY_STATUSES or method not in _IDEMPOTENT
                        or attempt > self._retries):
                    return status, headers, body, attempt
                pause = max(pause, _retry_after(headers))
                if time.monotonic() + pause >= ends:
                    return status, headers, body, attempt   # no time left to try again
            if time.monotonic() + pause >= ends:
                raise self._late(where, ends)
            time.sleep(pause)

    def _once(self, method: str, path: str, where: str, kwargs: dict[str, Any], ends: float,
              each: Callable[[int, Any], Any] | None, drop_ok: bool) -> tuple[int, Any, Any]:
        left = ends - time.monotonic()
        if left <= 0:
            raise _Late()
        url = self.api_url + path
        prepared = requests.PreparedRequest()
        prepared.prepare(method=method, url=url, data=kwargs.get("data"),
                         headers={**self._headers, **kwargs.get("headers", {})})
        prepared.url = url   # as built: requests would turn a quoted `..` back into `..`
        try:
            response = self._adapter.send(prepared, stream=True,
                                          timeout=(min(left, _CONNECT_TIMEOUT), left),
                                          verify=self._verify, cert=self._cert,
                                          proxies=self._proxies)
        except (requests.exceptions.ConnectTimeout, requests.exceptions.ReadTimeout):
            if time.monotonic() >= ends - 0.01:
                raise _Late() from None
            raise _Failed(sent=False) from None   # connect timeout short of the deadline
        except requests.exceptions.ConnectionError as exc:
            inner = getattr(exc.args[0] if exc.args else None, "reason", None)
            if isinstance(inner, ReadTimeoutError):
                raise _Late() from None
            # Refused or unresolvable: nothing reached the node, so even a POST may go again.
            raise _Failed(sent=not isinstance(inner, NewConnectionError)) from None
        except requests.exceptions.RequestException:
            raise _Failed(sent=True) from None
        try:
            chunks = _body_chunks(response, ends, self._max_answer, latest=self._run_ends)
            if each is not None and 200 <= response.status_code < 300:
                return (response.status_code, response.headers,
                        self._entries(where, chunks, response.headers, each))
            if drop_ok and 200 <= response.status_code < 300:
                # Read to its end (the connection is used again), kept nowhere: a node
                # answers a bulk create with the 100 configs it made, and bulks go to
                # every node at once.
                for _ in chunks:
                    pass
                return response.status_code, response.headers, b""
            return response.status_code, response.headers, b"".join(chunks)
        finally:
            response.close()

    def _slot_and_body(self, where: str, value: Any) -> bytes | None:
        """Take one of the node's slots and, for a JSON `value`, make its body once the
        bodies held leave room (_Bodies). Room is waited for without the slot: the node's
        other requests (reads, deletes, pump operations) are never held up by other nodes'
        writes, however slowly a node takes them."""
        while True:
            wait = self._run_ends - time.monotonic()
            if wait <= 0 or not self._slots.acquire(
                    timeout=None if wait == float("inf") else wait):
                raise self._late(where, time.monotonic() + self._timeout)
            if value is None:
                return None
            try:
                data = _BODIES.made(value)
            except BaseException:     # not JSON (NaN, say): the caller's error, slot freed
                self._slots.release()
                raise
            if data is not None:
                return data
            self._slots.release()
            if not _BODIES.room(self._run_ends):
                raise self._late(where, self._run_ends)

    def _late(self, where: str, ends: float) -> SesamTimeout:
        if ends >= self._run_ends:
            return SesamTimeout(f"{where}: not done when the run's deadline of "
                                f"{self._run_timeout:g} s (RUN_TIMEOUT) passed")
        return SesamTimeout(f"{where}: no answer within {self._timeout:g} s "
                            "(REQUEST_TIMEOUT, retries included)")


class _Bodies:
    """The JSON bodies this process holds to send, all nodes together, kept near `limit`
    bytes: a first run sends bulks of 100 configs to every slave at once, and 100 bulks of
    realistic pipes held together were 10 MB or more of a 128 MB container (make bench).
    A body is made only while the bytes held are under the limit, so at most the limit
    plus one body is held, and a body larger than the limit still goes. Made one at a
    time: making one is CPU work the GIL lets only one thread do anyway."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._held = 0
        self._turn = threading.Condition()

    def made(self, value: Any) -> bytes | None:
        """`value` as the JSON bytes to send, counted until `done`; None when there is no
        room now (see `room`)."""
        with self._turn:
            if self._held >= self._limit:
                return None
            # Opaque rules and Digests serialise as what they stand for.
            data = dumps(value)
            self._held += len(data)
            return data

    def done(self, data: bytes) -> None:
        with self._turn:
            self._held -= len(data)
            self._turn.notify_all()

    def room(self, ends: float) -> bool:
        """Wait until there is room for a body; False when there is none by `ends`."""
        with self._turn:
            left = None if ends == float("inf") else ends - time.monotonic()
            return self._turn.wait_for(lambda: self._held < self._limit, timeout=left)


BODIES_MB = 2
_BODIES = _Bodies(BODIES_MB * 2**20)


def _retry_after(headers: Any) -> float:
    value = str(headers.get("Retry-After", "")).strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        return 0.0   # a date or garbage: our own backoff decides


@contextmanager
def _json_errors(where: str, headers: Any) -> Iterator[None]:
    """An answer that is not JSON, or nested too deep to read, as one line naming the node."""
    try:
        yield
    except RecursionError:
        raise SesamError(f"{where}: answer is JSON nested too deeply to read") from None
    except ValueError:
        kind = headers.get("Content-Type", "unknown").split(";")[0][:60]
        raise SesamError(f"{where}: answer is not valid JSON (content type "
                         f"{name(kind)})") from None


def _body_chunks(response: requests.Response, ends: float, limit: int, *,
                 latest: float = float("inf")) -> Iterator[bytes]:
    """The body as it comes, all of it before the deadline: a per-read timeout alone would
    let a node that sends a byte now and then hold the request for ever. At most `limit`
    bytes after decompression (MAX_ANSWER_MB): a gzip bomb stops at the cap. The time the
    caller spends on a chunk (parsing a listing) is not the node's: it moves the request's
    deadline on, never past `latest` (the run's)."""
    raw = response.raw
    size = 0
    try:
        while True:
            left = ends - time.monotonic()
            if left <= 0:
                raise _Late()
            sock = getattr(getattr(raw, "_connection", None), "sock", None)
            if sock is not None:
                sock.settimeout(left)
            chunk = raw.read1(_CHUNK, decode_content=True)
            if not chunk:
                return
            size += len(chunk)
            if size > limit:
                raise _TooLarge()
            handed = time.monotonic()
            yield chunk
            ends = min(ends + time.monotonic() - handed, latest)
    except ReadTimeoutError:
        raise _Late() from None
    except (Urllib3Error, OSError):
        raise _Failed(sent=True) from None
