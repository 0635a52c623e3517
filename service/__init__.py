"""Orchestrator for Sesam: places a master node's managed systems and pipes on slave nodes."""
