"""What the process environment may change about reaching a node, and what it may not.

Proxies (HTTP_PROXY, NO_PROXY, ...) apply, as they do for any requests-based client: a
node behind a corporate proxy must stay reachable. A ~/.netrc entry for a node's host must
not: the node's jwt_token is what every request carries (a netrc password in its place is a
401 on every read, or worse, another identity's rights).
"""
from __future__ import annotations

import socket

from service import orchestrator

from orchestration import clear_logs, config_for

PIPES = [{"_id": "p", "type": "pipe", "source": {"type": "json", "system": "crm", "url": "u"}}]
SYSTEMS = [{"_id": "crm", "type": "system:url", "base_url": "http://x/"}]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]      # nothing listens once it is closed


def test_a_netrc_entry_for_the_node_host_does_not_replace_the_token(nodes, tmp_path,
                                                                    monkeypatch):
    master, slave = nodes(), nodes()
    master.seed(systems=SYSTEMS, pipes=PIPES)
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password not-the-token\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(netrc))
    report = orchestrator.run(config_for(master, {"s1": (slave, ["crm"])}))
    assert report.outcome == "ok", report.as_json()
    assert [(a["kind"], a["id"]) for a in report.actions if a["kind"] == "create-pipe"] == \
        [("create-pipe", "p")]
    assert "p" in slave.store.pipes


def test_a_proxy_from_the_environment_is_used_unless_no_proxy_names_the_host(nodes,
                                                                             monkeypatch):
    master, slave = nodes(), nodes()
    master.seed(systems=SYSTEMS, pipes=PIPES)
    config = config_for(master, {"s1": (slave, ["crm"])})
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    clear_logs(master)
    through_proxy = orchestrator.run(config)
    assert through_proxy.outcome == "aborted", through_proxy.as_json()
    assert "connection failed" in " ".join(through_proxy.errors)
    assert master.requests() == []          # nothing reached the master: it went to the proxy

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct = orchestrator.run(config)
    assert direct.outcome == "ok", direct.as_json()
