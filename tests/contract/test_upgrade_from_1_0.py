"""Issue 14, point 5: upgrading a master that orchestrator 1.0 left.

What 1.0 left is known only from its README: each pipe of a managed system copied to its
slave and replaced in the master by a synchronising pipe with the same _id, the original
config "kept in the metadata property", pulls every sync_interval seconds plus a *random*
stagger. The layout of that metadata is not described; these tests assume the contract's
(`metadata.orchestrator = {slave, url, original_configuration}`), the master's system as a
system:url reading `<slave>/api/datasets/%s/entities?history=false` (no `populated=true`,
no timeouts of 2.0's), no generated description; and they show what a dry run says when
the layout differs, which README's upgrade section tells the operator to look for.
"""
from __future__ import annotations

import copy
import html
import random
import re

from service import orchestrator
from service.web.app import create_app
from service.web.runner import Runner

from contract_helpers import Cluster, entities, has_dataset, originals, put

MANAGED = {"s1": ["crm"], "s2": []}
GENERATED = (("systems", "crm"), ("pipes", "crm-person"), ("pipes", "crm-order"))


def _left_by_1_0(nodes, *, metadata_layout: str = "contract") -> tuple[Cluster, object]:
    """A master and slave as 1.0 left them, data synchronised."""
    c = Cluster(nodes)
    config = c.placed(MANAGED)
    c.sync(c.slaves["s1"])
    stagger = random.Random(10)      # 1.0 drew its stagger at random
    for kind, cid in GENERATED:
        _, body = c.master.api("GET", f"/{kind}/{cid}")
        old = copy.deepcopy(body["config"]["original"])
        old.pop("description")
        if kind == "systems":
            old["url_pattern"] = old["url_pattern"].replace("&populated=true", "")
            del old["connect_timeout"], old["read_timeout"]
        else:
            old["pump"]["schedule_interval"] = 300 + stagger.randrange(300)
        if metadata_layout != "contract":
            old["metadata"] = {"original_configuration":
                               old["metadata"]["orchestrator"]["original_configuration"]}
        put(c.master, kind, cid, old)
    c.clear()
    return c, config


def test_the_first_run_rewrites_three_master_components_and_nothing_else(nodes):
    c, config = _left_by_1_0(nodes)
    before = {d: sorted(e["_id"] for e in entities(c.master, d)) for d in ("crm-person", "orders")}
    report = c.run(config)
    assert report.outcome == "ok", report.errors
    assert report.warnings == []
    assert sorted((a["kind"], a["node"], a["id"]) for a in report.actions) == [
        ("update-pipe", "master", "crm-order"), ("update-pipe", "master", "crm-person"),
        ("update-system", "master", "crm")]
    writes = c.writes()
    assert writes["s1"] == [] and writes["s2"] == []
    assert sorted(w["path"] for w in writes["master"]) == [
        "/api/pipes/crm-order/config", "/api/pipes/crm-person/config",
        "/api/systems/crm/config"]                                  # no reset, no delete
    # The master's datasets keep what 1.0's pipes brought; the slave keeps its copies.
    assert {d: sorted(e["_id"] for e in entities(c.master, d)) for d in before} == before
    assert has_dataset(c.slaves["s1"], "crm-person") and has_dataset(c.slaves["s1"], "orders")
    # The originals 1.0 kept are the ones 2.0 keeps.
    kept = originals(c.master, "pipes")["crm-person"]["metadata"]["orchestrator"]
    assert kept["original_configuration"] == next(p for p in c.pipes if p["_id"] == "crm-person")
    c.clear()
    assert c.run(config).outcome == "ok" and c.no_writes()


def test_a_different_metadata_layout_shows_in_the_dry_run_as_slave_updates(nodes):
    # Taken for the user's uploads, the synchronising pipes would be moved to the slave over
    # the real copies: the dry run shows it, before anything is written.
    c, config = _left_by_1_0(nodes, metadata_layout="other")
    plan = c.run(config, dry_run=True)
    slave_updates = {(a["kind"], a["id"]) for a in plan.actions if a["node"] == "s1"}
    assert slave_updates == {("update-system", "crm"), ("update-pipe", "crm-person"),
                             ("update-pipe", "crm-order")}
    assert [w for w in plan.warnings if "no metadata.orchestrator" in w] == [
        "master system crm reads slave s1's datasets but has no metadata.orchestrator: if an "
        "earlier orchestrator generated it, this run takes it for your upload (see README, "
        "Upgrading from orchestrator 1.0)"]
    assert c.no_writes()


def _leave_dataset(node, dataset: str) -> None:
    """A dataset with data and no pipe writing it, as a deleted pipe leaves one."""
    node.seed(pipes=[{"_id": "gone", "type": "pipe", "source": {
        "type": "embedded", "entities": [{"_id": "z"}]},
        "sink": {"type": "dataset", "dataset": dataset}}])
    node.run_pipe("gone")
    assert node.api("DELETE", "/pipes/gone")[0] == 200
    assert has_dataset(node, dataset)


def test_datasets_1_0_left_under_a_moved_pipe_s_name_are_reported_by_id_never_deleted(nodes):
    c, config = _left_by_1_0(nodes)
    # 1.0's pipe crm-order wrote Sesam's default dataset (its own id) in the master before
    # its sink named `orders`; s2 once ran crm-order, and 1.0 deleted its datasets by pipe id.
    _leave_dataset(c.master, "crm-order")
    _leave_dataset(c.slaves["s2"], "orders")
    _leave_dataset(c.slaves["s2"], "not-a-moved-pipe-s")      # someone else's: not judged
    c.clear()
    plan = c.run(config, dry_run=True)
    assert plan.outcome == "ok", plan.errors
    leftovers = [w for w in plan.warnings if "may have left it" in w]
    assert [re.match(r"node (\S+): dataset (\S+) carries", w).groups() for w in leftovers] == [
        ("master", "crm-order"), ("s2", "orders")]
    assert leftovers[0] == (
        "node master: dataset crm-order carries the name of a moved pipe but no pipe there "
        "reads or writes it; an earlier orchestrator (1.0) may have left it. It is not "
        "deleted: delete it yourself if it is not needed (see README, Upgrading from "
        "orchestrator 1.0)")
    assert c.no_writes()
    assert sorted(o[0] for o in c.order if o[2] == "/api/datasets") == ["master", "s1", "s2"]
    c.clear()
    # The real run deletes none of them, nor reads the listings (a steady run's 4 reads).
    assert c.run(config).outcome == "ok"
    for node, dataset in ((c.master, "crm-order"), (c.slaves["s2"], "orders"),
                          (c.slaves["s2"], "not-a-moved-pipe-s")):
        assert has_dataset(node, dataset), dataset
    assert [o for o in c.order if o[1] == "GET" and o[2].split("?")[0] == "/api/datasets"] == []


def test_the_plan_s_leftovers_stay_on_status_and_the_page_until_the_next_plan(nodes):
    c, config = _left_by_1_0(nodes)
    _leave_dataset(c.master, "crm-order")
    runner = Runner(config=config, run=orchestrator.run)
    client = create_app(config=config, runner=runner).test_client()
    said = ("node master: dataset crm-order carries the name of a moved pipe but no pipe there "
            "reads or writes it")

    def shown() -> tuple[bool, bool]:
        status = client.get("/status").json
        return (any(w.startswith(said) for w in status["warnings"]),
                said in html.unescape(client.get("/").text))
    assert shown() == (False, False)             # no plan yet: the listings were not read
    assert any(w.startswith(said) for w in client.get("/plan").json["warnings"])
    assert shown() == (True, True)
    assert runner.sync(trigger="test").outcome == "ok"
    assert shown() == (True, True)               # a real run does not list datasets
    assert c.master.api("DELETE", "/datasets/crm-order")[0] == 200
    assert client.get("/plan").status_code == 200
    assert shown() == (False, False)
