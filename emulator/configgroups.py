"""Whole-config upload and download per config group (GET/PUT /config, /config/{group}).

Each pipe and system belongs to one config group, named by `metadata.$config-group`; without
it, to the default group. A PUT replaces everything in its group: what the upload leaves out
is deleted (a pipe's dataset stays, as for DELETE /pipes/{id}; a system's local secrets go
with it). Without `force=true` an upload with any config error changes nothing.
"""
from __future__ import annotations

import copy
import json
from typing import Any, Literal

from .copying import json_copy
from .kinds import Kind
from .store import ApiError, Store, check_config

DEFAULT = ""          # the default group: components with no $config-group
GROUP_KEY = "$config-group"
# What an upload may change: restored as a whole when it is refused.
_CONFIG_STATE = ("pipes", "systems", "system_json", "pipe_json", "system_secrets",
                 "node_metadata")
# What an uploaded config entity is: a component, or the node's metadata (`_id: node`).
Entry = Kind | Literal["metadata"]


def group_of(original: dict[str, Any]) -> str:
    meta = original.get("metadata")
    group = meta.get(GROUP_KEY) if isinstance(meta, dict) else None
    return group if isinstance(group, str) else DEFAULT


def export(store: Store, group: str) -> list[dict[str, Any]]:
    """The group's config as a list of config entities: node metadata, systems, pipes."""
    with store.lock:
        found: list[dict[str, Any]] = []
        if group == DEFAULT and store.node_metadata is not None:
            found.append(json_copy(store.node_metadata))
        found += [json_copy(s) for _, s in sorted(store.systems.items())
                  if group_of(s) == group]
        found += [json_copy(p.original) for _, p in sorted(store.pipes.items())
                  if group_of(p.original) == group]
        return found


def parse_upload(body: object) -> list[object]:
    """The uploaded entities: a JSON body, or the `file` field of a multipart form."""
    if isinstance(body, dict) and isinstance(body.get("file"), (bytes, str)):
        raw = body["file"]
        try:
            body = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "the uploaded config is not JSON (zip archives are not "
                                "modelled by the emulator)") from None
    if not isinstance(body, list):
        raise ApiError(400, "a config upload must be a JSON array of config entities")
    return body


def _checked(items: list[object], group: str) -> list[tuple[Entry, dict[str, Any]]]:
    """(kind, config) per item; 400 on the first item that cannot be placed at all."""
    out: list[tuple[Entry, dict[str, Any]]] = []
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("_id"), str):
            raise ApiError(400, "each config entity must be a JSON object with a string '_id'")
        cid, ctype = item["_id"], item.get("type")
        if cid in seen:
            raise ApiError(400, f"config entity '{cid}' appears twice in the upload")
        seen.add(cid)
        meta = item.get("metadata")
        if meta is not None and not isinstance(meta, dict):
            raise ApiError(400, f"config entity '{cid}': 'metadata' must be an object")
        named = (meta or {}).get(GROUP_KEY, group or None)
        if named != (group or None):
            raise ApiError(400, f"config entity '{cid}' names config group {named!r}, "
                                f"not the group {group or 'default'!r} it is uploaded to")
        if ctype == "metadata":
            if group != DEFAULT or cid != "node":
                raise ApiError(400, "node metadata ('_id': 'node') belongs to the default group")
            out.append(("metadata", json_copy(item)))
            continue
        kind: Kind = "pipe" if ctype == "pipe" else "system"
        config = check_config(item, kind=kind)
        if group != DEFAULT:
            config["metadata"] = {**(config.get("metadata") or {}), GROUP_KEY: group}
        out.append((kind, config))
    return out


def upload(store: Store, group: str, body: object, *, force: bool) -> tuple[int, dict[str, Any]]:
    items = _checked(parse_upload(body), group)
    with store.lock:
        _refuse_foreign_ids(store, items, group)
        saved = {name: copy.deepcopy(getattr(store, name)) for name in _CONFIG_STATE}
        _replace_group(store, items, group)
        errors = _validation_errors(store, [c for k, c in items if k != "metadata"])
        if errors and not force:
            for name, value in saved.items():
                setattr(store, name, value)
            return 400, {"validation_errors": errors}
        return 200, {"validation_errors": errors}


def _refuse_foreign_ids(store: Store, items: list[tuple[Entry, dict[str, Any]]],
                        group: str) -> None:
    # An id held in another group (by either kind of component) is a conflict the docs do
    # not resolve: the stricter reading refuses the upload. Within the group, what the
    # upload leaves out is deleted, so only the other groups can conflict.
    held = {cid: group_of(p.original) for cid, p in store.pipes.items()}
    held.update({cid: group_of(cfg) for cid, cfg in store.systems.items()})
    for kind, config in items:
        owner = held.get(config["_id"])
        if kind != "metadata" and owner is not None and owner != group:
            raise ApiError(400, f"'{config['_id']}' belongs to config group "
                                f"{owner or 'default'!r}")


def _replace_group(store: Store, items: list[tuple[Entry, dict[str, Any]]], group: str) -> None:
    keep = {(k, c["_id"]) for k, c in items}
    for pid in [p for p, pipe in store.pipes.items() if group_of(pipe.original) == group]:
        if ("pipe", pid) not in keep:
            store.delete("pipe", pid)
    for sid in [s for s, cfg in store.systems.items() if group_of(cfg) == group]:
        if ("system", sid) not in keep:
            store.delete("system", sid)
    if group == DEFAULT:
        store.node_metadata = next((c for k, c in items if k == "metadata"), None)
    # Systems first, so pipes naming them are judged against the new systems.
    for kind, config in sorted(items, key=lambda kc: kc[0] != "system"):
        if kind != "metadata":
            store.put_config(kind, config)


def _validation_errors(store: Store, configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    errors = []
    for config in configs:
        kind: Kind = "pipe" if config.get("type") == "pipe" else "system"
        runtime = store.get(kind, config["_id"])["runtime"]
        if runtime.get("is-valid-config") is False:
            errors.append({"config-entity-id": config["_id"],
                           "config-errors": runtime.get("config-errors", [])})
    return errors
