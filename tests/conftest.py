"""Shared fixtures: emulated Sesam nodes that are stopped when the test ends."""
from __future__ import annotations

from typing import Callable, Iterator

import pytest

from emulator import EmulatorNode

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
