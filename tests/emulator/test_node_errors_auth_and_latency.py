"""Error answers, auth, faults, request log and latency of the emulated node."""
from __future__ import annotations

import http.client
import time

import pytest

from emulator import EmulatorNode, auth, make_token, running_nodes

# What a cut connection raises, whichever way the client notices it.
CUT = r"Remote end closed|Connection reset|Connection aborted|EOF"
from tests.conftest import JWT_SECRET

PIPE = {"_id": "p1", "type": "pipe", "source": {"type": "embedded", "entities": []}}


# Named ids: a token made at collection holds the time, and pytest-xdist's workers must
# collect the same test names even when they collect a second apart.
@pytest.mark.parametrize("token", [None, "Bearer", "Bearer not-a-jwt",
                                   "Bearer " + make_token("another-secret-0123456789-0123456789"),
                                   "Bearer " + make_token(JWT_SECRET, expires_in=-10)],
                         ids=["none", "no-token", "not-a-jwt", "other-secret", "expired"])
def test_bad_tokens_get_401(node: EmulatorNode, token: str | None) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10)
    conn.request("GET", "/api/pipes", headers={"Authorization": token} if token else {})
    resp = conn.getresponse()
    body = resp.read().decode()
    assert resp.status == 401
    assert "not-a-jwt" not in body


def test_env_and_secrets_need_admin(node: EmulatorNode) -> None:
    plain = node.token(admin=False)
    for method, path, body in [("GET", "/env", None), ("POST", "/env", {"a": 1}),
                               ("GET", "/secrets", None), ("PUT", "/secrets", {"s": "v"})]:
        assert node.api(method, path, body, token=plain)[0] == 403
    assert node.api("GET", "/pipes", token=plain)[0] == 200


@pytest.mark.parametrize("config", [[1], ["x"], [{"type": "pipe"}], [{"_id": "a", "type": "x"}],
                                    [{"_id": "a"}]])
def test_bad_pipe_configs_get_400(node: EmulatorNode, config: list) -> None:
    assert node.api("POST", "/pipes", config)[0] == 400


def test_bad_system_type_gets_400(node: EmulatorNode) -> None:
    assert node.api("POST", "/systems", [{"_id": "s", "type": "url"}])[0] == 400
    assert node.api("POST", "/systems", [{"_id": "s", "type": "system:url", "url_pattern": "http://x/%s"}])[0] == 201


def test_bulk_with_one_bad_item_changes_nothing(node: EmulatorNode) -> None:
    status, _ = node.api("POST", "/pipes", [PIPE, {"_id": "bad", "type": "nope"}])
    assert status == 400
    assert node.api("GET", "/pipes")[1] == []


def test_duplicate_gets_409_and_unknown_404(node: EmulatorNode) -> None:
    assert node.api("POST", "/pipes", [PIPE])[0] == 201
    assert node.api("POST", "/pipes", [PIPE])[0] == 409
    assert node.api("GET", "/pipes/nope")[0] == 404
    assert node.api("DELETE", "/systems/nope")[0] == 404
    assert node.api("GET", "/datasets/nope/entities")[0] == 404


@pytest.mark.parametrize("odd_id", ['a:b', 'quote"d', "50%", "with space", "<b>x<b>&amp;"])
def test_odd_ids_round_trip(node: EmulatorNode, odd_id: str) -> None:
    assert node.api("POST", "/pipes", [{**PIPE, "_id": odd_id}])[0] == 201
    status, body = node.api("GET", "/pipes/" + node.quote(odd_id))
    assert status == 200 and body["_id"] == odd_id
    assert node.api("DELETE", "/pipes/" + node.quote(odd_id))[0] == 200


def test_effective_config_defaults_and_errors(node: EmulatorNode) -> None:
    node.seed(env={"host": "example.org"},
              systems=[{"_id": "s", "type": "system:url", "url_pattern": "http://$ENV(host)/%s"}],
              pipes=[PIPE])
    node.seed(force=True, pipes=[{"_id": "q", "type": "pipe",
                                  "source": {"type": "json", "system": "missing", "url": "x"}}])
    pipe = node.api("GET", "/pipes/p1")[1]
    assert pipe["config"]["effective"]["sink"] == {"type": "dataset", "dataset": "p1",
                                                   "system": "system:sesam-node"}
    assert node.api("GET", "/systems/s")[1]["config"]["effective"]["url_pattern"] == "http://example.org/%s"
    bad = node.api("GET", "/pipes/q")[1]["runtime"]
    assert bad["is-valid-config"] is False and "missing" in bad["config-errors"][0]["msg"]


def test_env_put_replaces_post_merges(node: EmulatorNode) -> None:
    node.api("PUT", "/env", {"a": 1, "b": 2})
    node.api("POST", "/env", {"b": 3, "c": 4})
    assert node.api("GET", "/env")[1] == {"a": 1, "b": 3, "c": 4}
    node.api("PUT", "/env", {"z": 0})
    assert node.api("GET", "/env")[1] == {"z": 0}


def test_fault_status_then_passes(node: EmulatorNode) -> None:
    node.add_fault(method="GET", path="^/api/pipes$", skip=1, times=1, status=503)
    assert node.api("GET", "/pipes")[0] == 200
    assert node.api("GET", "/pipes")[0] == 503
    assert node.api("GET", "/pipes")[0] == 200


def test_fault_drop_closes_connection(node: EmulatorNode) -> None:
    node.add_fault(method="*", path="^/api/systems", drop=True, writes_only=True)
    with pytest.raises((http.client.HTTPException, ConnectionError), match=CUT):
        node.api("POST", "/systems", [{"_id": "s", "type": "system:url"}])
    assert node.requests()[-1]["status"] == 0
    assert node.api("GET", "/systems")[1] == []


def test_fault_drop_after_carries_the_request_out_then_cuts(node: EmulatorNode) -> None:
    node.add_fault(method="POST", path="^/api/systems$", drop_after=True)
    with pytest.raises((http.client.HTTPException, ConnectionError), match=CUT):
        node.api("POST", "/systems", [{"_id": "s", "type": "system:url", "url_pattern": "http://s/%s"}])
    assert node.requests()[-1]["status"] == 0
    assert [s["_id"] for s in node.api("GET", "/systems")[1]] == ["s"]


def test_fault_delay_is_applied(node: EmulatorNode) -> None:
    node.add_fault(method="GET", path="^/api/env$", delay_ms=200)
    began = time.monotonic()
    assert node.api("GET", "/env")[0] == 200
    assert time.monotonic() - began >= 0.2   # a lower bound cannot flake


def test_request_log_and_observer(node: EmulatorNode) -> None:
    seen: list[tuple[str, str, int]] = []
    node.add_observer(lambda *call: seen.append(call))
    node.api("GET", "/pipes?fields=_id")
    node.api("DELETE", "/pipes/x")
    log = node.requests()
    assert [(r["method"], r["path"], r["status"]) for r in log] == [
        ("GET", "/api/pipes", 200), ("DELETE", "/api/pipes/x", 404)]
    assert log[0]["query"] == "fields=_id"
    assert seen == [("GET", "/api/pipes", 200), ("DELETE", "/api/pipes/x", 404)]
    assert node.emulator("GET", "/requests") == (200, log)     # the log over HTTP, the same
    assert node.emulator("DELETE", "/requests")[0] == 200
    assert node.requests() == []


def test_latency_is_configured_and_reported(nodes) -> None:
    slow = nodes(latency_ms=30)
    assert slow.latency_ms == 30
    assert slow.emulator("GET", "/config")[1]["latency_ms"] == 30
    began = time.monotonic()
    slow.api("GET", "/pipes")
    assert time.monotonic() - began >= 0.03


def test_running_nodes_stops_them() -> None:
    with running_nodes("master", "s1", jwt_secret=JWT_SECRET) as started:
        assert set(started) == {"master", "s1"}
        assert started["s1"].api("GET", "/pipes")[0] == 200
        port = started["s1"].port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    with pytest.raises(OSError, match="Connection refused"):
        conn.request("GET", "/api/pipes")
        conn.getresponse()


def test_fields_parameter_trims_listing(node: EmulatorNode) -> None:
    node.seed(pipes=[PIPE])
    assert node.api("GET", "/pipes?fields=runtime")[1][0].keys() == {"_id", "runtime"}


def test_adding_a_missing_system_heals_pipes_that_name_it(node: EmulatorNode) -> None:
    node.seed(env={"sys": "crm"}, force=True,
              pipes=[{"_id": "q", "type": "pipe",
                      "source": {"type": "json", "system": "$ENV(sys)", "url": "x"}}])
    assert node.api("GET", "/pipes/q")[1]["runtime"]["is-valid-config"] is False
    node.seed(systems=[{"_id": "crm", "type": "system:url", "url_pattern": "http://crm/%s"}])
    assert node.api("GET", "/pipes/q")[1]["runtime"]["is-valid-config"] is True
    node.api("DELETE", "/systems/crm")
    assert node.api("GET", "/pipes/q")[1]["runtime"]["is-valid-config"] is False


def test_internal_error_answers_500(node: EmulatorNode, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("bug")
    monkeypatch.setattr(node.store, "listing_raw", broken)
    assert node.api("GET", "/pipes")[0] == 500
    assert node.requests()[-1]["status"] == 500


def test_many_concurrent_keep_alive_clients(node: EmulatorNode) -> None:
    import concurrent.futures

    def client(_: int) -> list[int]:
        conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
        statuses = []
        for _ in range(5):   # several requests on one connection: keep-alive works
            conn.request("GET", "/api/pipes", headers={"Authorization": f"Bearer {node.token()}"})
            resp = conn.getresponse()
            resp.read()
            statuses.append(resp.status)
        conn.close()
        return statuses

    with concurrent.futures.ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(client, range(40)))
    assert results == [[200] * 5] * 40


def test_listing_reuses_encodings_only_while_a_component_is_unchanged(node: EmulatorNode) -> None:
    node.seed(pipes=[{"_id": "a", "type": "pipe"}, {"_id": "b", "type": "pipe"}])
    first = node.api("GET", "/pipes")[1]
    assert [p["_id"] for p in first] == ["a", "b"]
    # a change of config, of runtime (disable) and a delete all show in the next listing
    node.api("PUT", "/pipes/a/config", {"_id": "a", "type": "pipe", "description": "new"})
    node.api("POST", "/pipes/b/pump", {"operation": "disable"})
    listed = {p["_id"]: p for p in node.api("GET", "/pipes")[1]}
    assert listed["a"]["config"]["original"]["description"] == "new"
    assert listed["b"]["runtime"]["is-disabled"] is True
    node.api("DELETE", "/pipes/a")
    assert [p["_id"] for p in node.api("GET", "/pipes")[1]] == ["b"]


def test_a_token_accepted_before_is_refused_once_it_expires(node: EmulatorNode, monkeypatch) -> None:
    # The node remembers tokens it verified (emulator/auth.py); expiry must still count.
    token, fresh = node.token(expires_in=60), node.token(expires_in=3600)
    assert node.api("GET", "/pipes", token=token)[0] == 200
    later = time.time() + 61
    monkeypatch.setattr(auth.time, "time", lambda: later)   # the node's clock, a minute on
    status, body = node.api("GET", "/pipes", token=token)
    assert status == 401, body
    assert node.api("GET", "/pipes", token=fresh)[0] == 200


def test_reset_leaves_a_node_as_a_new_one_on_the_same_address(nodes) -> None:
    node = nodes(latency_ms=0)
    fresh = nodes()
    node.seed(env={"e": 1}, secrets={"s": "v"},
              systems=[{"_id": "crm", "type": "system:url", "base_url": "http://x/"}],
              pipes=[{**PIPE, "source": {"type": "embedded", "entities": [{"_id": "a"}]}}])
    assert node.api("PUT", "/systems/crm/secrets", {"k": "v"})[0] == 200
    node.run_pipe("p1")
    node.add_fault(method="GET", path="^/api/env$", status=500)
    node.set_knobs(batch_size=5, deploy_ms=10, schedule_ms=1000)
    node.latency_ms, node.admin_writes_only = 25, True
    seen: list[str] = []
    node.add_observer(lambda method, path, status: seen.append(path))
    node.register_container("crm", "http://127.0.0.1:9")
    url = node.url

    node.reset()
    assert node.requests() == [] and node.faults() == []
    assert node.emulator("GET", "/config")[1] == fresh.emulator("GET", "/config")[1]
    assert (node.latency_ms, node.admin_writes_only) == (0, False)
    assert node.save_state() == fresh.save_state()
    for path in ("/pipes", "/systems", "/datasets", "/env", "/secrets"):
        assert node.api("GET", path)[1] == fresh.api("GET", path)[1], path
    assert node.url == url and seen == []
    assert node.emulator("POST", "/containers", {}) == (200, {})   # none registered
