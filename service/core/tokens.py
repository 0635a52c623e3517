"""What a node's JWT says about itself, read without verifying its signature.

The orchestrator cannot verify a node's token (it does not hold the node's key) and need not:
it only wants to warn before a token expires or lacks `group:Admin`, not to trust it.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from service.config import Node

ADMIN = "group:Admin"
EXPIRY_WARNING = timedelta(days=14)


def _principals(claims: dict[str, Any]) -> set[str]:
    # Sesam puts principals either as a list or as {node id: [principals]}.
    value = claims.get("principals", [])
    if isinstance(value, dict):
        return {p for group in value.values() if isinstance(group, list) for p in group}
    if isinstance(value, list):
        return {p for p in value if isinstance(p, str)}
    return set()


@functools.lru_cache(maxsize=64)
def _claims(token: str) -> dict[str, Any] | None:
    """A token's claims (None when it is not a readable JWT). Kept: every run reads every
    node's token twice, and decoding one costs more than a node takes to answer a read.
    Callers must not change what they get."""
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    return claims


def grants_admin(token: str) -> bool:
    """Whether a token says it is issued to group:Admin (False when it cannot be read)."""
    claims = _claims(token)
    return claims is not None and ADMIN in _principals(claims)


def token_warnings(nodes: Iterable[Node], *, now: datetime) -> list[str]:
    """Warnings about every node's token; never includes a token itself. Every node needs
    group:Admin: env vars are copied from the master to the slaves, secret names read."""
    return [w for node in nodes
            for w in _one_token(node.id, node.jwt_token.get_secret_value(), now=now)]


def _one_token(node_id: str, token: str, *, now: datetime) -> list[str]:
    claims = _claims(token)
    if claims is None:
        return [f"node {node_id}: its jwt_token is not a readable JWT, so its expiry is unknown"]
    warnings = []
    exp = claims.get("exp")
    expires = None
    if isinstance(exp, (int, float)):
        try:
            expires = datetime.fromtimestamp(exp, tz=UTC)
        except (ValueError, OverflowError, OSError):
            # e.g. an exp in milliseconds: the node may still accept it; only we cannot read it.
            warnings.append(f"node {node_id}: its jwt_token has an expiry that is not a date "
                            "(exp out of range), so when it expires is unknown")
    if expires is not None:
        if expires <= now:
            warnings.append(f"node {node_id}: its jwt_token expired at {expires.isoformat()}")
        elif expires - now <= EXPIRY_WARNING:
            warnings.append(f"node {node_id}: its jwt_token expires soon, at {expires.isoformat()}")
    if ADMIN not in _principals(claims):
        warnings.append(f"node {node_id}: its jwt_token is not issued to {ADMIN}, "
                        "which copying env vars and reading secrets requires")
    return warnings
