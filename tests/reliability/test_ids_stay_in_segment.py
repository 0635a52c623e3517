"""Issue 13, point 2: every id stays in its URL segment. `.` and `..` are legal ids on a
Sesam node, but as a path segment they mean "here" and "up": sent as they are, a PUT of
pipe `..` lands on `/api/config` (the whole node's configuration on a real node) and a
DELETE on `/api/`, whose 404 would pass for "already gone"."""
from __future__ import annotations

import pytest

from emulator import EmulatorNode
from service import orchestrator
from service.nodes.client import SesamClient
from service.core.names import q

from orchestration import config_for, originals, writes

DOT_IDS = (".", "..")
SYSTEMS = [{"_id": "a", "type": "system:url", "base_url": "http://x/"}]
PIPES = [{"_id": pid, "type": "pipe", "source": {"type": "json", "system": "a", "url": "t"}}
         for pid in DOT_IDS]


def test_dot_ids_are_quoted_into_their_own_segment():
    assert q(".") == "%2E" and q("..") == "%2E%2E"
    assert q("a.b") == "a.b" and q("...") == "..."     # only whole dot segments move a path


def test_the_emulator_resolves_literal_dot_segments_as_a_front_end_does(node):
    node.seed(pipes=[{"_id": "..", "type": "pipe"}])
    # That is GET /api/config: the whole node's configuration, not the pipe's.
    status, body = node.api("GET", "/pipes/../config")
    assert status == 200 and isinstance(body, list)      # a pipe's config is one object
    status, body = node.api("GET", "/pipes/%2E%2E/config")
    assert status == 200 and body["_id"] == ".."


@pytest.fixture
def dots(nodes):
    master, s1 = nodes(), nodes()
    master.seed(systems=SYSTEMS, pipes=PIPES)
    master.clear_requests()
    return master, s1


def _paths(node: EmulatorNode) -> list[str]:
    return [r["path"] for r in writes(node.requests())]


def test_pipes_named_dot_and_dot_dot_move_and_the_master_is_rewritten_in_place(dots):
    master, s1 = dots
    report = orchestrator.run(config_for(master, {"s1": (s1, ["a"])}))
    assert report.outcome == "ok", report.as_json()
    assert set(DOT_IDS) <= set(originals(s1, "pipes"))
    on_master = originals(master, "pipes")
    for pid in DOT_IDS:
        assert on_master[pid]["metadata"]["orchestrator"]["slave"] == "s1", pid
    # Every write to the master went to a component's own path, none to /api/config.
    assert set(_paths(master)) <= {"/api/pipes/%2E/config", "/api/pipes/%2E%2E/config",
                                   "/api/systems/a/config", "/api/pipes/%2E/pump",
                                   "/api/pipes/%2E%2E/pump", "/api/systems"}, _paths(master)


def test_copies_named_dot_and_dot_dot_are_really_deleted_when_they_move_back(dots):
    master, s1 = dots
    assert orchestrator.run(config_for(master, {"s1": (s1, ["a"])})).outcome == "ok"
    s1.clear_requests()
    report = orchestrator.run(config_for(master, {"s1": (s1, [])}))
    assert report.outcome == "ok", report.as_json()
    left = set(originals(s1, "pipes"))
    assert not left & set(DOT_IDS), left
    assert {"/api/pipes/%2E", "/api/pipes/%2E%2E"} <= set(_paths(s1)), _paths(s1)
    assert "/api/" not in _paths(s1) and "/api/pipes/" not in _paths(s1)


def test_a_404_counts_as_gone_only_for_the_components_own_path(node):
    client = SesamClient(node_id="n", api_url=node.api_url, token=node.token())
    node.seed(pipes=[{"_id": "..", "type": "pipe"}])
    client.delete_pipe("..")
    assert ".." not in originals(node, "pipes")
    assert [r["path"] for r in writes(node.requests())][-1] == "/api/pipes/%2E%2E"
