"""``POST /v1/ingest``: the webhook collector. A raw message in the body, stored before the answer.

The order of the checks is the cheapest refusal first, and nothing is read that is not needed:
the token (401/403), the content type (415), the declared length (413, before a byte of the
body is read), then the body itself, read in pieces and abandoned as soon as it goes past
``[api].max_body_bytes`` (413: a chunked upload has no length to check beforehand). Only then is
the message handed to the committer (ingest/committer.py), which stores the messages of concurrent
requests in one transaction, and the answer (202, or 200 for a duplicate) is sent after that
commit: a 2xx means the bytes are in the database (DESIGN.md, "Data flow", step 1). A 503 means
they may not be: too many messages were waiting (Retry-After: 1), or the commit failed.
"""

from __future__ import annotations

import logging
from typing import IO, TYPE_CHECKING

from flask import Blueprint, Response, jsonify, request

from ingest.committer import CommitFailed, QueueFull, TokenRevoked
from storage import hash_token
from web.auth import INGEST_ROLES, Caller, authenticate, authenticate_known, bearer_token
from web.database import current_runtime, session_scope
from web.errors import RETRY_DATABASE, ApiError

if TYPE_CHECKING:
    from ingest.runtime import Runtime

__all__ = ["ACCEPTED_TYPES", "blueprint", "read_body"]

log = logging.getLogger(__name__)

blueprint = Blueprint("ingest_api", __name__)

# message/rfc822 is the type of a whole message (RFC 2046, section 5.2.1);
# application/octet-stream is what many HTTP clients and webhook relays send for "bytes".
ACCEPTED_TYPES = ("message/rfc822", "application/octet-stream")
# Read the body in pieces this big, so that a too-large upload is noticed early.
_CHUNK = 64 * 1024
# Seconds a client should wait before it retries: a full queue drains in well under a second; a
# failing database (web.errors.RETRY_DATABASE) takes longer.
_RETRY_BUSY = "1"


@blueprint.post("/v1/ingest")
def ingest() -> tuple[Response, int]:
    """Store and process the message in the body; 202 when new, 200 when it was there before."""
    runtime = current_runtime()
    caller, confirm = _caller(runtime)
    if request.mimetype not in ACCEPTED_TYPES:
        raise ApiError(415, "unsupported_media_type",
                       f"Send the raw message with 'Content-Type: message/rfc822' (or "
                       f"application/octet-stream), not {request.mimetype or 'no content type'!r}.")
    raw = read_body(request.stream, request.content_length, runtime.settings.api.max_body_bytes)
    if not raw:
        raise ApiError(400, "bad_request", "The body is empty; send the raw message as the body.")
    try:
        result = runtime.committer.submit(raw, source="webhook", source_ref=caller.name, token_sha256=confirm)
    except TokenRevoked:
        # Revoked since the policy node's copy was loaded: the answer of an unknown token.
        raise _revoked() from None
    except QueueFull:
        raise ApiError(503, "service_unavailable", "Too many messages are waiting to be stored; "
                       "nothing was stored. Retry in a second.", {"Retry-After": _RETRY_BUSY}) from None
    except CommitFailed:
        raise ApiError(503, "service_unavailable", "The database is unavailable; nothing was stored. "
                       "Retry later.", {"Retry-After": RETRY_DATABASE}) from None
    log.info("webhook: message %d (%d bytes, %s, %s) from token %r", result.message_id, len(raw),
             result.kind, result.status, caller.name)
    body = {"id": result.message_id, "status": result.status, "kind": result.kind,
            "created": result.created, "events": result.events}
    if result.error:
        body["error"] = result.error
    if result.stored_id is not None:
        # A complaint already recorded from other bytes: these bytes are kept too, under this id.
        body["stored_id"] = result.stored_id
    response = jsonify(body)
    response.headers["Location"] = f"/v1/messages/{result.message_id}"
    return response, 202 if result.created else 200


def _caller(runtime: Runtime) -> tuple[Caller, str | None]:
    """Who posts, and the token SHA-256 the committer must confirm (None: confirmed here already).

    A token the policy node's in-memory copy of the live tokens knows with an ingest role (that
    copy is reloaded every second) lets the request in at once; the committer then confirms it
    in the transaction that stores the message, one query per batch, so a revoked token stores
    nothing. A database session per request cost a fifth to a third of the server's CPU time per
    webhook message (benchmarks/ingest.py). Any other token is looked up now, in a session of its
    own that ends before the body is read (the body may take long to arrive; no SQLite lock stays
    open).
    """
    header = request.headers.get("Authorization")
    token = bearer_token(header)
    if token is not None:
        digest = hash_token(token)
        known = runtime.policy.tokens.get(digest)
        if known is not None and known[1] in INGEST_ROLES:
            return Caller(name=known[0], role=known[1]), digest
    with session_scope(runtime, read_only=True) as session:
        return authenticate(session, header, INGEST_ROLES), None


def _revoked() -> ApiError:
    """The 401 of a token that is unknown or revoked (web.auth's, from an empty table of tokens)."""
    try:
        authenticate_known({}, request.headers.get("Authorization"), INGEST_ROLES)
    except ApiError as refused:
        return refused
    raise AssertionError("an empty table of tokens let a request in")


def read_body(stream: IO[bytes], declared: int | None, limit: int) -> bytes:
    """At most ``limit`` bytes of ``stream``; ApiError 413 as soon as the body is longer.

    ``declared`` is the Content-Length, checked before reading anything. Without one (chunked
    transfer coding) the body is read until it ends or passes the limit, never further.
    """
    if declared is not None and declared > limit:
        raise _too_large(limit, f"Content-Length is {declared} bytes")
    pieces: list[bytes] = []
    total = 0
    while True:
        piece = stream.read(min(_CHUNK, limit + 1 - total))
        if not piece:
            return b"".join(pieces)
        total += len(piece)
        if total > limit:
            raise _too_large(limit, "the body is longer")
        pieces.append(piece)


def _too_large(limit: int, found: str) -> ApiError:
    return ApiError(413, "payload_too_large",
                    f"The largest message accepted is {limit} bytes ([api].max_body_bytes) and {found}; "
                    "nothing was stored.")
