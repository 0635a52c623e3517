"""The executor on its own, with recording stand-in clients: ordering, skipping, bulk
creates and the per-node cap on requests in flight."""
from __future__ import annotations

import threading

from service.core.actions import Action, Plan
from service.nodes.client import SesamError
from service.nodes.executor import execute


class Recorder:
    """Looks like a SesamClient to the executor; records calls, can fail.

    With `hold` (the number of calls the test will make), each call is held until as many
    calls as the node's concurrency are in flight together, or every call has arrived: so
    the cap is reached whenever the executor allows it, on any machine, without a sleep
    that hopes the calls overlap. A hold that is never met (an executor sending fewer at
    once) ends after a few seconds and stops holding; `peak` then shows the shortfall."""

    def __init__(self, node: str, *, concurrency: int = 8, fail: set[str] = frozenset(),
                 hold: int = 0) -> None:
        self.node, self.concurrency, self.fail, self.hold = node, concurrency, fail, hold
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.in_flight = self.peak = 0
        self._lock = threading.Condition()
        self._full_sets = 0          # times `concurrency` calls were in flight together

    def _call(self, name: str, ids: tuple[str, ...]) -> None:
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.calls.append((name, ids))
            if self.hold:
                self._wait_for_a_full_set()
        try:
            if set(ids) & self.fail:
                raise SesamError(f"{self.node} {name}: 500 Internal Server Error")
        finally:
            with self._lock:
                self.in_flight -= 1

    def _wait_for_a_full_set(self) -> None:
        self._lock.notify_all()      # a full set, or the last call, frees the waiting ones
        if self.in_flight >= self.concurrency:
            self._full_sets += 1
        else:
            mine = self._full_sets
            if not self._lock.wait_for(lambda: self._full_sets > mine
                                       or len(self.calls) >= self.hold, timeout=5):
                self.hold = 0        # never filled: let the rest through; peak tells
                return
        # A full set stays a moment for a call past the cap to show up in `peak`. Only an
        # executor that breaks the cap can end this wait early; a correct one cannot fail
        # on it, however the threads are timed.
        self._lock.wait_for(lambda: self.in_flight > self.concurrency, timeout=0.02)

    def create_pipes(self, configs):
        self._call("create_pipes", tuple(c["_id"] for c in configs))

    def create_systems(self, configs):
        self._call("create_systems", tuple(c["_id"] for c in configs))

    def put_pipe(self, pid, config):
        self._call("put_pipe", (pid,))

    def put_system(self, sid, config):
        self._call("put_system", (sid,))

    def delete_pipe(self, pid):
        self._call("delete_pipe", (pid,))

    def delete_dataset(self, did):
        self._call("delete_dataset", (did,))

    def delete_system(self, sid):
        self._call("delete_system", (sid,))

    def pump_operation(self, pid, operation, **params):
        self._call(f"pump:{operation}", (pid,))

    def post_env(self, values):
        self._call("post_env", ("env",))


def _pipe(node, pid, after=()):
    return Action("create-pipe", node, pid, payload={"_id": pid, "type": "pipe"}, after=after)


def test_a_failed_step_skips_everything_that_depends_on_it_and_nothing_else():
    actions = (
        Action("create-system", "s", "sys", payload={"_id": "sys"}),            # 0 fails
        _pipe("s", "p", after=(0,)),                                              # 1 skipped
        Action("update-pipe", "m", "p", payload={"_id": "p"}, after=(1,)),       # 2 skipped
        Action("delete-pipe", "a", "p", after=(2,)),                              # 3 skipped
        Action("update-pipe", "m", "q", payload={"_id": "q"}),                   # 4 done
    )
    clients = {n: Recorder(n, fail={"sys"} if n == "s" else set()) for n in "sma"}
    seen = []
    results = execute(Plan(actions=actions), clients, progress=seen.append)
    assert [r.status for r in results] == ["failed", "skipped", "skipped", "skipped", "done"]
    assert [r.index for r in results] == [0, 1, 2, 3, 4]
    assert "500" in results[0].error and results[3].error.startswith("a step it depends on")
    assert clients["a"].calls == [] and clients["m"].calls == [("put_pipe", ("q",))]
    assert sorted(r.index for r in seen) == [0, 1, 2, 3, 4]     # progress for every action


def test_creates_ready_together_go_out_in_bulk_of_at_most_100():
    actions = (Action("create-system", "s", "sys", payload={"_id": "sys"}),) + tuple(
        _pipe("s", f"p{i:03d}", after=(0,)) for i in range(250))
    client = Recorder("s")
    results = execute(Plan(actions=actions), {"s": client})
    assert all(r.status == "done" for r in results)
    assert client.calls[0] == ("create_systems", ("sys",))
    sizes = sorted(len(ids) for name, ids in client.calls[1:])
    assert [name for name, _ in client.calls[1:]] == ["create_pipes"] * 3 and sizes == [50, 100, 100]


def test_no_node_gets_more_requests_in_flight_than_its_concurrency():
    actions = tuple(Action("update-pipe", node, f"p{i}", payload={"_id": f"p{i}"})
                    for node in ("m", "s") for i in range(30))
    clients = {"m": Recorder("m", concurrency=3, hold=30),
               "s": Recorder("s", concurrency=5, hold=30)}
    results = execute(Plan(actions=actions), clients)
    assert all(r.status == "done" for r in results)
    assert clients["m"].peak == 3 and clients["s"].peak == 5


def test_an_unexpected_exception_fails_the_step_without_its_text():
    class Broken(Recorder):
        def put_pipe(self, pid, config):
            raise KeyError("secret-value-from-somewhere")
    results = execute(Plan(actions=(Action("update-pipe", "m", "p", payload={"_id": "p"}),)),
                      {"m": Broken("m")})
    assert results[0].status == "failed"
    assert results[0].error == "m: unexpected KeyError"
