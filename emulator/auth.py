"""HS256 JWT issuing and checking for emulated nodes."""
from __future__ import annotations

import time

import jwt

ADMIN = "group:Admin"


def make_token(secret: str, *, admin: bool = True, expires_in: int = 86400,
               principals: list[str] | None = None) -> str:
    """A token like the ones Sesam issues: `principals` carries group membership."""
    if principals is None:
        principals = [ADMIN] if admin else []
    now = int(time.time())
    claims = {"iat": now, "exp": now + expires_in, "principals": list(principals)}
    return jwt.encode(claims, secret, algorithm="HS256")


def check(header: str | None, secret: str) -> dict | None:
    """The verified claims of an `Authorization: Bearer` header, or None (-> 401)."""
    if not header or not header.startswith("Bearer "):
        return None
    try:
        claims = jwt.decode(header[7:].strip(), secret, algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    return claims if isinstance(claims, dict) else None


def is_admin(claims: dict) -> bool:
    principals = claims.get("principals")
    return isinstance(principals, list) and ADMIN in principals
