"""A slave's copy of a pipe is read by its digest (issue 17), and still:

- says whose copy it is: its `$config-group` is kept, so ownership.py tells ours from a
  person's or another orchestrator's;
- shows in a plan as "(differs ...)" rather than as a diff of a near-empty dict;
- changes the plan id when it changes, though its kept marks stay the same;
- is never sent: a digest is no config, and a write of one fails rather than send its marks.
"""
from __future__ import annotations

from typing import Any

import pytest

from service.core.actions import Action, Plan
from service.core.opaque import Digest
from service.core.ownership import GROUP_KEY, group_name, group_of
from service.core.plan_text import DIGEST_DIFFERS, diff, entries, plan_id


def _copy(source: str, group: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"orchestrator": {"master": "http://m"}}
    if group is not None:
        meta[GROUP_KEY] = group
    return {"_id": "p1", "type": "pipe", "source": {"type": "dataset", "dataset": source},
            "metadata": meta}


def test_a_digest_keeps_the_config_group_of_the_copy() -> None:
    ours = Digest(_copy("a", group_name("master")))
    assert group_of(ours) == "orchestrator-master"
    assert group_of(Digest(_copy("a", None))) is None
    assert ours.get("metadata", {}).get("orchestrator") == {"master": "http://m"}
    assert "source" not in ours


def test_an_update_of_a_copy_kept_by_digest_shows_that_the_copy_differs() -> None:
    want = _copy("b", group_name("master"))
    before = Digest(_copy("a", group_name("master")))
    assert diff(before, want) == DIGEST_DIFFERS
    plan = Plan(actions=(Action(kind="update-pipe", node="s1", id="p1", payload=want,
                                reason="r", before=before),))
    assert entries(plan)[0]["diff"] == DIGEST_DIFFERS
    # A plain dict before still gets a line diff.
    assert '-    "dataset": "a",' in diff(_copy("a", None), _copy("b", None)).splitlines()


def test_the_plan_id_changes_when_a_copy_kept_by_digest_changes() -> None:
    want = _copy("c", group_name("master"))

    def plan(source: str) -> Plan:
        before = Digest(_copy(source, group_name("master")))
        return Plan(actions=(Action(kind="update-pipe", node="s1", id="p1", payload=want,
                                    before=before),))
    assert plan_id(plan("a")) == plan_id(plan("a"))
    assert plan_id(plan("a")) != plan_id(plan("b"))


def test_a_copy_kept_by_digest_is_never_sent_as_a_config() -> None:
    from service.nodes.executor import _payload
    kept = Digest(_copy("a", group_name("master")))
    with pytest.raises(ValueError, match="kept by its digest"):
        _payload(Action(kind="update-pipe", node="s1", id="p1", payload=kept))
    whole = _copy("a", group_name("master"))
    assert _payload(Action(kind="update-pipe", node="s1", id="p1", payload=whole)) is whole
