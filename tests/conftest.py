"""Shared fixtures: emulated Sesam nodes that are stopped when the test ends; the
`--fault-report` option (runs the tests that use the `fault_tally` fixture, prints their figures)."""
from __future__ import annotations

from typing import Callable, Iterator

import pytest

from emulator import EmulatorNode
from faultreport import KEY, Tally, line

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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fault-report", action="store_true",
                     help="run only the fault and crash tests (those using `fault_tally`) and "
                          "print, per test, how many injected faults fired and what they did "
                          "(failed a write, landed unanswered, absorbed)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With --fault-report, the tests that keep a fault tally are chosen by that fixture, not
    by a list of files, so the report finds them wherever they live; then the long ones first."""
    if config.getoption("--fault-report"):
        tallied = [item for item in items if "fault_tally" in getattr(item, "fixturenames", ())]
        config.hook.pytest_deselected(items=[item for item in items if item not in tallied])
        items[:] = tallied
    # The tests marked `long` go first: xdist hands out the front of the list in turn, so
    # each worker starts on a long one and the short ones fill in around them.
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


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
