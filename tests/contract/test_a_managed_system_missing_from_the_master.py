"""A managed system missing from the master's listing (deleted by a user, or a half-broken
answer) is reported, and nothing of it is deleted or moved while it is missing; when it comes
back (re-uploaded, or under another slave) it moves again and the runs converge (contract 6).
"""
from __future__ import annotations


from contract_helpers import (CRM_PIPES, Cluster, assert_originals_kept, assert_steady, copy_in,
                              has_dataset, ids, meta, original, pipe_runtime, start_pipe)


# Found in review round 1 (fixed since).
def test_managed_system_deleted_from_master_after_move_deletes_nothing(nodes):
    c = Cluster(nodes)
    cfg = c.placed()
    s1 = c.slaves["s1"]
    start_pipe(s1, "crm-person")
    assert has_dataset(s1, "crm-person")
    # the user (or a half-broken master listing) drops the managed system
    assert c.master.api("DELETE", "/systems/crm")[0] == 200
    report = c.run(cfg)
    assert any("crm" in w for w in report.warnings), report.warnings
    assert copy_in(s1, "systems", "crm") == c.systems[0]     # the only copy left
    assert {"crm-person", "crm-order"} <= ids(s1, "pipes")
    assert has_dataset(s1, "crm-person")


# An attack from review round 2, survived.
def test_missing_system_reuploaded_by_the_user_moves_again_and_converges(nodes):
    c = Cluster(nodes)
    cfg = c.synced_on_s1()
    s1 = c.slaves["s1"]
    seen = pipe_runtime(c.master, "crm-person")["last-seen"]
    assert c.master.api("DELETE", "/systems/crm")[0] == 200
    c.clear()
    c.run(cfg)
    assert not c.writes()["s1"]                      # untouched while missing
    new_crm = {**c.systems[0], "description": "re-uploaded"}
    assert c.master.api("POST", "/systems", [new_crm])[0] in (200, 201)
    assert c.run(cfg).outcome == "ok"
    assert copy_in(s1, "systems", "crm") == new_crm
    assert meta(original(c.master, "systems", "crm"))["original_configuration"] == new_crm
    assert pipe_runtime(c.master, "crm-person")["last-seen"] == seen    # same source: no reset
    assert has_dataset(s1, "crm-person")
    assert_originals_kept(c, [new_crm, c.systems[1]], c.pipes)
    assert_steady(c, cfg)


# An attack from review round 2, survived.
def test_missing_system_reappears_under_another_slave_moves_with_reset(nodes):
    c = Cluster(nodes)
    c.synced_on_s1()
    s1, s2 = c.slaves["s1"], c.slaves["s2"]
    saved = original(c.master, "systems", "crm")          # the generated one, with the marker
    assert c.master.api("DELETE", "/systems/crm")[0] == 200
    moved = c.config({"s1": [], "s2": ["erp", "crm"]})
    c.clear()
    report = c.run(moved)
    assert any("crm" in w for w in report.warnings)
    assert not c.writes()["s1"] and set(CRM_PIPES) <= ids(s1, "pipes")
    assert "crm" not in ids(s2, "systems")
    # the listing comes back as it was (a half-broken answer healed)
    assert c.master.api("POST", "/systems", [saved])[0] in (200, 201)
    assert c.run(moved).outcome == "ok"
    assert copy_in(s2, "systems", "crm") == c.systems[0]
    for pid in CRM_PIPES:
        assert meta(original(c.master, "pipes", pid))["slave"] == "s2"
        assert pipe_runtime(c.master, pid)["last-seen"] in (None, "")
    assert "crm" not in ids(s1, "systems") and not set(CRM_PIPES) & ids(s1, "pipes")
    assert_originals_kept(c, c.systems, c.pipes)
    assert_steady(c, moved)


# An attack from review round 2, survived.
def test_untouched_pipe_edited_while_its_system_is_missing_moves_when_it_returns(nodes):
    c = Cluster(nodes)
    cfg = c.placed()
    s1 = c.slaves["s1"]
    saved = original(c.master, "systems", "crm")
    assert c.master.api("DELETE", "/systems/crm")[0] == 200
    edited = {**c.pipes[0], "description": "edited while crm was missing"}
    # a user upload, no marker; naming a missing system, a node takes it only when forced
    assert c.master.api("PUT", "/pipes/crm-person/config?force=true", edited)[0] == 200
    c.clear()
    c.run(cfg)
    assert not c.writes()["s1"] and copy_in(s1, "pipes", "crm-person") == c.pipes[0]
    assert original(c.master, "pipes", "crm-person") == edited   # nothing lost either
    assert c.master.api("POST", "/systems", [saved])[0] in (200, 201)
    assert c.run(cfg).outcome == "ok"
    assert copy_in(s1, "pipes", "crm-person") == edited
    assert meta(original(c.master, "pipes", "crm-person"))["original_configuration"] == edited
    assert_steady(c, cfg)
