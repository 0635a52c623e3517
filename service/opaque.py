"""DTL rules carried as compact JSON text: the orchestrator moves them, never reads them.

A pipe's 20-rule DTL transform is ~1.2 KB of JSON but ~13 KB as Python lists and dicts; a
10,000-pipe master holds each one twice (the master's copy and a slave's). Read from a
node, the `rules` of a DTL transform become an `Opaque`: its canonical JSON text, equal to
another Opaque of the same rules and to the same rules as plain lists and dicts. The rules
name no system or dataset the planner looks at (configs.py never enters `rules`), and
`thaw` turns them back into JSON values right before a write.
"""
from __future__ import annotations

import json
from typing import Any


def canonical(value: Any) -> str:
    # Keys sorted: two dicts are equal in Python whatever their key order, so their texts are.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class Opaque(str):
    """Canonical JSON text standing for a JSON value; compares like that value would."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Opaque):
            return str.__eq__(self, other)
        if isinstance(other, (list, dict)):
            return str.__eq__(self, canonical(other))
        return False

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = str.__hash__

    def __repr__(self) -> str:
        return f"Opaque({len(self)} chars)"

    def value(self) -> Any:
        return json.loads(self)


def _freeze_transforms(part: Any) -> None:
    for t in part if isinstance(part, list) else [part]:
        if isinstance(t, dict) and t.get("type") == "dtl" and isinstance(t.get("rules"),
                                                                             (dict, list)):
            t["rules"] = Opaque(canonical(t["rules"]))


def freeze(config: dict[str, Any]) -> dict[str, Any]:
    """In place: the DTL rules of a pipe's transforms, and of the user's config a generated
    pipe keeps in `metadata.orchestrator.original_configuration`, become Opaque."""
    _freeze_transforms(config.get("transform"))
    meta = config.get("metadata")
    mark = meta.get("orchestrator") if isinstance(meta, dict) else None
    inner = mark.get("original_configuration") if isinstance(mark, dict) else None
    if isinstance(inner, dict):
        _freeze_transforms(inner.get("transform"))
    return config


def thaw(value: Any) -> Any:
    """`value` with every Opaque inside turned back into the JSON value it stands for."""
    if isinstance(value, Opaque):
        return value.value()
    if isinstance(value, dict):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value
