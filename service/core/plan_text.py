"""A plan a person can approve: each step with its reason, flags and the difference it makes
to the component's config, a summary on top, and an id that names exactly this plan.

`entries` and `summary` are the data (`--plan --json`, GET /plan); `render` is the text
(`--plan`). Config values pass through `mask` first: credential fields lose their values
(a `$SECRET(..)`/`$ENV(..)` reference is a name and stays), then the run's redaction blanks
out any token or credential value it knows wherever it still appears.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from service.core.actions import Action, Plan
from service.core.generated import built
from service.core.names import name
from service.core.opaque import Digest, thaw
from service.redaction import REDACTED

MAX_DIFF_LINES = 60          # a first run creates thousands of configs: show the start of each
MAX_DIFFS = 300              # ... and the first few hundred of them (the service has 128 MB)
_CREDENTIAL_KEY = re.compile(r"(?i)passw(or)?d|secret|token|api[_-]?key|credential")
_REFERENCE = re.compile(r"\$(SECRET|ENV)\([\w.-]*\)")
_WRITES = frozenset({"create-system", "update-system", "create-pipe", "update-pipe", "set-env"})


def mask(value: Any) -> Any:
    """A copy of a config with the value of every credential field blanked out (walked
    without recursion: configs may be nested deeply)."""
    root: list[Any] = [value]
    stack: list[tuple[Any, Any, Any]] = [(root, 0, value)]
    while stack:
        parent, key, item = stack.pop()
        if isinstance(item, dict):
            copy: Any = {}
            for k, v in item.items():
                if isinstance(v, str) and _CREDENTIAL_KEY.search(str(k)) \
                        and not _REFERENCE.fullmatch(v):
                    copy[k] = REDACTED
                else:
                    copy[k] = v
                    stack.append((copy, k, v))
            parent[key] = copy
        elif isinstance(item, list):
            copy = list(item)
            stack.extend((copy, i, v) for i, v in enumerate(item))
            parent[key] = copy
    return root[0]


def _credentials(config: Any) -> dict[str, str]:
    """path -> value of every credential field in a config (walked without recursion)."""
    found: dict[str, str] = {}
    stack: list[tuple[str, Any]] = [("", config)]
    while stack:
        path, item = stack.pop()
        pairs = item.items() if isinstance(item, dict) else \
            enumerate(item) if isinstance(item, list) else ()
        for k, v in pairs:
            where = f"{path}.{k}" if path else str(k)
            if isinstance(v, str) and _CREDENTIAL_KEY.search(str(k)):
                found[where] = v
            elif isinstance(v, (dict, list)):
                stack.append((where, v))
    return found


def _masked_changes(before: Any, after: Any) -> list[str]:
    """Masked on both sides, a changed credential would not show: say so by its path."""
    was, will = _credentials(before), _credentials(after)
    return [f"~ {path} changed (value masked)" for path in sorted(set(was) & set(will))
            if was[path] != will[path] and not _REFERENCE.fullmatch(was[path])
            and not _REFERENCE.fullmatch(will[path])]


def _lines(config: Any) -> list[str]:
    if config is None:
        return []
    # DTL rules read as Opaque text are shown as the JSON they stand for, line by line.
    return json.dumps(mask(thaw(config)), indent=2, sort_keys=True,
                      ensure_ascii=False).splitlines()


# A slave's copy of a pipe, and a sync pipe the orchestrator wrote in the master, are read
# only by their digest (service/core/opaque.Digest): no lines to show.
DIGEST_DIFFERS = ("(differs: what the node holds is compared by its digest, its lines are "
                  "not kept)")


def diff(before: Any, after: Any) -> str:
    """The before -> after difference as unified-diff lines (no file headers), capped."""
    if isinstance(before, Digest):
        return DIGEST_DIFFERS
    try:
        lines = [line for line in difflib.unified_diff(_lines(before), _lines(after), n=1,
                                                       lineterm="")
                 if not line.startswith(("---", "+++"))]
    except RecursionError:
        return "(too deeply nested to show)"
    lines += _masked_changes(before, after)
    if len(lines) > MAX_DIFF_LINES:
        lines = lines[:MAX_DIFF_LINES] + [f"... {len(lines) - MAX_DIFF_LINES} more line(s)"]
    return "\n".join(lines)


def flags(action: Action, entity_counts: Mapping[tuple[str, str], int]) -> list[str]:
    """What makes a step destructive or costly, for the person approving it."""
    if action.kind == "delete-dataset":
        count = entity_counts.get((action.node, action.id))
        held = f" ({count} entities)" if count is not None else ""
        return [f"destructive: deletes dataset {action.id}{held}"]
    if action.kind in ("delete-pipe", "delete-system"):
        return [f"destructive: deletes {action.kind.split('-')[1]} {action.id}"]
    if action.kind == "reset-pipe":
        return ["costly: full re-read of the pipe's source"]
    return []


def entries(plan: Plan, *, entity_counts: Mapping[tuple[str, str], int] | None = None,
            redact: Callable[[str], str] = lambda text: text) -> list[dict[str, Any]]:
    """One entry per distinct step (a step repeated with the same reason is shown once)."""
    counts = entity_counts or {}
    seen: set[tuple[str, str, str, str]] = set()
    out: list[dict[str, Any]] = []
    diffs = 0
    for action in plan.actions:
        key = (action.kind, action.node, action.id, action.reason)
        if key in seen:
            continue
        seen.add(key)
        entry: dict[str, Any] = {**action.describe(), "status": "planned",
                                 "flags": flags(action, counts)}
        if action.kind in _WRITES:
            diffs += 1
            entry["diff"] = (
                redact(diff(built(action.before), built(action.payload))) if diffs <= MAX_DIFFS
                else f"(not shown: only the first {MAX_DIFFS} writes of a plan show their diff)")
        out.append(entry)
    return out


def summary(planned: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts per kind and per node, and how many steps are flagged."""
    planned = list(planned)
    by_node: dict[str, Counter[str]] = {}
    for entry in planned:
        by_node.setdefault(entry["node"], Counter())[entry["kind"]] += 1
    return {"total": len(planned),
            "by_kind": dict(sorted(Counter(e["kind"] for e in planned).items())),
            "by_node": {node: dict(sorted(c.items())) for node, c in sorted(by_node.items())},
            "flagged": sum(1 for e in planned if e.get("flags"))}


def plan_id(plan: Plan) -> str:
    """A digest of every step with what it writes and what it was based on: it changes when
    the nodes change in any way that changes what a sync would do."""
    digest = hashlib.sha256()
    for action in plan.actions:
        # A Digest's dict holds only its marks: its fingerprint is what says the copy changed.
        before = action.before.fingerprint.hex() if isinstance(action.before, Digest) \
            else built(action.before)
        digest.update(json.dumps([action.kind, action.node, action.id, action.after,
                                  built(action.payload), before], sort_keys=True,
                                 default=str).encode())   # str(Opaque): its text
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def render(data: Mapping[str, Any]) -> str:
    """The plan for a person: summary, then one line per step with its reason, its flags and
    its diff indented below it."""
    planned = data.get("actions", [])
    s = data.get("summary") or summary(planned)
    out = [f"Plan {data.get('plan_id') or '-'}: {s['total']} step(s), {s['flagged']} flagged"]
    for node, kinds in s["by_node"].items():
        out.append(f"  {node}: " + ", ".join(f"{n} {kind}" for kind, n in kinds.items()))
    if not planned:
        out.append("Nothing to do: the nodes are in sync.")
    for i, entry in enumerate(planned, 1):
        out.append(f"{i}. {entry['kind']} {name(entry['id'])} on {entry['node']}: "
                   f"{entry.get('reason') or '-'}")
        out += [f"   !! {flag}" for flag in entry.get("flags", [])]
        out += [f"   {line}" for line in (entry.get("diff") or "").splitlines()]
    out += [f"warning: {w}" for w in data.get("warnings", [])]
    out += [f"error: {e}" for e in data.get("errors", [])]
    return "\n".join(out)
