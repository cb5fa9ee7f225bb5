"""Errors of the HTTP API: one JSON shape, ``{"error": "...", "detail": "..."}``, for every failure.

``error`` is a short, stable code a client can switch on (``unauthorized``, ``payload_too_large``,
...); ``detail`` is a sentence for a person that says what to do instead. Views raise ApiError;
the handlers registered by ``register_error_handlers`` also turn Werkzeug's own HTTP errors (an
unknown URL, a wrong method) and database failures under ``/v1/`` into that shape. The dashboard
(web/dashboard/access.py) answers a database failure on its own pages with a page for a person.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flask import Flask, Response, jsonify, request
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from werkzeug.exceptions import HTTPException

__all__ = ["API_PREFIX", "RETRY_DATABASE", "ApiError", "database_error", "error_response",
           "log_database_failure", "register_error_handlers"]

log = logging.getLogger(__name__)

API_PREFIX = "/v1/"
# Seconds a client should wait after a database failure before it tries again.
RETRY_DATABASE = "30"

# Werkzeug's status codes -> our error codes (the ones a view does not raise itself).
_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type",
          503: "service_unavailable"}


class ApiError(Exception):
    """A request the API refuses: HTTP ``status``, the ``error`` code, a ``detail`` sentence."""

    def __init__(self, status: int, error: str, detail: str, headers: Mapping[str, str] | None = None):
        super().__init__(f"{status} {error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = dict(headers or {})


def error_response(status: int, error: str, detail: str,
                   headers: Mapping[str, str] | None = None) -> Response:
    """The JSON error response."""
    response = jsonify(error=error, detail=detail)
    response.status_code = status
    response.headers.update(headers or {})
    # An error about one request is not worth caching by a proxy.
    response.headers["Cache-Control"] = "no-store"
    return response


def _api_error(exc: ApiError) -> Response:
    return error_response(exc.status, exc.error, exc.detail, exc.headers)


def _http_error(exc: HTTPException) -> HTTPException | Response:
    # Only the API speaks JSON; /healthz and the future dashboard keep Werkzeug's pages.
    if not request.path.startswith(API_PREFIX):
        return exc
    status = exc.code or 500
    detail = exc.description or exc.name
    # A 405 keeps the Allow header Werkzeug computed (RFC 9110, section 15.5.6).
    headers = {name: value for name, value in exc.get_headers() if name.lower() == "allow"}
    return error_response(status, _CODES.get(status, exc.name.lower().replace(" ", "_")), detail, headers)


def log_database_failure(exc: SQLAlchemyError) -> None:
    """Log a request's database failure: the driver's first line, not the statement's parameters.

    The views roll back their session before a handler runs (web.database.session_scope): nothing
    half-written stays behind. The cause goes to the log, not to the client, and without the
    parameters (a message's bytes, a token's hash) a str() of the error would add.
    """
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    first_line = (str(cause).strip().splitlines() or [""])[0]
    log.error("database failure on %s %s: %s: %s", request.method, request.path, type(cause).__name__,
              first_line)


def database_error(exc: SQLAlchemyError) -> Response:
    """The JSON 503 of a request whose database failed (logged first), with Retry-After."""
    log_database_failure(exc)
    return error_response(503, "service_unavailable",
                          "The database is unavailable; nothing was stored. Retry later.",
                          {"Retry-After": RETRY_DATABASE})


def register_error_handlers(app: Flask) -> None:
    """Install the JSON error handlers on ``app``."""
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(SQLAlchemyError, database_error)
