"""A run reuses the connections the last one left open when it follows within a minute: it
makes no new TCP connection (nor, to a real node, a TLS handshake). A node that went down
meanwhile is reached again on a new one, and connections idle longer are not reused (a load
balancer may have forgotten them without a word)."""
from __future__ import annotations

import threading

from service import orchestrator
from service.nodes import connections
from service.nodes.client import SesamClient

from orchestration import config_for

PIPES = [{"_id": "p", "type": "pipe", "source": {"type": "json", "system": "crm", "url": "u"}}]
SYSTEMS = [{"_id": "crm", "type": "system:url", "base_url": "http://x/"}]


def test_a_steady_run_opens_no_new_connection(nodes):
    # Slow enough that a run's four reads of a node are always in flight together: the
    # first run then opens as many connections as the steady run uses at once. (On quick
    # nodes a busy machine may have let the first run's reads go one after another.)
    master, slave = nodes(latency_ms=50), nodes(latency_ms=50)
    master.seed(systems=SYSTEMS, pipes=PIPES)
    # Connections are kept per address and concurrency. A node of an earlier test may have
    # had one of these addresses: its kept connections, dead since it stopped, would be
    # found and replaced on first use. A concurrency no other test uses keeps them apart.
    config = config_for(master, {"s1": (slave, ["crm"])}, PER_NODE_CONCURRENCY="7")
    assert orchestrator.run(config).outcome == "ok"
    opened = {n: n.connections_accepted for n in (master, slave)}
    assert all(opened.values()), opened
    steady = orchestrator.run(config)
    assert (steady.outcome, steady.actions) == ("ok", [])
    assert {n: n.connections_accepted for n in (master, slave)} == opened


def test_a_node_restarted_between_runs_is_reached_on_a_new_connection(nodes):
    master, slave = nodes(), nodes()
    master.seed(systems=SYSTEMS, pipes=PIPES)
    config = config_for(master, {"s1": (slave, ["crm"])})
    assert orchestrator.run(config).outcome == "ok"
    slave.stop()
    slave.start()                 # same address and state; the kept connections are gone
    steady = orchestrator.run(config)
    assert (steady.outcome, steady.actions) == ("ok", []), steady.as_json()
    assert slave.connections_accepted > 0


def test_connections_idle_too_long_are_not_reused(nodes, monkeypatch):
    master, slave = nodes(), nodes()
    master.seed(systems=SYSTEMS, pipes=PIPES)
    config = config_for(master, {"s1": (slave, ["crm"])}, PER_NODE_CONCURRENCY="6")
    assert orchestrator.run(config).outcome == "ok"
    opened = master.connections_accepted
    monkeypatch.setattr(connections, "IDLE_SECONDS", 0.0)   # every kept connection is too old
    steady = orchestrator.run(config)
    assert (steady.outcome, steady.actions) == ("ok", [])
    assert master.connections_accepted > opened


def test_a_connection_idle_too_long_is_not_reused_while_others_stay_busy(nodes, monkeypatch):
    # Light runs keep reusing the newest connection; the ones a busy run opened before them
    # age all the while, and a later busy run must not send on them.
    node = nodes(latency_ms=50)        # slow enough that 8 reads at once need 8 connections
    now = [0.0]
    monkeypatch.setattr(connections, "clock", lambda: now[0])

    def reads(at_once: int) -> None:
        c = SesamClient(node_id="n", api_url=node.api_url, token=node.token(), concurrency=5)
        threads = [threading.Thread(target=c.list_secrets) for _ in range(at_once)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    reads(5)
    busy = node.connections_accepted
    assert busy == 5
    for _ in range(3):                 # a light run every 40 s: one connection, kept fresh
        now[0] += 40
        reads(1)
    assert node.connections_accepted == busy
    reads(5)                           # the other 4 have been idle for 120 s
    assert node.connections_accepted == busy + 4
