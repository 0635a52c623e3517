"""Issue 13, point 3: deadlines. Each request has one wall-clock deadline (connect, send,
the whole body, retries and their pauses), REQUEST_TIMEOUT; each run one too, RUN_TIMEOUT.
A node that trickles its answer a byte at a time, or says nothing, cannot hold a run (or
the run lock) longer than that, and the messages give the figures that really applied."""
from __future__ import annotations

import time

import pytest

from service import orchestrator
from service.nodes.client import SesamClient, SesamTimeout
from service.config import ConfigError
from service.web.runner import Runner

from orchestration import config_for, originals

# Deadlines count the pauses between retries: these tests keep the service's own.
pytestmark = pytest.mark.real_backoff

SYSTEMS = [{"_id": "a", "type": "system:url", "base_url": "http://x/"},
           {"_id": "b", "type": "system:url", "base_url": "http://x/"}]
PIPES = [{"_id": f"{s}-in-{i}", "type": "pipe",
          "source": {"type": "json", "system": s, "url": "t"}} for s in "ab" for i in range(3)]


@pytest.fixture
def setup(nodes):
    master, s1, s2 = nodes(), nodes(), nodes()
    master.seed(systems=SYSTEMS, pipes=PIPES)
    s2.seed(pipes=[{"_id": f"leftover-{i}", "type": "pipe"} for i in range(5)])

    def config(**variables):
        return config_for(master, {"s1": (s1, ["a"]), "s2": (s2, ["b"])}, **variables)
    return master, s1, s2, config


def test_a_trickling_node_fails_its_request_at_the_request_deadline(setup):
    master, s1, s2, config = setup
    # 5 ms a byte: the list of two systems takes seconds; every read returns at once, so a
    # per-read timeout alone would never fire.
    s2.add_fault(method="GET", path="^/api/pipes$", trickle_ms=5, times=10)
    report = orchestrator.run(config(REQUEST_TIMEOUT="0.5"))
    assert report.outcome == "failed"
    assert any("s2 GET /pipes: no answer within 0.5 s" in e for e in report.errors), \
        report.errors
    assert "a-in-0" in originals(s1, "pipes")       # the other slave went ahead
    # The request alone, timed: seconds of body at 5 ms a byte, cut at its deadline.
    _alone_the_listing_ends_at_its_deadline(s2)


def _alone_the_listing_ends_at_its_deadline(s2) -> None:
    """s2's pipe listing read by a client of its own with a 0.5 s deadline: cut at it, with
    the message that says so."""
    client = SesamClient(node_id="s2", api_url=s2.api_url, token=s2.token(), timeout=0.5)
    began = time.monotonic()
    with pytest.raises(SesamTimeout, match=r"^s2 GET /pipes: no answer within 0\.5 s"):
        client.list_pipes()
    assert time.monotonic() - began < 1.5


def test_a_silent_node_takes_the_time_the_message_says_retries_included(setup):
    master, s1, s2, config = setup
    s2.add_fault(method="GET", path="^/api/pipes$", delay_ms=3000, times=10)
    report = orchestrator.run(config(REQUEST_TIMEOUT="0.5"))
    assert any("s2 GET /pipes: no answer within 0.5 s (REQUEST_TIMEOUT, retries included)" in e
               for e in report.errors), report.errors
    # Not four attempts of 0.5 s each plus 1.4 s of backoff (3.4 s), as it used to be.
    _alone_the_listing_ends_at_its_deadline(s2)


def test_a_run_past_its_deadline_ends_failed_in_one_line_and_frees_the_lock(setup):
    master, s1, s2, config = setup
    for n in (master, s1, s2):       # every write lags: the run's chain of writes is long
        n.add_fault(writes_only=True, delay_ms=400, times=1000)
    cfg = config(REQUEST_TIMEOUT="1", RUN_TIMEOUT="1.2")
    runner = Runner(config=cfg, run=orchestrator.run)
    began = time.monotonic()
    report = runner.sync(trigger="api")
    took = time.monotonic() - began
    assert report.outcome == "failed"
    late = [e for e in report.errors if "RUN_TIMEOUT" in e]
    assert len(late) == 1 and "deadline of 1.2 s" in late[0], report.errors
    assert took < 4.0, took        # 1.2 s, one request cut at it, and a loaded machine
    assert not runner.running                         # the lock is free again
    # Nothing half-reported: every planned action has a final status, none is left open.
    assert report.actions and all(a["status"] in ("done", "failed", "skipped")
                                  for a in report.actions), report.actions
    for n in (master, s1, s2):
        n.emulator("DELETE", "/faults")
    assert runner.sync(trigger="api").outcome == "ok"  # and the next run completes it


def test_run_timeout_is_checked_against_the_request_timeout(setup):
    master, s1, s2, config = setup
    with pytest.raises(ConfigError, match=r"^RUN_TIMEOUT: is shorter than REQUEST_TIMEOUT"):
        config(REQUEST_TIMEOUT="30", RUN_TIMEOUT="10")
    assert config().run_timeout == 3600
