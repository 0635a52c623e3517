"""Runs take time: they run in the background, commit in batches, can be stopped; pumps
follow pump.mode, refuse while deploying, and disable_set_last_seen refuses resets."""
from __future__ import annotations

import time

import pytest

from emulator import EmulatorNode

MANY = [{"_id": str(i)} for i in range(10)]


def _pump(node: EmulatorNode, pid: str, operation: str, **form: str) -> tuple[int, dict]:
    return node.api("POST", f"/pipes/{pid}/pump", {"operation": operation, **form})


def _wait_for(predicate, *, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.01)


def _slow_source(node: EmulatorNode) -> None:
    """`people` (10 entities) and a pipe `copy` reading it through its dataset offsets."""
    node.seed(pipes=[{"_id": "people", "type": "pipe",
                      "source": {"type": "embedded", "entities": MANY}},
                     {"_id": "copy", "type": "pipe",
                      "source": {"type": "dataset", "dataset": "people"}}])
    node.run_pipe("people")
    node.set_knobs(batch_size=2, batch_delay_ms=150)


def test_start_answers_at_once_and_a_second_start_is_409(node: EmulatorNode) -> None:
    _slow_source(node)
    status, pump = _pump(node, "copy", "start")
    assert status == 200 and pump["runtime"]["is-running"] is True
    assert node.api("GET", "/pipes/copy")[1]["runtime"]["is-running"] is True
    status, again = _pump(node, "copy", "start")
    assert status == 409 and again["runtime"]["is-running"] is True
    done = node.wait_idle("copy")
    assert done["runtime"]["success"] is True and done["runtime"]["last-seen"] == "9"


def test_a_run_commits_its_offset_per_batch_over_a_reset_made_meanwhile(node: EmulatorNode) -> None:
    _slow_source(node)
    _pump(node, "copy", "start")
    _wait_for(lambda: node.api("GET", "/pipes/copy/pump")[1]["runtime"]["last-seen"] is not None)
    assert _pump(node, "copy", "update-last-seen", **{"last-seen": ""})[0] == 200
    done = node.wait_idle("copy")
    # The reset is lost: the run's next commit wrote its own offset back.
    assert done["runtime"]["last-seen"] == "9"


def test_stop_ends_a_run_between_batches(node: EmulatorNode) -> None:
    _slow_source(node)
    _pump(node, "copy", "start")
    assert _pump(node, "copy", "stop")[0] == 200
    done = node.wait_idle("copy")
    assert done["runtime"]["success"] is False and "stopped" in done["runtime"]["last-error"]
    assert len(node.api("GET", "/datasets/copy/entities")[1]) < 10


def test_a_run_failing_half_way_leaves_a_partial_unpopulated_dataset(node: EmulatorNode) -> None:
    node.seed(pipes=[{"_id": "p", "type": "pipe", "source": {"type": "embedded", "entities": MANY}}])
    node.set_knobs(batch_size=3, fail_after_batches=2)
    pump = node.run_pipe("p")
    assert pump["runtime"]["success"] is False and "half-way" in pump["runtime"]["last-error"]
    assert len(node.api("GET", "/datasets/p/entities")[1]) == 6
    assert node.api("GET", "/datasets/p")[1]["runtime"]["populated"] is False


def test_a_deploying_pipe_refuses_pump_operations(node: EmulatorNode) -> None:
    node.set_knobs(deploy_ms=300)
    node.seed(pipes=[{"_id": "p", "type": "pipe"}])
    status, body = _pump(node, "p", "update-last-seen", **{"last-seen": ""})
    assert status == 503 and "deploying" in body["message"]
    _wait_for(lambda: _pump(node, "p", "disable")[0] == 200)
    assert node.api("GET", "/pipes/p")[1]["runtime"]["is-disabled"] is True


@pytest.mark.parametrize("mode, offered", [
    ("scheduled", ["start", "stop", "enable", "disable", "update-last-seen"]),
    ("manual", ["start", "stop", "enable", "disable", "update-last-seen"]),
    ("off", []),
])
def test_supported_operations_follow_the_pump_mode(node: EmulatorNode, mode: str,
                                                   offered: list[str]) -> None:
    node.seed(pipes=[{"_id": "p", "type": "pipe", "pump": {"mode": mode}}])
    assert node.api("GET", "/pipes/p/pump")[1]["runtime"]["supported-operations"] == offered
    for operation in ("start", "enable", "disable"):
        status, body = _pump(node, "p", operation)
        if operation not in offered:
            assert status == 400 and "doesn't support the operation" in body["message"]


def test_disable_set_last_seen_refuses_resets(node: EmulatorNode) -> None:
    node.seed(pipes=[{"_id": "p", "type": "pipe", "disable_set_last_seen": True}])
    assert "update-last-seen" not in node.api("GET", "/pipes/p/pump")[1]["runtime"]["supported-operations"]
    status, body = _pump(node, "p", "update-last-seen", **{"last-seen": ""})
    assert status == 400 and "update-last-seen" in body["message"]


def test_a_binary_source_reads_the_binary_stand_in_and_refuses_json(nodes) -> None:
    a, b = nodes(), nodes()
    a.seed(pipes=[{"_id": "d", "type": "pipe", "source": {"type": "embedded", "entities": MANY}}])
    a.run_pipe("d")
    b.seed(secrets={"a-token": a.token()},
           systems=[{"_id": "a", "type": "system:url", "jwt_token": "$SECRET(a-token)",
                     "url_pattern": a.api_url + "/datasets/%s/entities"},
                    # an endpoint that answers a plain JSON array (the request log)
                    {"_id": "plain", "type": "system:url", "url_pattern": a.url + "/_emulator/%s"}],
           pipes=[{"_id": "d", "type": "pipe", "source": {"type": "binary", "system": "a", "url": "d"}},
                  {"_id": "j", "type": "pipe",
                   "source": {"type": "binary", "system": "plain", "url": "requests"}}])
    assert b.run_pipe("d")["runtime"]["success"] is True
    assert len(b.api("GET", "/datasets/d/entities")[1]) == 10
    pump = b.run_pipe("j")
    assert pump["runtime"]["success"] is False
    assert "not Sesam's binary protocol" in pump["runtime"]["last-error"]
    assert b.api("GET", "/datasets/j")[0] == 404


def test_bad_knobs_are_refused(node: EmulatorNode) -> None:
    status, body = node.emulator("POST", "/config", {"batch_size": -1})
    assert status == 400 and "batch_size" in body["message"]
    status, body = node.emulator("POST", "/config", {"nope": 1})
    assert status == 400 and "unknown knob" in body["message"]


def test_sesamclient_reads_a_running_pump_and_its_409(node: EmulatorNode) -> None:
    import sesamclient
    from sesamclient.exceptions import PumpIsAlreadyRunning

    _slow_source(node)
    conn = sesamclient.Connection(sesamapi_base_url=node.api_url, jwt_auth_token=node.token(),
                                  timeout=30)
    pump = conn.get_pipe("copy").get_pump()
    assert pump.start() is True
    with pytest.raises(PumpIsAlreadyRunning, match="copy"):
        pump.start(allow_already_running_pump=False)
    pump.wait_for_pump_to_finish_running(timeout=10, poll_interval=0.02)
    assert pump.runtime["success"] is True and pump.last_seen == "9"


def test_the_scheduler_knob_runs_enabled_scheduled_pumps_only(node: EmulatorNode) -> None:
    entities = {"type": "embedded", "entities": [{"_id": "1"}]}
    node.seed(pipes=[{"_id": "on", "type": "pipe", "source": entities},
                     {"_id": "manual", "type": "pipe", "source": entities, "pump": {"mode": "manual"}},
                     {"_id": "off", "type": "pipe", "source": entities, "pump": {"mode": "off"}},
                     {"_id": "disabled", "type": "pipe", "source": entities}])
    assert _pump(node, "disabled", "disable")[0] == 200
    node.set_knobs(schedule_ms=20)
    node.wait_ticks(3)
    node.set_knobs(schedule_ms=0)
    node.wait_idle("on")
    ran = {pid for pid in ("on", "manual", "off", "disabled")
           if node.api("GET", f"/pipes/{pid}/pump")[1]["runtime"]["last-run"] is not None}
    assert ran == {"on"}
