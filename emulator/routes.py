"""The /api routes: (method, regex) -> handler(node, request) -> (status, body)."""
from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import configgroups, pump
from .datasets import BINARY_TYPE
from .kinds import Kind
from .store import ApiError, Store


@dataclass(frozen=True)
class Request:
    method: str
    args: tuple[str, ...]          # decoded path segments captured by the route
    query: dict[str, str]
    body: object                   # parsed JSON, or a dict of form fields, or None
    admin: bool
    principals: frozenset[str] = frozenset()
    accept: str = ""               # the request's Accept header


@dataclass(frozen=True)
class RawBody:
    """A body already encoded (sent as is) with its media type."""
    data: bytes
    content_type: str


@dataclass(frozen=True)
class RawJSON:
    """A body already encoded as JSON (sent as is)."""
    data: bytes


# A handler answers (status, body), or (status, body, headers) when it adds answer headers.
Answer = tuple[int, object] | tuple[int, object, dict[str, str]]
Handler = Callable[[Store, Request], Answer]
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        ROUTES.append((method, re.compile("^" + pattern + "$"), fn))
        return fn
    return register


SEG = "([^/]+)"


def _fields(items: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
    # The swagger's `fields` parameter: keep only the named top-level keys (and _id).
    wanted = query.get("fields")
    if not wanted:
        return items
    keep = {f.strip() for f in wanted.split(",")} | {"_id"}
    return [{k: v for k, v in item.items() if k in keep} for item in items]


_PLURALS: dict[Kind, str] = {"pipe": "pipes", "system": "systems"}
for _kind, _plural in _PLURALS.items():
    @route("GET", f"/{_plural}")
    def list_all(store: Store, req: Request, _k: Kind = _kind) -> tuple[int, object]:
        if not req.query.get("fields"):
            return 200, RawJSON(store.listing_raw(_k))
        return 200, _fields(store.listing(_k), req.query)

    @route("POST", f"/{_plural}")
    def add(store: Store, req: Request, _k: Kind = _kind) -> tuple[int, object]:
        return 201, store.add(_k, req.body, force=_flag(req.query, "force", False))

    @route("GET", f"/{_plural}/{SEG}")
    def get_one(store: Store, req: Request, _k: Kind = _kind) -> tuple[int, object]:
        return 200, store.get(_k, req.args[0])

    @route("DELETE", f"/{_plural}/{SEG}")
    def delete_one(store: Store, req: Request, _k: Kind = _kind) -> tuple[int, object]:
        return 200, store.delete(_k, req.args[0])

    @route("GET", f"/{_plural}/{SEG}/config")
    def get_config(store: Store, req: Request, _k: Kind = _kind) -> tuple[int, object]:
        return 200, store.get(_k, req.args[0])["config"]["original"]

    @route("PUT", f"/{_plural}/{SEG}/config")
    def put_config(store: Store, req: Request, _k: Kind = _kind) -> tuple[int, object]:
        return 200, store.replace(_k, req.args[0], req.body,
                                  force=_flag(req.query, "force", False))


@route("GET", f"/pipes/{SEG}/pump")
def get_pump(store: Store, req: Request) -> tuple[int, object]:
    with store.lock:
        if req.args[0] not in store.pipes:
            raise ApiError(404, "no pipe with that id")
        return 200, pump.pump_json(req.args[0], store.pipes[req.args[0]])


@route("POST", f"/pipes/{SEG}/pump")
def post_pump(store: Store, req: Request) -> tuple[int, object]:
    form = req.body if isinstance(req.body, dict) else {}
    return pump.operate(store, req.args[0], {k: str(v) for k, v in form.items()})


@route("GET", "/datasets")
def list_datasets(store: Store, req: Request) -> tuple[int, object]:
    with store.lock:
        return 200, _fields([d.summary() for d in store.datasets.values()], req.query)


@route("GET", f"/datasets/{SEG}")
def get_dataset(store: Store, req: Request) -> tuple[int, object]:
    with store.lock:
        return 200, store.dataset(req.args[0]).summary()


@route("DELETE", f"/datasets/{SEG}")
def delete_dataset(store: Store, req: Request) -> tuple[int, object]:
    with store.lock:
        found = store.dataset(req.args[0]).summary()
        del store.datasets[req.args[0]]
        return 200, found


def _int(query: dict[str, str], name: str) -> int | None:
    if query.get(name) in (None, ""):
        return None
    try:
        return int(query[name])
    except ValueError:
        raise ApiError(400, f"'{name}' must be an integer") from None


def _flag(query: dict[str, str], name: str, default: bool) -> bool:
    value = query.get(name)
    return default if value is None else value.lower() not in ("false", "0", "no")


@route("GET", f"/datasets/{SEG}/entities")
def get_entities(store: Store, req: Request) -> tuple[int, object, dict[str, str]]:
    with store.lock:
        ds = store.dataset(req.args[0])
        if _flag(req.query, "populated", False) and not ds.populated:
            # swagger: with populated=true, 404 until the pipe's first complete full run.
            raise ApiError(404, "the dataset is not populated yet")
        rows = ds.entities(since=_int(req.query, "since"), limit=_int(req.query, "limit"),
                           history=_flag(req.query, "history", True),
                           deleted=_flag(req.query, "deleted", True))
        if BINARY_TYPE in req.accept:
            packed = gzip.compress(json.dumps(rows).encode("utf-8"))
            return 200, RawBody(packed, BINARY_TYPE), ds.headers()
        return 200, rows, ds.headers()


def _admin(req: Request) -> None:
    if not req.admin:
        raise ApiError(403, "this operation requires a token issued to group:Admin")


@route("GET", "/env")
def get_env(store: Store, req: Request) -> tuple[int, object]:
    _admin(req)
    with store.lock:
        return 200, dict(store.env)


for _method, _replace in (("PUT", True), ("POST", False), ("PATCH", False)):
    @route(_method, "/env")
    def set_env(store: Store, req: Request, _r: bool = _replace) -> tuple[int, object]:
        _admin(req)
        return 200, store.set_env(req.body, replace=_r)


@route("DELETE", f"/env/{SEG}")
def delete_env(store: Store, req: Request) -> tuple[int, object]:
    _admin(req)
    store.delete_env(req.args[0])
    return 200, {}


@route("GET", "/secrets")
def get_secrets(store: Store, req: Request) -> tuple[int, object]:
    _admin(req)
    with store.lock:
        return 200, sorted(store.secrets)


for _method, _replace in (("PUT", True), ("POST", False)):
    @route(_method, "/secrets")
    def set_secrets(store: Store, req: Request, _r: bool = _replace) -> tuple[int, object]:
        _admin(req)
        return 200, store.set_secrets(req.body, replace=_r)


@route("DELETE", f"/secrets/{SEG}")
def delete_secret(store: Store, req: Request) -> tuple[int, object]:
    _admin(req)
    store.delete_secret(req.args[0])
    return 200, {}


@route("GET", f"/systems/{SEG}/secrets")
def get_system_secrets(store: Store, req: Request) -> tuple[int, object]:
    _admin(req)
    return 200, store.system_secret_names(req.args[0])


for _method, _replace in (("PUT", True), ("POST", False)):
    @route(_method, f"/systems/{SEG}/secrets")
    def set_system_secrets(store: Store, req: Request, _r: bool = _replace) -> tuple[int, object]:
        _admin(req)
        return 200, store.set_system_secrets(req.args[0], req.body, replace=_r)


@route("DELETE", f"/systems/{SEG}/secrets/{SEG}")
def delete_system_secret(store: Store, req: Request) -> tuple[int, object]:
    _admin(req)
    store.delete_system_secret(req.args[0], req.args[1])
    return 200, {}


def _uploader(req: Request) -> None:
    # security.rst's role table: "Upload config" is for Admin and Developer only.
    if not req.principals & {"group:Admin", "group:Developer"}:
        raise ApiError(403, "uploading config requires group:Admin or group:Developer")


@route("GET", "/config")
def get_config_default(store: Store, req: Request) -> tuple[int, object]:
    return 200, configgroups.export(store, configgroups.DEFAULT)


@route("GET", f"/config/{SEG}")
def get_config_group(store: Store, req: Request) -> tuple[int, object]:
    return 200, configgroups.export(store, req.args[0])


@route("PUT", "/config")
def put_config_default(store: Store, req: Request) -> tuple[int, object]:
    _uploader(req)
    return configgroups.upload(store, configgroups.DEFAULT, req.body,
                               force=_flag(req.query, "force", False))


@route("PUT", f"/config/{SEG}")
def put_config_group(store: Store, req: Request) -> tuple[int, object]:
    _uploader(req)
    return configgroups.upload(store, req.args[0], req.body,
                               force=_flag(req.query, "force", False))
