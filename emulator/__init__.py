"""Sesam node emulator: an in-memory Sesam node API for tests, demo and benchmark."""
from .auth import make_token
from .node import EmulatorNode, running_nodes

__all__ = ["EmulatorNode", "make_token", "running_nodes"]
