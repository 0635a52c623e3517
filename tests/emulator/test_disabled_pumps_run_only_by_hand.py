"""A disabled pump is never run by the node's scheduler, but a manual `start` runs it, as
Sesam documents (swagger, pump operation "disable": "Note that it is still possible to start
the pump manually with the 'start'-operation"; hub/management-studio.rst: "You can still
manually run a disabled pipe"). The pump stays disabled after that run."""
from __future__ import annotations

from emulator import EmulatorNode

ENTITIES = {"type": "embedded", "entities": [{"_id": "1"}, {"_id": "2"}]}


def _runtime(node: EmulatorNode, pid: str) -> dict:
    status, pump = node.api("GET", f"/pipes/{pid}/pump")
    assert status == 200, pump
    return pump["runtime"]


def test_a_disabled_pump_is_not_scheduled_but_a_manual_start_runs_it(node: EmulatorNode) -> None:
    node.seed(pipes=[{"_id": "held", "type": "pipe", "source": ENTITIES}])
    assert node.api("POST", "/pipes/held/pump", {"operation": "disable"})[0] == 200
    node.set_knobs(schedule_ms=20)
    node.wait_ticks(3)
    assert _runtime(node, "held")["last-run"] is None       # the scheduler left it alone
    node.set_knobs(schedule_ms=0)

    pump = node.run_pipe("held")
    assert pump["runtime"]["success"] is True and pump["runtime"]["is-disabled"] is True
    # Such a run shows: in its last-run, and as a `start` in the request log (what the
    # orchestrator's tests look for to prove they never run a disabled copy).
    assert pump["runtime"]["last-run"] is not None
    assert [r.get("operation") for r in node.requests()
            if r["method"] == "POST" and r["path"] == "/api/pipes/held/pump"] \
        == ["disable", "start"]
    assert node.api("GET", "/datasets/held/entities")[1] != []
    assert "start" in pump["runtime"]["supported-operations"]


def test_a_pump_disabled_while_it_runs_finishes_that_run_and_is_not_run_again(
        node: EmulatorNode) -> None:
    # management-studio.rst, Disable: "If the pipe is already running, it will finish running
    # but not run again."
    node.seed(pipes=[{"_id": "slow", "type": "pipe", "source": ENTITIES}])
    node.set_knobs(batch_size=1, batch_delay_ms=100)
    assert node.api("POST", "/pipes/slow/pump", {"operation": "start"})[0] == 200
    assert node.api("POST", "/pipes/slow/pump", {"operation": "disable"})[0] == 200
    assert node.wait_idle("slow")["runtime"]["success"] is True
    first = _runtime(node, "slow")["last-run"]
    node.set_knobs(schedule_ms=20, batch_delay_ms=0)
    node.wait_ticks(3)
    assert _runtime(node, "slow")["last-run"] == first and _runtime(node, "slow")["is-disabled"]
