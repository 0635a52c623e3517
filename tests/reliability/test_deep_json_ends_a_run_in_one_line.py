"""Issue 13, point 6: deep or odd JSON from a node ends a run with one line naming the
node, never a traceback. Past Python's nesting limit the parser itself gives up (a node
answering 100,000 nested lists); below it, the planner could still run out of stack on a
config a few hundred levels deep."""
from __future__ import annotations

import json

import pytest

from service import orchestrator

from orchestration import config_for, originals, writes

SYSTEMS = [{"_id": "a", "type": "system:url", "base_url": "http://x/"}]
PIPES = [{"_id": "p", "type": "pipe", "source": {"type": "json", "system": "a", "url": "t"}}]


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.fixture
def setup(nodes):
    master, s1 = nodes(), nodes()
    master.seed(systems=SYSTEMS, pipes=PIPES)
    s1.seed(pipes=[{"_id": "leftover", "type": "pipe"}])

    def config():
        return config_for(master, {"s1": (s1, ["a"])})
    return master, s1, config


def _listing_with(node, depth: int, *, after: str = '"type": "pipe"') -> str:
    """The node's own pipe list, with a value `depth` lists deep in one pipe's config, after
    `after` (by default at the config's top level, which only the planner walks)."""
    status, body = node.api("GET", "/pipes")
    assert status == 200
    return json.dumps(body).replace(after, after + ', "x": ' + _nested(depth))


def test_a_master_answering_100k_nested_lists_aborts_in_one_line(setup):
    master, s1, config = setup
    master.add_fault(method="GET", path="^/api/pipes$", body=_nested(100_000), times=10)
    report = orchestrator.run(config())
    assert report.outcome == "aborted"
    assert report.errors == ["master master could not be read: master GET /pipes: answer is "
                             "JSON nested too deeply to read; nothing was changed"]


def test_a_slave_answering_100k_nested_lists_is_named_and_left_alone(setup):
    master, s1, config = setup
    s1.add_fault(method="GET", path="^/api/systems$", body=_nested(100_000), times=10)
    s1.clear_requests()
    report = orchestrator.run(config())
    assert report.outcome == "failed"
    assert any(e.startswith("slave s1 could not be read: s1 GET /systems: answer is JSON "
                            "nested too deeply") for e in report.errors), report.errors
    assert writes(s1.requests()) == []
    assert "leftover" in originals(s1, "pipes")


def test_a_config_deep_enough_to_exhaust_the_stack_later_is_one_line_naming_the_node(setup):
    master, s1, config = setup
    master.add_fault(method="GET", path="^/api/pipes$", body=_listing_with(master, 700),
                     times=10)
    report = orchestrator.run(config())       # must not raise RecursionError
    assert report.outcome == "failed"
    assert report.errors == ["node master holds configs nested too deeply to handle; the run "
                             "stopped"], report.errors


def test_a_source_too_deep_to_read_what_it_names_stops_the_read_in_one_line(setup):
    """What a pipe's source, sink and transforms name is worked out as its listing is read:
    a source nested that deep stops the read there, naming the node, and nothing changes."""
    master, s1, config = setup
    master.add_fault(method="GET", path="^/api/pipes$",
                     body=_listing_with(master, 700, after='"url": "t"'), times=10)
    s1.clear_requests()
    report = orchestrator.run(config())       # must not raise RecursionError
    assert report.outcome == "aborted"
    assert report.errors == ["master master could not be read: master GET /pipes: answer is "
                             "JSON nested too deeply to read; nothing was changed"]
    assert writes(s1.requests()) == []


def test_a_refusal_whose_body_is_nested_too_deeply_is_still_one_line(setup):
    master, s1, config = setup
    s1.add_fault(method="POST", path="^/api/pipes$", status=400, body=_nested(100_000))
    report = orchestrator.run(config())
    assert report.outcome == "failed"
    assert any("create-pipe p on s1 failed: s1 POST /pipes: 400 refused (no details)" in e
               for e in report.errors), report.errors
    assert all("\n" not in e for e in report.errors)
