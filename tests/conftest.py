"""Shared fixtures: emulated Sesam nodes that are stopped when the test ends; runs without
retry pauses or heap release, with the service's pool threads reused; and plans checked for
a component planned twice (for tests that ask for them);
the `--fault-report` option (runs the tests that use the `fault_tally` fixture, prints their
figures)."""
from __future__ import annotations

import importlib
from collections import Counter
from typing import Callable, Iterator

import pytest

from emulator import EmulatorNode
from faultreport import KEY, Tally, line
from forked_service import ServiceForks
from reused_threads import POOL_MODULES, ReusedThreadPool
from service import heap, orchestrator
from service.nodes.client import SesamClient

# Long enough that PyJWT does not warn about short HMAC keys.
JWT_SECRET = "test-secret-for-emulated-sesam-nodes-0123456789"


@pytest.fixture
def nodes() -> Iterator[Callable[..., EmulatorNode]]:
    """Factory: `nodes()` starts a node, `nodes(latency_ms=5)` one with latency."""
    started: list[EmulatorNode] = []

    def start(*, jwt_secret: str = JWT_SECRET, latency_ms: int = 0, **knobs: object) -> EmulatorNode:
        # knobs: EmulatorNode's other keywords (subscription_id, admin_writes_only, ...).
        node = EmulatorNode(jwt_secret=jwt_secret, latency_ms=latency_ms, **knobs).start()
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()


@pytest.fixture
def node(nodes: Callable[..., EmulatorNode]) -> EmulatorNode:
    return nodes()


@pytest.fixture(scope="session")
def service_forks() -> Iterator[ServiceForks]:
    """`service_forks.once(env)`: a `python -m service --once` to kill (tests/forked_service.py)."""
    forks = ServiceForks()
    yield forks
    forks.close()


@pytest.fixture(scope="session", autouse=True)
def reused_pool_threads() -> Iterator[None]:
    """The service's per-run thread pools take their threads from a reservoir instead of
    starting new ones (tests/reused_threads.py): the same pools, without the thread starts."""
    with ReusedThreadPool(max_workers=1) as pool:   # works, or fails here rather than hangs
        assert pool.submit(int, "1").result(timeout=10) == 1
    with pytest.MonkeyPatch.context() as patch:
        for module in POOL_MODULES:
            patch.setattr(importlib.import_module(module), "ThreadPoolExecutor", ReusedThreadPool)
        yield


@pytest.fixture(autouse=True)
def no_heap_release(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Runner hands the heap a run freed back to the system (service/heap.py): a full
    garbage collection, about 100 ms in a test process that holds pytest and hypothesis, for
    every in-process /sync and /plan. The served process's own tests keep it (they run it in
    their own process), and the Runner's test of it replaces it with its own probe."""
    monkeypatch.setattr(heap, "release", lambda: None)


@pytest.fixture(autouse=True)
def no_retry_backoff(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Retried requests still happen (the same requests, and Retry-After is still honoured),
    only without our own pauses between them: waiting out 0.2 + 0.4 + 0.8 s was a tenth of
    the suite. A test of the pauses themselves is marked `real_backoff`."""
    if request.node.get_closest_marker("real_backoff") is None:
        monkeypatch.setitem(SesamClient.__init__.__kwdefaults__, "backoff", 0.0)


@pytest.fixture
def no_component_planned_twice(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Wrap the planner: no (kind, node, id) twice in a plan, except a sync pipe's two PUTs
    around its reset (flagged, then clean)."""
    seen: list[str] = []
    real = orchestrator.make_plan

    def checked(*args, **kwargs):
        the_plan = real(*args, **kwargs)
        counts = Counter((a.kind, a.node, a.id) for a in the_plan.actions)
        for (kind, node, cid), n in counts.items():
            resets = counts.get(("reset-pipe", node, cid), 0)
            if n > 1 and not (kind == "update-pipe" and n == 2 and resets == 1):
                seen.append(f"{kind} {node} {cid} x{n}")
        return the_plan
    monkeypatch.setattr(orchestrator, "make_plan", checked)
    yield
    assert not seen, seen


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fault-report", action="store_true",
                     help="run only the fault and crash tests (those using `fault_tally`) and "
                          "print, per test, how many injected faults fired and what they did "
                          "(failed a write, landed unanswered, absorbed)")


_UNGROUPED = pytest.StashKey[set[str]]()


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.nodeid in item.config.stash.get(_UNGROUPED, set()):
        pytest.fail("pytest-xdist's --dist loadgroup did not group this test marked "
                    "xdist_group: the installed pytest and pytest-xdist do not work together "
                    "(see requirements-test.txt)", pytrace=False)


@pytest.hookimpl(trylast=True)     # after pytest-xdist's own, which marks the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With --fault-report, the tests that keep a fault tally are chosen by that fixture, not
    by a list of files, so the report finds them wherever they live; then the long ones first.
    On an xdist worker, notes the tests marked `xdist_group` that --dist loadgroup has not
    grouped (pytest_runtest_setup fails them): a module fixture that starts a process would
    then start it on every worker, and nothing else would show it."""
    if getattr(config.option, "loadgroup", False):
        config.stash[_UNGROUPED] = {item.nodeid for item in items
                                    if item.get_closest_marker("xdist_group")
                                    and "@" not in item.nodeid}
    if config.getoption("--fault-report"):
        tallied = [item for item in items if "fault_tally" in getattr(item, "fixturenames", ())]
        config.hook.pytest_deselected(items=[item for item in items if item not in tallied])
        items[:] = tallied
    # The tests marked `long` go first, then the groups (a module that starts a process, run
    # by one worker as one unit of several seconds): xdist hands out the front of the list in
    # turn, so each worker starts on a long one and the short ones fill in around them,
    # instead of a group's start-up and tests coming last on one worker while the other idles.
    items.sort(key=lambda item: (item.get_closest_marker("long") is None,
                                 item.get_closest_marker("xdist_group") is None))


@pytest.fixture
def fault_tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    """A test's fault figures; kept as a user property so xdist carries them to the report."""
    tally = Tally()
    yield tally
    request.node.user_properties.append((KEY, tally.as_dict()))


_REPORTED: dict[str, dict[str, int]] = {}
_FAILED: set[str] = set()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed:
        _FAILED.add(report.nodeid)   # its figures stop where it failed
    for name, figures in report.user_properties:
        if name == KEY:
            _REPORTED[report.nodeid] = figures


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    if not config.getoption("--fault-report"):
        return
    terminalreporter.section("fault report")
    if not _REPORTED:
        terminalreporter.write_line("no fault or crash test ran")
    for nodeid, figures in sorted(_REPORTED.items()):
        failed = " (FAILED: figures up to the failure)" if nodeid in _FAILED else ""
        terminalreporter.write_line(line(nodeid, figures) + failed)
