"""The config errors a Sesam node reports for a pipe or a system.

A write whose component has errors is refused with 400 (unless `force=true`); a stored
component that a later change breaks (an env var, a system or a secret deleted) reports
them in `runtime.config-errors`. Each rule names its source in docs/emulator.md.
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from .kinds import Kind, Role

_ENV = re.compile(r"\$ENV\(([^)]*)\)")
_SECRET = re.compile(r"\$SECRET\(([^)]*)\)")
# Types whose `system` must be of one of these types (the doc of each source/sink/transform).
_SYSTEM_TYPES = {
    "json": ("system:url", "system:microservice"),
    "http": ("system:url", "system:microservice"),
    "binary": ("system:url",),
    "rest": ("system:rest",),
}
# Required properties per (role, type); a json/binary source/sink also needs `system`.
_REQUIRED: dict[tuple[Role, str | None], tuple[str, ...]] = {
    ("source", "json"): ("system", "url"),
    ("source", "binary"): ("system", "url"),
    ("source", "dataset"): ("dataset",),
    ("source", "embedded"): ("entities",),
    ("sink", "json"): ("system", "url"),
    ("sink", "dataset"): ("dataset",),
    ("transform", "http"): ("system", "url"),
    ("transform", "rest"): ("system",),
}
# Keys under which a source, sink or transform holds further ones, and their role.
_NESTED: dict[str, Role] = {"source": "source", "sources": "source", "sink": "sink",
                            "transform": "transform"}


def error(path: str, msg: str) -> dict[str, Any]:
    """One error in the swagger's PipeConfigError shape."""
    return {"elements": path, "level": "error", "msg": msg}


def _strings(value: object) -> list[str]:
    """Every string in a JSON value, keys included, in document order. A loop rather than
    nested generators: it runs over every config a node takes, DTL rules and all."""
    found: list[str] = []
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, list):
            todo.extend(reversed(item))
        elif isinstance(item, dict):
            for k, v in reversed(item.items()):
                todo += (v, k)
    return found


def _names(pattern: re.Pattern[str], marker: str, value: object) -> set[str]:
    # `marker` is the pattern's fixed start: most strings lack it and skip the regex.
    return {m for s in _strings(value) if marker in s for m in pattern.findall(s)}


def env_errors(original: dict[str, Any], env: Mapping[str, object]) -> list[dict[str, Any]]:
    names = sorted(_names(_ENV, "$ENV(", original) - set(env))
    return [error("$", f"the environment variable '{n}' is not defined") for n in names]


def _id_errors(kind: Kind, cid: str, other_ids: set[str]) -> list[dict[str, Any]]:
    errors = []
    if "/" in cid:
        errors.append(error("$['_id']", f"a {kind} id cannot contain '/'"))
    if cid in other_ids:
        other = "system" if kind == "pipe" else "pipe"
        errors.append(error("$['_id']", f"the id '{cid}' is already used by a {other}"))
    return errors


def parts(value: object, role: Role, path: str) -> Iterator[tuple[Role, str, dict[str, Any]]]:
    """(role, json path, part) for a source, sink or transform(s) and every one nested in
    it (conditional alternatives, a source's or a sink's own source/sink/transform)."""
    items = value if isinstance(value, list) else [value]
    for i, part in enumerate(items):
        if not isinstance(part, dict):
            continue
        here = path + (f"[{i}]" if isinstance(value, list) else "")
        yield role, here, part
        alternatives = part.get("alternatives")
        if isinstance(alternatives, dict):
            for name, alt in alternatives.items():
                yield from parts(alt, role, f"{here}['alternatives']['{name}']")
        for key, sub_role in _NESTED.items():
            if key in part:
                yield from parts(part[key], sub_role, f"{here}['{key}']")


def _all_parts(effective: dict[str, Any]) -> Iterator[tuple[Role, str, dict[str, Any]]]:
    roles: tuple[Role, ...] = ("source", "sink", "transform")
    for role in roles:
        yield from parts(effective.get(role), role, f"$['{role}']")


def systems_named(effective: dict[str, Any]) -> set[str]:
    """Every system a pipe names, in source, sink, transforms and nested ones."""
    return {p["system"] for _, _, p in _all_parts(effective) if isinstance(p.get("system"), str)}


def _part_errors(role: Role, path: str, part: dict[str, Any],
                 systems: Mapping[str, str]) -> list[dict[str, Any]]:
    errors = []
    ptype = part.get("type")
    for prop in _REQUIRED.get((role, ptype), ()):
        if part.get(prop) in (None, ""):
            errors.append(error(f"{path}['{prop}']",
                                f"a {role} of type '{ptype}' needs the property '{prop}'"))
    system = part.get("system")
    if isinstance(system, str) and not system.startswith("system:"):
        if system not in systems:
            errors.append(error(f"{path}['system']", f"unknown system '{system}'"))
        elif ptype in _SYSTEM_TYPES and systems[system] not in _SYSTEM_TYPES[ptype]:
            errors.append(error(f"{path}['system']",
                                f"system '{system}' is of type '{systems[system]}', which a "
                                f"{role} of type '{ptype}' cannot use"))
    for key in ("dataset", "datasets"):
        for did in _strings(part.get(key)) if role != "transform" else ():
            if "/" in did:
                errors.append(error(f"{path}['{key}']", "a dataset id cannot contain '/'"))
    if role == "sink" and ptype == "dataset" and str(part.get("dataset", "")).startswith("system:"):
        errors.append(error(f"{path}['dataset']",
                            "a dataset sink cannot write a 'system:' dataset"))
    return errors


def pipe_errors(original: dict[str, Any], effective: dict[str, Any], *, env: Mapping[str, object],
                systems: Mapping[str, str], system_ids: set[str]) -> list[dict[str, Any]]:
    """`systems`: id -> type of every system the node holds."""
    errors = env_errors(original, env) + _id_errors("pipe", original["_id"], system_ids)
    # secrets.rst: a secret can only be used in certain places; the pipe docs (rest source,
    # sink, transform) allow them only on the system. Stricter reading: none in a pipe.
    for name in sorted(_names(_SECRET, "$SECRET(", original)):
        errors.append(error("$", f"the secret '{name}' is used in a pipe: secrets can only be "
                                 "used in system configs"))
    for role, path, part in _all_parts(effective):
        errors += _part_errors(role, path, part, systems)
    return errors


def system_errors(original: dict[str, Any], *, env: Mapping[str, object], secrets: set[str],
                  pipe_ids: set[str]) -> list[dict[str, Any]]:
    """`secrets`: the names of the global secrets and of this system's own ones."""
    errors = env_errors(original, env) + _id_errors("system", original["_id"], pipe_ids)
    for name in sorted(_names(_SECRET, "$SECRET(", original) - secrets):
        errors.append(error("$", f"the secret '{name}' is not defined"))
    if original.get("type") == "system:url":
        given = [k for k in ("url_pattern", "base_url") if original.get(k) not in (None, "")]
        if len(given) != 1:
            errors.append(error("$", "a system:url needs exactly one of 'url_pattern' and "
                                     "'base_url'"))
    return errors


def refusal(kind: Kind,
            rejected: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> dict[str, Any]:
    """The 400 body: sesamclient's `validation_errors` list. `posted-config` carries only the
    id and type, never the rest (it may hold a token)."""
    return {"message": f"the {kind} config has errors; nothing was stored (force=true stores it "
                       "anyway, as invalid)",
            "status": 400,
            "validation_errors": [
                {"posted-config": {"_id": c.get("_id"), "type": c.get("type")},
                 "is-valid-config": False, "config-errors": errs}
                for c, errs in rejected]}
