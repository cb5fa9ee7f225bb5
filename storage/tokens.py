"""API bearer tokens: made here once, shown once, stored only as their SHA-256.

A token is 256 random bits, so a plain (unsalted) SHA-256 is enough to make the stored column
useless to a reader of the database, and it lets a request's token be found with one indexed
lookup. Salting and slow hashes are for low-entropy passwords, not for random tokens.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import ApiToken, TokenRole
from storage.types import utcnow

__all__ = ["TOKEN_PREFIX", "create_token", "find_token", "hash_token", "live_tokens", "new_token",
           "revoke_token", "token_by_hash"]

# Makes a leaked token recognisable to secret scanners and to people.
TOKEN_PREFIX = "rct_"


def new_token() -> str:
    """A fresh random token (prefix + 43 URL-safe characters)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The SHA-256 (hex) of ``token``, as stored in ``api_tokens.token_sha256``."""
    return hashlib.sha256(token.strip().encode("utf-8")).hexdigest()


def create_token(session: Session, name: str, role: TokenRole | str,
                 created_at: datetime | None = None) -> tuple[ApiToken, str]:
    """Add a token named ``name`` with ``role``; returns the row and the token, shown only now.

    ValueError when ``role`` is not a TokenRole; the unique name is checked by the database.
    """
    token = new_token()
    row = ApiToken(name=name, role=TokenRole(role).value, token_sha256=hash_token(token),
                   created_at=created_at or utcnow())
    session.add(row)
    session.flush()
    return row, token


def token_by_hash(session: Session, token_sha256: str) -> ApiToken | None:
    """The token row with this hash, revoked or not."""
    return session.execute(
        select(ApiToken).where(ApiToken.token_sha256 == token_sha256.lower())).scalar_one_or_none()


def find_token(session: Session, token: str, now: datetime | None = None) -> ApiToken | None:
    """The token row for the bearer ``token`` if it exists and is not revoked (as of ``now``)."""
    row = token_by_hash(session, hash_token(token))
    if row is None:
        return None
    if row.revoked_at is not None and row.revoked_at <= (now or utcnow()):
        return None
    return row


def live_tokens(session: Session, now: datetime | None = None) -> dict[str, tuple[str, str]]:
    """Every token not revoked (as of ``now``): its SHA-256 -> (name, role)."""
    moment = now or utcnow()
    rows = session.execute(select(ApiToken.token_sha256, ApiToken.name, ApiToken.role, ApiToken.revoked_at))
    return {digest: (name, str(role)) for digest, name, role, revoked in rows
            if revoked is None or revoked > moment}


def revoke_token(session: Session, name: str, at: datetime | None = None) -> bool:
    """Revoke the token named ``name``; False when there is no such token (or it is revoked already)."""
    row = session.execute(select(ApiToken).where(ApiToken.name == name)).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = at or utcnow()
    session.flush()
    return True
