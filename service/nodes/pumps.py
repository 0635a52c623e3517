"""Pump operations that must hold on a real node: bounded retries while a pipe deploys, a
reset that no run in flight can undo, and a pipe made unable to run before its dataset goes.

A node answers 503 to pump operations on a pipe it is still deploying (after a config
write); each operation here is retried until `deploy_wait` seconds have passed. A run in
flight commits its own offset as it goes, so a reset made under it would be overwritten:
the node's answer to the reset shows whether a run is in flight; if so the pump is stopped,
waited for (bounded) and reset again, until the answer shows last-seen empty and no run.
"""
from __future__ import annotations

import time
from typing import Any

from service.core.names import q
from service.nodes.client import Operation, SesamBusy, SesamClient, SesamError

DEPLOY_WAIT = 30.0    # seconds a pump operation waits for its pipe to finish deploying
IDLE_WAIT = 60.0      # seconds to wait for a stopped run to end
_POLL = 0.05


def operate(client: SesamClient, pipe_id: str, operation: Operation, *,
            deploy_wait: float = DEPLOY_WAIT,
            fields: dict[str, str] | None = None) -> dict[str, Any] | None:
    """One pump operation (`fields`: its form fields besides `operation`); the pump JSON the
    node answered with, if any."""
    deadline = time.monotonic() + deploy_wait
    delay = _POLL
    while True:
        try:
            return client.pump_operation(pipe_id, operation, **(fields or {}))
        except SesamBusy:
            if time.monotonic() + delay > deadline:
                raise SesamError(f"{client.node_id} POST /pipes/{q(pipe_id)}/pump: {operation} "
                                 f"still refused (503) after {deploy_wait:g} s") from None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def _runtime(client: SesamClient, pipe_id: str,
             answer: dict[str, Any] | None = None) -> dict[str, Any]:
    """The runtime from an operation's answer, or read afresh when there was none."""
    pump = answer if answer is not None else client.get_pump(pipe_id)
    runtime: dict[str, Any] = pump["runtime"]
    return runtime


def wait_idle(client: SesamClient, pipe_id: str, *,
              timeout: float = IDLE_WAIT) -> dict[str, Any]:
    """The pump's runtime once no run is in flight; SesamError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        runtime = _runtime(client, pipe_id)
        if runtime.get("is-running") is not True:
            return runtime
        if time.monotonic() > deadline:
            raise SesamError(f"{client.node_id} pipe {q(pipe_id)}: still running after "
                             f"{timeout:g} s")
        time.sleep(_POLL)


def _stop_and_wait(client: SesamClient, pipe_id: str, runtime: dict[str, Any]) -> None:
    """Given a fresh runtime: stop the run in flight, if any, and wait for it to end."""
    if runtime.get("is-running") is not True:
        return
    if "stop" in runtime.get("supported-operations", []):
        operate(client, pipe_id, "stop")
    wait_idle(client, pipe_id)


def reset(client: SesamClient, pipe_id: str, *, attempts: int = 3) -> None:
    """Empty last-seen, and make sure no run that began before it is in flight (it would
    write its old offset back at its next commit): the operation's answer shows whether a
    run is in flight; if one is, it is stopped and waited for, and the reset made again.
    One request when no run is in flight."""
    for _ in range(attempts):
        answer = operate(client, pipe_id, "update-last-seen", fields={"last-seen": ""})
        runtime = _runtime(client, pipe_id, answer)
        if runtime.get("is-running") is not True and runtime.get("last-seen") in (None, ""):
            return
        _stop_and_wait(client, pipe_id, runtime)
    raise SesamError(f"{client.node_id} pipe {q(pipe_id)}: last-seen did not stay reset "
                     f"after {attempts} attempts (a run kept starting)")


def quiesce(client: SesamClient, pipe_id: str) -> None:
    """Make the pipe unable to run on its schedule and wait for any run in flight to end, so
    that deleting its dataset next cannot be undone by a run writing it again. One request
    when no run is in flight."""
    try:
        answer = operate(client, pipe_id, "disable")
    except SesamError:
        pump = client.get_pump(pipe_id, missing_ok=True)
        if pump is None:
            return        # the pipe is gone already: nothing left that could run
        runtime = pump["runtime"]
        if "disable" in runtime.get("supported-operations", []):
            raise
        answer = None     # e.g. a pump in `off` mode: it cannot run at all
    _stop_and_wait(client, pipe_id, _runtime(client, pipe_id, answer))
