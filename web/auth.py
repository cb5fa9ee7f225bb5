"""Bearer-token authentication (RFC 6750) with roles, against the hashed tokens of ``api_tokens``.

A token is looked up by its SHA-256 (storage.tokens): the database compares hashes, never the
secret, so the time a lookup takes says nothing about how much of a guessed token was right;
the final comparison is constant-time all the same (``hmac.compare_digest``). Tokens are never
logged, only the name of the token that was used.

Roles per endpoint (docs/api.md): ``ingest`` or ``admin`` may post messages, ``viewer`` or
``admin`` may read. Any other token gets 403, no valid token 401 with a ``WWW-Authenticate``
challenge (RFC 6750, section 3).
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from storage import TokenRole, find_token, hash_token
from web.errors import ApiError

__all__ = ["INGEST_ROLES", "READ_ROLES", "Caller", "authenticate", "authenticate_known", "bearer_token"]

INGEST_ROLES = frozenset({TokenRole.INGEST, TokenRole.ADMIN})
READ_ROLES = frozenset({TokenRole.VIEWER, TokenRole.ADMIN})

_REALM = 'Bearer realm="ricochet"'
# Longer than any token we issue (rct_ + 43 characters) by far; a longer one is not ours.
_MAX_TOKEN = 256


@dataclass(frozen=True)
class Caller:
    """Who made the request: the token's name (for logs and source_ref) and its role."""

    name: str
    role: str


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None when there is none.

    The scheme is case-insensitive (RFC 7235, section 2.1); anything but one token after it is
    no token.
    """
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token or len(token) > _MAX_TOKEN:
        return None
    return token


def authenticate(session: Session, authorization: str | None, roles: Collection[TokenRole]) -> Caller:
    """The caller whose token is in ``authorization``, if its role is one of ``roles``.

    Raises ApiError 401 (no token, unknown or revoked token) or 403 (a valid token of another role).
    """
    token = _required_token(authorization)
    row = find_token(session, token)
    if row is None or not hmac.compare_digest(row.token_sha256, hash_token(token)):
        raise _unknown_token()
    return _with_role(row.name, row.role, roles)


def authenticate_known(tokens: Mapping[str, tuple[str, str]], authorization: str | None,
                       roles: Collection[TokenRole]) -> Caller:
    """``authenticate`` against an in-memory table (SHA-256 -> (name, role)) of the live tokens.

    For the policy lookup, which never waits on the database: the policy node reloads the table
    with its decisions every second, so a new or revoked token takes effect within a second.
    """
    known = tokens.get(hash_token(_required_token(authorization)))
    if known is None:
        raise _unknown_token()
    return _with_role(known[0], known[1], roles)


def _required_token(authorization: str | None) -> str:
    token = bearer_token(authorization)
    if token is None:
        raise ApiError(401, "unauthorized",
                       "This endpoint needs an 'Authorization: Bearer <token>' header; "
                       "create a token with 'python app.py token create'.",
                       {"WWW-Authenticate": _REALM})
    return token


def _unknown_token() -> ApiError:
    return ApiError(401, "unauthorized", "The bearer token is unknown or revoked.",
                    {"WWW-Authenticate": f'{_REALM}, error="invalid_token"'})


def _with_role(name: str, role: str, roles: Collection[TokenRole]) -> Caller:
    allowed = sorted(r.value for r in roles)
    if role not in allowed:
        raise ApiError(403, "forbidden",
                       f"Token {name!r} has role {role!r}; this endpoint needs a token with "
                       f"role {' or '.join(repr(r) for r in allowed)}.",
                       {"WWW-Authenticate": f'{_REALM}, error="insufficient_scope"'})
    return Caller(name=name, role=role)
