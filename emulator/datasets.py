"""Datasets: versioned entity logs with a per-dataset monotonic `_updated` offset."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from .copying import json_copy

# The emulator's stand-in for Sesam's binary entity protocol (which is not public): the
# JSON array of entities, gzip-compressed, under this media type. A `binary` source asks
# for it and reads nothing else, so it can never silently read JSON.
BINARY_TYPE = "application/x-sesam-emulator-binary"


def _content(entity: dict[str, Any]) -> dict[str, Any]:
    # What makes two versions "the same": everything but the bookkeeping fields.
    return {k: v for k, v in entity.items() if k not in ("_updated", "_ts", "_hash", "_previous")}


@dataclass
class Dataset:
    id: str
    log: list[dict[str, Any]] = field(default_factory=list)     # every version, in offset order
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Set by the sink once a complete view of its source is in (Sesam's "initial offset").
    populated: bool = False
    # A new UUID each time a dataset of this id is created (X-Dataset-Generation).
    generation: str = field(default_factory=lambda: str(uuid.uuid4()))

    def put(self, entity: dict[str, Any]) -> bool:
        """Append a version of `entity` unless it equals the latest one; True if appended."""
        entity = json_copy(entity)
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

    def delete_unseen(self, seen: set[str]) -> int:
        """Deletion tracking after a full run: a deleted version of every live entity whose
        id the run did not see. Returns how many were deleted."""
        gone = [eid for eid, e in self.latest.items() if eid not in seen and not e.get("_deleted")]
        for eid in gone:
            self.put({**_content(self.latest[eid]), "_deleted": True})
        return len(gone)

    def max_updated(self) -> int | None:
        return self.log[-1]["_updated"] if self.log else None

    def headers(self) -> dict[str, str]:
        """The X-Dataset-* answer headers of Sesam's JSON pull protocol."""
        return {"X-Dataset-Populated": "true" if self.populated else "false",
                "X-Dataset-Max-Updated": "null" if not self.log else str(self.max_updated()),
                "X-Dataset-Generation": self.generation}

    def entities(self, *, since: int | None, limit: int | None, history: bool,
                 deleted: bool) -> list[dict[str, Any]]:
        start = 0 if since is None else since + 1
        rows = self.log[start:]
        if not history:
            rows = [e for e in rows if self.latest[e["_id"]] is e]
        if not deleted:
            rows = [e for e in rows if not e.get("_deleted")]
        if limit is not None:
            rows = rows[:limit]
        return json_copy(rows)

    def summary(self) -> dict[str, Any]:
        live = sum(1 for e in self.latest.values() if not e.get("_deleted"))
        return {"_id": self.id,
                "runtime": {"count-indexed": live, "count-log": len(self.log),
                            "last-modified": None, "populated": self.populated},
                "storage": 0}
