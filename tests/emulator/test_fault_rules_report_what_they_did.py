"""Fault rules report what they did, and `drop_after` lands the request whatever else the rule
says: a test can prove its fault fired and that a write landed unanswered."""
from __future__ import annotations

import http.client
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from emulator import EmulatorNode

CUT = r"Remote end closed|Connection reset|Connection aborted|EOF"
SYSTEM = {"_id": "s", "type": "system:url", "url_pattern": "http://s/%s"}


def test_a_rule_reports_its_hits_and_what_is_left(node: EmulatorNode) -> None:
    rule = node.add_fault(method="GET", path="^/api/pipes$", skip=1, times=2, status=503)
    assert [r["hits"] for r in node.faults()] == [0]
    assert [node.api("GET", "/pipes")[0] for _ in range(4)] == [200, 503, 503, 200]
    assert node.faults() == [{"id": rule, "method": "GET", "path": "^/api/pipes$",
                              "hits": 2, "landed": 0, "left": 0}]


def test_drop_after_with_a_status_still_carries_the_request_out(node: EmulatorNode) -> None:
    node.add_fault(method="POST", path="^/api/systems$", status=400, drop_after=True)
    with pytest.raises((http.client.HTTPException, ConnectionError), match=CUT):
        node.api("POST", "/systems", [SYSTEM])
    assert [s["_id"] for s in node.api("GET", "/systems")[1]] == ["s"]
    assert [(r["hits"], r["landed"]) for r in node.faults()] == [(1, 1)]


def test_drop_after_on_a_refused_request_is_not_counted_as_landed(node: EmulatorNode) -> None:
    node.add_fault(method="DELETE", path="^/api/systems/", drop_after=True)
    with pytest.raises((http.client.HTTPException, ConnectionError), match=CUT):
        node.api("DELETE", "/systems/nothing-here")
    assert [(r["hits"], r["landed"]) for r in node.faults()] == [(1, 0)]


def test_clearing_the_rules_clears_their_report(node: EmulatorNode) -> None:
    node.add_fault(method="GET", path="^/api/env$", status=500)
    assert node.api("GET", "/env")[0] == 500
    assert node.emulator("DELETE", "/faults")[0] == 200
    assert node.faults() == []


def test_a_held_request_released_goes_on_at_once_and_later_hits_are_held_again(
        node: EmulatorNode) -> None:
    # Held far longer than any test takes: only the release lets these requests go.
    node.add_fault(method="POST", path="^/api/systems$", delay_ms=600_000, times=2)
    assert node.release_held() == 0                      # nothing held yet
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(node.api, "POST", "/systems", [SYSTEM])
        _until(lambda: node.faults()[0]["hits"] == 1)
        assert node.release_held() == 1
        assert first.result()[0] == 201                    # carried out as the rule says
        second = pool.submit(node.api, "POST", "/systems", [{**SYSTEM, "_id": "t"}])
        _until(lambda: node.faults()[0]["hits"] == 2)
        assert not second.done() and node.store.systems.keys() == {"s"}   # held again
        assert node.release_held() == 1
        assert second.result()[0] == 201
    assert [r["status"] for r in node.requests()] == [201, 201]


def test_a_request_counted_by_a_delay_rule_is_held_from_that_moment() -> None:
    """A client that sees a hit counted releases it at once: the request is held from the
    moment its rule counts it, not from when its thread next runs (found in review)."""
    from emulator.faults import Faults
    faults = Faults()
    faults.add({"method": "POST", "path": "^/api/systems$", "delay_ms": 600_000})
    hit = faults.hit("POST", "/api/systems")
    assert hit is not None and faults.release() == 1     # before its thread waits
    assert hit.released is not None and hit.released.is_set()   # so hold() will not wait
    faults.hold(hit)
    assert faults.release() == 0                          # and it is no longer held


def _until(ready) -> None:
    deadline = time.monotonic() + 10
    while not ready():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)
