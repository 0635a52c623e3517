"""HS256 JWT issuing and checking for emulated nodes."""
from __future__ import annotations

import time
from typing import Any

import jwt

ADMIN = "group:Admin"
EVERYONE = "group:Everyone"


def make_token(secret: str, *, admin: bool = True, expires_in: int = 86400,
               principals: list[str] | dict[str, list[str]] | None = None) -> str:
    """A token like the ones Sesam issues: `principals` carries group membership, either as
    a list or, as the portal issues them, as {subscription id: [principals]}."""
    if principals is None:
        principals = [ADMIN] if admin else []
    now = int(time.time())
    value = dict(principals) if isinstance(principals, dict) else list(principals)
    claims = {"iat": now, "exp": now + expires_in, "principals": value}
    return jwt.encode(claims, secret, algorithm="HS256")


def check(header: str | None, secret: str) -> dict[str, Any] | None:
    """The verified claims of an `Authorization: Bearer` header, or None (-> 401)."""
    if not header or not header.startswith("Bearer "):
        return None
    try:
        claims = jwt.decode(header[7:].strip(), secret, algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    return claims if isinstance(claims, dict) else None


def principals(claims: dict[str, Any], subscription_id: str) -> frozenset[str]:
    """The caller's principals on this node. A mapping counts only the entry for this node's
    subscription (the portal's tokens carry one per subscription); anything else: none."""
    value = claims.get("principals")
    if isinstance(value, dict):
        value = value.get(subscription_id)
    if not isinstance(value, list):
        return frozenset()
    return frozenset(p for p in value if isinstance(p, str))


def is_admin(claims: dict[str, Any], subscription_id: str) -> bool:
    return ADMIN in principals(claims, subscription_id)
