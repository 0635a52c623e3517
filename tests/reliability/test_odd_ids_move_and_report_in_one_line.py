"""Ids a Sesam node accepts but code may trip on (quotes, `|`, `%`, backslashes, non-ASCII, 300
characters, `:`, `?`, spaces, newlines) move, sync data, stay steady and come back; every
report entry and log line about them, --once or served, stays one line.
"""
from __future__ import annotations

import logging

import pytest

from contract_helpers import (Cluster, copy_in, dataset_ids, entities, ids, meta, original,
                              start_pipe)
from service import orchestrator


# Odd, but valid on a real node (no '/' in ids).
ODD_SYSTEM = 'crm\\ä "x" 50% <b>'


ODD_PIPES = ['p|1 "q" 50%', "ünï ☃ 'x'", "l" * 300]
NL_BAD = {"_id": 'split\nERROR forged "line"', "type": "pipe",
          "source": {"type": "json", "system": "crm", "url": "x"},
          "sink": {"type": "json", "system": "erp", "url": "y"}}
NL_IN = {"_id": 'in\nINFO forged "q"', "type": "pipe",
         "source": {"type": "json", "system": "crm", "url": "people"}}


def _newline_cluster(nodes):
    c = Cluster(nodes, seed=False)
    c.master.seed(systems=c.systems, pipes=[*c.pipes, NL_BAD, NL_IN])
    return c


# Found in review round 1 (fixed since).
@pytest.mark.parametrize("dataset", ["a:b", "q?x", "with space"])   # no '/': invalid on a node
def test_odd_dataset_id_flows_through_the_sync_pipe(nodes, dataset):
    c = Cluster(nodes, seed=False)
    odd = {"_id": "odd-in", "type": "pipe", "source": {"type": "json", "system": "crm",
                                                      "url": "people"},
           "sink": {"type": "dataset", "dataset": dataset}}
    c.master.seed(systems=c.systems, pipes=[*c.pipes, odd])
    c.placed()
    start_pipe(c.slaves["s1"], "odd-in")
    assert {e["_id"] for e in entities(c.slaves["s1"], dataset)} == {"a", "b"}
    start_pipe(c.master, "odd-in")
    assert {e["_id"] for e in entities(c.master, dataset)} == {"a", "b"}


# An attack from review round 1, survived.
def test_odd_ids_move_steady_state_and_move_back(nodes):
    c = Cluster(nodes, seed=False)
    system = {**c.systems[0], "_id": ODD_SYSTEM}
    # (sink datasets with plain ids: odd dataset ids are their own bug, see above)
    pipes = [{"_id": pid, "type": "pipe", "source": {"type": "json", "system": ODD_SYSTEM,
                                                     "url": "people"},
              "sink": {"type": "dataset", "dataset": f"odd-{i}"}}
             for i, pid in enumerate(ODD_PIPES)]
    # the usual pipes, less those naming 'crm', which this master does not hold
    usual = [p for p in c.pipes if p["source"].get("system") != "crm"]
    c.master.seed(systems=[system, c.systems[1]], pipes=[*usual, *pipes])
    cfg = c.placed({"s1": [ODD_SYSTEM], "s2": []})
    s1 = c.slaves["s1"]
    assert copy_in(s1, "systems", ODD_SYSTEM) == system
    for p in pipes:
        assert copy_in(s1, "pipes", p["_id"]) == p
        assert meta(original(c.master, "pipes", p["_id"]))["slave"] == "s1"
        start_pipe(s1, p["_id"])
        start_pipe(c.master, p["_id"])
        assert {e["_id"] for e in entities(c.master, p["sink"]["dataset"])} == {"a", "b"}
    c.clear()
    assert c.run(cfg).outcome == "ok" and c.no_writes(), c.writes()
    report = c.run(c.config({"s1": [], "s2": []}))
    assert report.outcome == "ok", report.errors
    assert original(c.master, "systems", ODD_SYSTEM) == system
    for p in pipes:
        assert original(c.master, "pipes", p["_id"]) == p
    assert ids(s1, "pipes") == set() and ids(s1, "systems") == set()
    assert not dataset_ids(s1) & {"odd-0", "odd-1", "odd-2"}


# An attack from review round 1, survived.
def test_errors_and_warnings_are_one_line_each_for_hostile_ids(nodes):
    c = Cluster(nodes, seed=False)
    bad = {"_id": 'two "slaves" | 50%', "type": "pipe",
           "source": {"type": "json", "system": "crm", "url": "x"},
           "sink": {"type": "json", "system": "erp", "url": "y"}}
    c.master.seed(systems=c.systems, pipes=[*c.pipes, bad])
    c.master.add_fault(method="PUT", path="^/api/systems/", status=400, times=100)
    report = c.run(c.config({"s1": ["crm", "ghost"], "s2": ["erp"]}))
    assert report.outcome == "failed"
    assert report.errors and report.warnings
    for line in (*report.errors, *report.warnings):
        assert "\n" not in line
        for token in c.tokens.values():
            assert token not in line
    assert original(c.master, "pipes", bad["_id"]) == bad


# Found in review round 4 (fixed since).
def test_report_errors_are_one_line_for_ids_with_newlines(nodes):
    c = _newline_cluster(nodes)
    report = c.run(c.config())
    assert report.outcome == "failed"                 # NL_BAD cannot be placed
    assert any("split" in e for e in report.errors)
    for line in (*report.errors, *report.warnings):
        assert "\n" not in line and "\r" not in line, line


# Found in review round 4 (fixed since).
def test_once_log_lines_are_one_line_for_ids_with_newlines(nodes, caplog):
    # README: logs name the component with "ids quoted, so an id cannot forge a second
    # line"; --once logs a run's lines as the served process does (service.runs).
    from service.__main__ import once
    c = _newline_cluster(nodes)
    with caplog.at_level(logging.INFO, logger="service"):
        once(c.config(), dry_run=False)
    moved = [r for r in caplog.records if "forged" in r.getMessage()]
    assert moved
    for record in moved:
        assert "\n" not in record.getMessage(), record.getMessage()


# Found in review round 4 (fixed since).
def test_serving_log_lines_are_one_line_for_ids_with_newlines(nodes, caplog):
    # The service's own lines (web/runner.py's Runner) quote ids and fold errors onto one line.
    from service.web.runner import Runner
    c = _newline_cluster(nodes)
    runner = Runner(config=c.config(), run=orchestrator.run)
    with caplog.at_level(logging.INFO, logger="service.runs"):
        report = runner.sync()
    assert report.outcome == "failed"
    lines = [r.getMessage() for r in caplog.records if r.name == "service.runs"]
    assert any("forged" in line for line in lines)
    assert all("\n" not in line for line in lines), [x for x in lines if "\n" in x]
