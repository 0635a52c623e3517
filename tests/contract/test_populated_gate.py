"""Issue 12.3: a synchronising pipe never does a full run against a slave dataset that is not
populated. The master's dataset stays whole while the slave's copy is on its first run or
failed half-way, and arrives complete afterwards: same entities, no deletes, no duplicates."""
from __future__ import annotations

import pytest

from contract_helpers import Cluster, entities, ids, meta, original, pipe_runtime, start_pipe
from emulator import EmulatorNode

PEOPLE = [{"_id": str(i), "name": f"person {i}"} for i in range(6)]


def _cluster(nodes) -> Cluster:
    """The master ran crm-person against the source before the orchestrator came: its
    dataset holds all six people."""
    c = Cluster(nodes)
    c.src.api("PUT", "/pipes/people/config", {"_id": "people", "type": "pipe",
                                              "source": {"type": "embedded", "entities": PEOPLE}})
    c.src.api("DELETE", "/datasets/people")     # the source holds these six only
    start_pipe(c.src, "people")
    assert start_pipe(c.master, "crm-person")["runtime"]["success"] is True
    assert _live(c.master) == sorted(p["_id"] for p in PEOPLE)
    return c


def _live(node: EmulatorNode) -> list[str]:
    status, body = node.api("GET", "/datasets/crm-person/entities?history=false&deleted=false")
    assert status == 200, body
    return sorted(e["_id"] for e in body)


def _half_written(slave: EmulatorNode) -> None:
    """The copy's first run commits two entities and fails."""
    slave.set_knobs(batch_size=2, fail_after_batches=1)
    pump = start_pipe(slave, "crm-person")
    assert pump["runtime"]["success"] is False
    assert len(entities(slave, "crm-person")) == 2
    slave.set_knobs(fail_after_batches=None)


def _master_stays_whole_then_completes(c: Cluster, slave: EmulatorNode) -> None:
    log_before = entities(c.master, "crm-person")
    pump = start_pipe(c.master, "crm-person")      # the sync pipe, reset by the move
    # What an operator sees meanwhile: the sync pipe fails with 404 (not populated yet).
    assert pump["runtime"]["success"] is False and "404" in pump["runtime"]["last-error"]
    assert entities(c.master, "crm-person") == log_before            # nothing deleted
    assert start_pipe(slave, "crm-person")["runtime"]["success"] is True
    assert start_pipe(c.master, "crm-person")["runtime"]["success"] is True
    assert _live(c.master) == sorted(p["_id"] for p in PEOPLE)
    after = entities(c.master, "crm-person")
    assert after == log_before                        # no deletes, no new versions


def test_a_first_move_keeps_the_masters_dataset_whole_until_the_copy_is_populated(nodes):
    c = _cluster(nodes)
    c.placed()
    s1 = c.slaves["s1"]
    _half_written(s1)
    assert s1.api("GET", "/datasets/crm-person")[1]["runtime"]["populated"] is False
    _master_stays_whole_then_completes(c, s1)


def test_a_new_slave_endpoint_keeps_the_masters_dataset_whole(nodes):
    c = _cluster(nodes)
    managed = {"s1": ["crm"], "s2": ["erp"]}
    c.placed(managed)
    start_pipe(c.slaves["s1"], "crm-person")
    start_pipe(c.master, "crm-person")
    # s1 is replaced by a new, empty node (here: a third emulator) at another address.
    fresh = nodes(jwt_secret="populated-gate-test-key-of-32-or-more-chars")
    c.slaves["s3"] = fresh
    c.tokens["s3"] = fresh.token(expires_in=365 * 86400)
    assert c.run(c.replaced(managed, "s1", by="s3")).outcome == "ok"
    assert pipe_runtime(c.master, "crm-person")["last-seen"] in (None, "")
    _half_written(fresh)
    _master_stays_whole_then_completes(c, fresh)


# --- a user's set_initial_offset would open the gate early ---

@pytest.mark.parametrize("when", ["onload", "initially"])
def test_a_pipe_whose_sink_flags_populated_early_is_not_moved(nodes, when):
    # `onload` flags the slave dataset populated when the copy is written, `initially` when
    # its first run starts: the gate would let the master's sync pipe read it half-written,
    # and deletion tracking would delete the rest of the master's dataset. Such a pipe cannot
    # be placed: it stays in the master, running as it did, and so does its system.
    c = _cluster(nodes)
    person = {"_id": "crm-person", "type": "pipe",
              "source": {"type": "json", "system": "crm", "url": "people"},
              "sink": {"type": "dataset", "dataset": "crm-person", "set_initial_offset": when}}
    assert c.master.api("PUT", "/pipes/crm-person/config", person)[0] == 200
    log_before = entities(c.master, "crm-person")
    report = c.run(c.config())
    assert report.outcome == "failed"
    assert any("crm-person" in e and "set_initial_offset" in e for e in report.errors), \
        report.errors
    assert original(c.master, "pipes", "crm-person") == person
    assert meta(original(c.master, "systems", "crm")) is None      # crm stays too
    assert "crm-person" not in ids(c.slaves["s1"], "pipes")
    assert entities(c.master, "crm-person") == log_before
