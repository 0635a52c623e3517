"""Datasets: versioned entity logs with a per-dataset monotonic `_updated` offset."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field


def _content(entity: dict) -> dict:
    # What makes two versions "the same": everything but the bookkeeping fields.
    return {k: v for k, v in entity.items() if k not in ("_updated", "_ts", "_hash", "_previous")}


@dataclass
class Dataset:
    id: str
    log: list[dict] = field(default_factory=list)     # every version, in offset order
    latest: dict[str, dict] = field(default_factory=dict)

    def put(self, entity: dict) -> bool:
        """Append a version of `entity` unless it equals the latest one; True if appended."""
        entity = copy.deepcopy(entity)
        entity.setdefault("_deleted", False)
        old = self.latest.get(entity["_id"])
        if old is not None and _content(old) == _content(entity):
            return False
        entity["_updated"] = len(self.log)
        if old is not None:
            entity["_previous"] = old["_updated"]
        self.log.append(entity)
        self.latest[entity["_id"]] = entity
        return True

    def entities(self, *, since: int | None, limit: int | None, history: bool,
                 deleted: bool) -> list[dict]:
        start = 0 if since is None else since + 1
        rows = self.log[start:]
        if not history:
            rows = [e for e in rows if self.latest[e["_id"]] is e]
        if not deleted:
            rows = [e for e in rows if not e.get("_deleted")]
        if limit is not None:
            rows = rows[:limit]
        return copy.deepcopy(rows)

    def summary(self) -> dict:
        live = sum(1 for e in self.latest.values() if not e.get("_deleted"))
        return {"_id": self.id,
                "runtime": {"count-indexed": live, "count-log": len(self.log),
                            "last-modified": None},
                "storage": 0}
