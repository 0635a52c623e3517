"""The planner as the pure function it is: snapshots in, a plan out, no I/O, no clock."""
from __future__ import annotations

import copy
import json
from datetime import datetime, timezone

from service.config import load_config
from service.core.planner import plan
from service.core.snapshots import Component, NodeSnapshot, uses_of

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
CONFIG = load_config({
    "MASTER_NODE": json.dumps({"_id": "m", "endpoint": "https://m.example", "jwt_token": "t"}),
    "SLAVE_NODES": json.dumps([
        {"_id": "s1", "endpoint": "https://s1.example", "jwt_token": "t", "managed_systems": ["crm"]},
        {"_id": "s2", "endpoint": "https://s2.example", "jwt_token": "t", "managed_systems": []}]),
})


def _component(config: dict) -> Component:
    return Component.using(config["_id"], config, uses_of(config["_id"], config))


def _node(node_id: str, systems=(), pipes=(), env=None) -> NodeSnapshot:
    return NodeSnapshot(node_id=node_id, systems={s["_id"]: _component(s) for s in systems},
                        pipes={p["_id"]: _component(p) for p in pipes},
                        env=env if env is not None else {}, secrets=frozenset())


MASTER = _node("m", systems=[{"_id": "crm", "type": "system:url", "base_url": "http://x/"}],
               pipes=[{"_id": "crm-in", "type": "pipe",
                       "source": {"type": "json", "system": "crm", "url": "p"}},
                      {"_id": "local", "type": "pipe"}],
               env={"a": 1})
# A copy this orchestrator wrote earlier (its config group names master m): ours to clean up.
LEFTOVER = {"_id": "old", "type": "pipe", "sink": {"type": "dataset", "dataset": "old-data"},
            "metadata": {"$config-group": "orchestrator-m"}}


def test_same_snapshots_same_plan_and_the_snapshots_are_not_touched():
    slaves = {"s1": _node("s1"), "s2": _node("s2", pipes=[LEFTOVER])}
    before = copy.deepcopy((MASTER, slaves))
    first = plan(CONFIG, MASTER, slaves, now=NOW)
    second = plan(CONFIG, MASTER, slaves, now=NOW)
    assert [(a.describe(), a.after) for a in first.actions] == \
        [(a.describe(), a.after) for a in second.actions]
    assert (MASTER, slaves) == before


def test_every_prerequisite_comes_earlier_and_the_slave_is_written_first():
    slaves = {"s1": _node("s1"), "s2": _node("s2", pipes=[LEFTOVER])}
    actions = plan(CONFIG, MASTER, slaves, now=NOW).actions
    assert all(d < i for i, a in enumerate(actions) for d in a.after)
    kinds = [(a.kind, a.node, a.id) for a in actions]
    assert kinds == [
        ("set-env", "s1", "env"), ("create-system", "s1", "crm"), ("create-pipe", "s1", "crm-in"),
        ("set-env", "s2", "env"),
        ("update-system", "m", "crm"), ("update-pipe", "m", "crm-in"),
        ("quiesce-pipe", "s2", "old"), ("delete-dataset", "s2", "old-data"),
        ("delete-pipe", "s2", "old")]
    by_key = {k: i for i, k in enumerate(kinds)}
    assert by_key["create-pipe", "s1", "crm-in"] in actions[by_key["update-pipe", "m", "crm-in"]].after
    assert actions[by_key["delete-pipe", "s2", "old"]].after == (by_key["delete-dataset", "s2", "old-data"],)
    # The pipe cannot run (and write its dataset again) before the dataset goes.
    assert actions[by_key["delete-dataset", "s2", "old-data"]].after == (by_key["quiesce-pipe", "s2", "old"],)


def test_an_unreadable_slave_gets_nothing_and_what_should_go_there_stays():
    plan_ = plan(CONFIG, MASTER, {"s1": None, "s2": _node("s2")}, now=NOW)
    assert [a for a in plan_.actions if a.node in ("s1", "m")] == []


def test_a_master_without_pipes_or_systems_aborts_with_nothing_planned():
    for empty in (_node("m", systems=[{"_id": "crm", "type": "system:url"}]),   # no pipes
                  _node("m", pipes=[{"_id": "p", "type": "pipe"}])):            # no systems
        result = plan(CONFIG, empty, {"s1": _node("s1"), "s2": _node("s2")}, now=NOW)
        assert result.aborted and result.actions == () and "no pipes or no systems" in result.errors[0]
    assert plan(CONFIG, None, {}, now=NOW).aborted
