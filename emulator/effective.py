"""Original config -> effective config, and the config errors Sesam would report."""
from __future__ import annotations

import re
from typing import Any

from .copying import json_copy

NODE_SYSTEM = "system:sesam-node"
_ENV = re.compile(r"\$ENV\(([^)]*)\)")
# Source/sink types served by the node itself rather than by a user system.
_NODE_TYPES = {"dataset", "embedded", "merge", "union_datasets", "diff_datasets",
               "merge_datasets", "null", "conditional", "http_endpoint", "empty"}
# Types whose missing `system` validation.py reports already (as a missing required property).
_CHECKED_ELSEWHERE = {"json", "binary"}


def expand_env(value: object, env: dict[str, Any]) -> object:
    """Replace $ENV(name) in every string; a string that is exactly $ENV(x) takes x's value."""
    if isinstance(value, str):
        if "$ENV(" not in value:      # most strings: no regex needed
            return value
        whole = _ENV.fullmatch(value)
        if whole and whole.group(1) in env:
            return json_copy(env[whole.group(1)])
        return _ENV.sub(lambda m: str(env.get(m.group(1), m.group(0))), value)
    if isinstance(value, list):
        return [expand_env(v, env) for v in value]
    if isinstance(value, dict):
        return {k: expand_env(v, env) for k, v in value.items()}
    return value


def _error(role: str, msg: str) -> dict[str, Any]:
    # The PipeConfigError shape of the swagger.
    return {"elements": f"$['{role}']", "level": "error", "msg": msg}


def _resolve_conditional(part: object, role: str, errors: list[dict[str, Any]]) -> object:
    """A `conditional` source or sink is the alternative its `condition` names (Sesam
    resolves it when the pipe is created); a condition with no alternative is a config
    error, and then the part stays as it was."""
    if not isinstance(part, dict) or part.get("type") != "conditional":
        return part
    alternatives, key = part.get("alternatives"), part.get("condition")
    if isinstance(alternatives, dict) and isinstance(key, str) and key in alternatives:
        return json_copy(alternatives[key])
    errors.append(_error(role, f"conditional {role}: no alternative for condition {key!r}"))
    return {**part, "system": NODE_SYSTEM}


def _expanded(config: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    # expand_env on an object, typed as the object it returns. expand_env builds every list
    # and dict anew, so the result shares nothing mutable with `config`.
    return {k: expand_env(v, env) for k, v in config.items()}


def pipe_effective(original: dict[str, Any], *,
                   env: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The pipe's effective config and the errors its shape shows (validation.py checks
    what it names)."""
    eff = _expanded(original, env)
    errors: list[dict[str, Any]] = []
    eff.setdefault("source", {"type": "embedded", "entities": []})
    eff.setdefault("sink", {"type": "dataset", "dataset": original["_id"]})
    eff.setdefault("pump", {})
    for role in ("source", "sink"):
        eff[role] = part = _resolve_conditional(eff[role], role, errors)
        if not isinstance(part, dict):
            errors.append(_error(role, f"{role} must be an object"))
            continue
        part.setdefault("type", "dataset")
        if "system" not in part:
            part["system"] = NODE_SYSTEM if part["type"] in _NODE_TYPES else None
        if part["system"] is None and part["type"] not in _CHECKED_ELSEWHERE:
            errors.append(_error(role, f"{role} of type '{part['type']}' needs a system"))
    if isinstance(eff["source"], dict) and eff["source"].get("type") == "dataset":
        eff["source"].setdefault("dataset", None)
    return eff, errors


def system_effective(original: dict[str, Any], *, env: dict[str, Any]) -> dict[str, Any]:
    return _expanded(original, env)
