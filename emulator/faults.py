"""Fault rules: make chosen /api requests fail (status), vanish (drop), lag (delay) or
trickle (the answer's body sent one byte at a time, `trickle_ms` apart).

A request a rule's delay holds can be let go before the delay is up (`release`): a test that
holds a write while it kills the client need not then wait the rest of the delay out.

`drop_after` wins over `status` and `body`: the node carries the request out and cuts the
connection, so "landed but unanswered" happens whatever else the rule says."""
from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass
from typing import Any

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class Rule:
    id: int
    method: str
    path: re.Pattern[str]
    writes_only: bool
    skip: int
    times: int
    status: int | None
    drop: bool
    delay_ms: int
    # The request is carried out, then the connection is cut: the client never learns it landed.
    drop_after: bool = False
    # A raw answer instead of the node's: e.g. an HTML error page or truncated JSON.
    body: str | None = None
    content_type: str = "application/json"
    headers: dict[str, str] | None = None
    # The answer's body goes out one byte per `trickle_ms` ms: a node (or a proxy) that
    # keeps a connection alive without ever finishing its answer.
    trickle_ms: int = 0
    # The status line's reason phrase, as a misbehaving node or proxy might word it.
    reason: str | None = None
    # What the rule did, for GET /_emulator/faults: a test proves its fault fired.
    hits: int = 0
    # drop_after hits whose request the node carried out with a 2xx (landed, answer lost).
    landed: int = 0

    def report(self) -> dict[str, Any]:
        return {"id": self.id, "method": self.method, "path": self.path.pattern,
                "hits": self.hits, "landed": self.landed, "left": self.times}

    def matches(self, method: str, path: str) -> bool:
        if self.method != "*" and self.method.upper() != method:
            return False
        if self.writes_only and method not in WRITES:
            return False
        return bool(self.path.search(path))


def parse_rule(rule_id: int, body: object) -> Rule:
    """A Rule from the POST /_emulator/faults body; ValueError on a bad shape."""
    if not isinstance(body, dict):
        raise ValueError("fault rule must be a JSON object")
    status = body.get("status")
    if status is not None and not isinstance(status, int):
        raise ValueError("status must be an integer or null")
    return Rule(id=rule_id, method=str(body.get("method", "*")),
                path=re.compile(str(body.get("path", ""))),
                writes_only=bool(body.get("writes_only", False)),
                skip=int(body.get("skip", 0)), times=int(body.get("times", 1)),
                status=status, drop=bool(body.get("drop", False)),
                delay_ms=int(body.get("delay_ms", 0)),
                drop_after=bool(body.get("drop_after", False)),
                body=None if body.get("body") is None else str(body["body"]),
                content_type=str(body.get("content_type", "application/json")),
                headers={str(k): str(v) for k, v in (body.get("headers") or {}).items()},
                trickle_ms=int(body.get("trickle_ms", 0)),
                reason=None if body.get("reason") is None else str(body["reason"]))


@dataclass(frozen=True)
class Hit:
    """A request a rule fired for. `released`: for a rule with a delay, what release() sets
    to let the request go on; held from the moment the rule counts the request, so a
    release right after a client sees the hit never misses it."""
    rule: Rule
    released: threading.Event | None = None


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._ids = itertools.count(1)
        self._held: set[threading.Event] = set()     # one per request a delay holds now

    def add(self, body: object) -> int:
        rule = parse_rule(next(self._ids), body)
        with self._lock:
            self._rules.append(rule)
        return rule.id

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def hit(self, method: str, path: str) -> Hit | None:
        """The first rule that fires for this request; counts skips and hits down."""
        with self._lock:
            for rule in self._rules:
                if rule.times <= 0 or not rule.matches(method, path):
                    continue
                if rule.skip > 0:
                    rule.skip -= 1
                    continue
                rule.times -= 1
                rule.hits += 1
                released = threading.Event() if rule.delay_ms else None
                if released is not None:
                    self._held.add(released)
                return Hit(rule, released)
        return None

    def hold(self, hit: Hit) -> None:
        """Wait out the rule's delay, or less when release() lets the request go first."""
        if hit.released is None:
            return
        try:
            hit.released.wait(hit.rule.delay_ms / 1000)
        finally:
            with self._lock:
                self._held.discard(hit.released)

    def release(self) -> int:
        """Let every request a delay holds now go on at once (to what its rule does next);
        how many there were. Later hits are held as before."""
        with self._lock:
            held, self._held = self._held, set()
        for released in held:
            released.set()
        return len(held)

    def landed(self, rule: Rule) -> None:
        with self._lock:
            rule.landed += 1

    def report(self) -> list[dict[str, Any]]:
        """Every rule with how often it fired (rules stay listed after their last hit)."""
        with self._lock:
            return [rule.report() for rule in self._rules]
