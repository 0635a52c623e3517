"""Issue 12.6: a user's upload that lands while a run works is never overwritten.

The upload lands right after the master answers the run's read (a hook on the emulator's
request log fires before the answer is sent), so every write the run then plans for that
component is based on the older config. The run re-reads the component right before
overwriting it, skips the write, says so, and the next run moves the upload.
"""
from __future__ import annotations

import threading

from contract_helpers import (copy_in, Cluster, assert_steady, ids, meta, original, put, the_original)


def _upload_after_read(c: Cluster, listing: str, kind: str, config: dict) -> threading.Event:
    """Upload `config` to the master once, right after it answers `GET /api/<listing>`."""
    done = threading.Event()

    def hook(method: str, path: str, status: int) -> None:
        if method == "GET" and path == f"/api/{listing}" and not done.is_set():
            done.set()
            put(c.master, kind, config["_id"], config)
    c.master.add_observer(hook)
    return done


def _changed_warning(report, cid: str) -> bool:
    return any(w.startswith("update-") and cid in w and "changed since the run read it" in w
               for w in report.warnings)


def _upload_during_a_first_move(c: Cluster, kind: str, cid: str, upload: dict):
    """The first move of crm to s1, with `upload` landing in the master right after the
    run read it; the upload is live there, untouched, and the run says why."""
    cfg = c.config({"s1": ["crm"]})
    landed = _upload_after_read(c, kind, kind, upload)
    report = c.run(cfg)
    assert landed.is_set()
    assert original(c.master, kind, cid) == upload
    assert _changed_warning(report, cid), report.warnings
    return cfg


def test_a_pipe_uploaded_while_the_run_moves_it_survives_and_moves_next_run(nodes):
    c = Cluster(nodes)
    upload = {**c.pipes[0], "description": "uploaded while the run worked"}
    cfg = _upload_during_a_first_move(c, "pipes", "crm-person", upload)
    # The next run takes it as the new original and moves it.
    report = c.run(cfg)
    assert report.outcome == "ok", report.errors
    assert copy_in(c.slaves["s1"], "pipes", "crm-person") == upload
    assert meta(original(c.master, "pipes", "crm-person"))["original_configuration"] == upload
    assert_steady(c, cfg)


def test_a_system_uploaded_while_the_run_moves_it_survives_and_moves_next_run(nodes):
    c = Cluster(nodes)
    upload = {**c.systems[0], "description": "uploaded while the run worked"}
    cfg = _upload_during_a_first_move(c, "systems", "crm", upload)
    # No master pipe was turned into a sync pipe reading through the user's crm meanwhile.
    for pid in ("crm-person", "crm-order"):
        assert meta(original(c.master, "pipes", pid)) is None
    report = c.run(cfg)
    assert report.outcome == "ok", report.errors
    assert copy_in(c.slaves["s1"], "systems", "crm") == upload
    assert the_original(c.master, "systems", "crm") == upload
    assert meta(original(c.master, "systems", "crm"))["slave"] == "s1"
    assert {"crm-person", "crm-order"} <= ids(c.slaves["s1"], "pipes")
    assert_steady(c, cfg)


def test_an_upload_over_a_generated_pipe_being_healed_survives(nodes):
    c = Cluster(nodes)
    cfg = c.placed({"s1": ["crm"]})
    # Someone hand-edits the generated sync pipe (the run will heal it) and, while the run
    # works, the user uploads a new version of the pipe.
    generated = original(c.master, "pipes", "crm-person")
    put(c.master, "pipes", "crm-person", {**generated, "description": "hand-edited"})
    upload = {**c.pipes[0], "sink": {"type": "dataset", "dataset": "people-v2"}}
    _upload_after_read(c, "pipes", "pipes", upload)
    report = c.run(cfg)
    assert original(c.master, "pipes", "crm-person") == upload
    assert _changed_warning(report, "crm-person"), report.warnings
    report = c.run(cfg)
    assert report.outcome == "ok", report.errors
    assert copy_in(c.slaves["s1"], "pipes", "crm-person") == upload
    assert the_original(c.master, "pipes", "crm-person") == upload
    assert_steady(c, cfg)


def _config_reads(c: Cluster) -> int:
    return sum(1 for r in c.master.requests()
               if r["method"] == "GET" and r["path"].endswith("/config"))


def test_the_re_read_costs_one_get_per_master_overwrite_and_nothing_in_steady_state(nodes):
    c = Cluster(nodes)
    cfg = c.config()
    c.clear()
    assert c.run(cfg).outcome == "ok"
    puts = sum(1 for r in c.master.requests()
               if r["method"] == "PUT" and r["path"].endswith("/config"))
    assert puts > 0 and _config_reads(c) == puts
    c.clear()
    assert c.run(cfg).actions == []
    assert _config_reads(c) == 0 and c.no_writes()
