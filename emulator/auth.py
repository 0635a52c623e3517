"""HS256 JWT issuing and checking for emulated nodes."""
from __future__ import annotations

import threading
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


# Tokens that passed jwt.decode, by (token, secret): checking the signature again on each
# request was a tenth of the CPU a test spends. Only acceptances are kept, and of what
# decode checked only `exp` can change its answer later (a passed `nbf` or `iat` stays
# passed), so a kept token is checked against the clock again on every use.
_ACCEPTED: dict[tuple[str, str], dict[str, Any]] = {}
_ACCEPTED_MAX = 1024
_accepted_lock = threading.Lock()


def check(header: str | None, secret: str) -> dict[str, Any] | None:
    """The verified claims of an `Authorization: Bearer` header, or None (-> 401)."""
    if not header or not header.startswith("Bearer "):
        return None
    token = header[7:].strip()
    with _accepted_lock:
        claims = _ACCEPTED.get((token, secret))
    if claims is not None:
        # As jwt.decode does: expired once `exp` is not after now (decode made it an int).
        return None if "exp" in claims and int(claims["exp"]) <= time.time() else claims
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    with _accepted_lock:   # (decode refuses a payload that is not a JSON object)
        if len(_ACCEPTED) >= _ACCEPTED_MAX:
            _ACCEPTED.clear()
        _ACCEPTED[token, secret] = claims
    return claims


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
