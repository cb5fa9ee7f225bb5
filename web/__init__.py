"""The HTTP side of Ricochet: the API for programs and the dashboard for people.

``init_app(app, runtime)`` registers the endpoints on a Flask app:

- ``POST /v1/ingest`` (web.ingest_api): the webhook collector, tokens of role ingest or admin;
- ``GET /v1/messages/<id>``, ``GET /v1/messages/<id>/raw`` and ``GET /v1/events``
  (web.read_api): reading it back, tokens of role viewer or admin;
- ``GET /v1/identities/<kind>/<value>`` and ``POST .../actions`` (web.identities): an identity's
  reputation, and the admins' corrections (admin tokens);
- ``GET/POST /v1/policy`` (policy.http, docs/mta.md): the MTA's policy lookup, tokens of role mta,
  answered by the runtime's policy node (its refresh and flush loops start here);

with bearer-token authentication (web.auth) and one JSON shape for every error (web.errors).
docs/api.md documents them for clients. The dashboard's pages (web.dashboard, docs/dashboard.md)
take logged-in users instead of tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask, Response, request

import policy.http
from storage import TokenRole
from web import identities, ingest_api, read_api
from web.auth import authenticate_known
from web.dashboard import init_dashboard
from web.database import RUNTIME_KEY
from web.errors import ApiError, error_response, register_error_handlers

if TYPE_CHECKING:
    from ingest.runtime import Runtime

__all__ = ["init_app"]


def init_app(app: Flask, runtime: Runtime) -> None:
    """Register the API's endpoints and error handlers on ``app``, serving from ``runtime``.

    The caller owns ``runtime`` and closes it when the app is done (app.py does, at the end of
    ``serve``).
    """
    app.extensions[RUNTIME_KEY] = runtime
    app.register_blueprint(ingest_api.blueprint)
    app.register_blueprint(read_api.blueprint)
    app.register_blueprint(identities.blueprint)
    runtime.policy.start()  # stopped by runtime.close()
    app.register_blueprint(policy.http.blueprint(runtime.policy.engine, _mta_token(runtime)))
    register_error_handlers(app)
    init_dashboard(app, runtime)


def _mta_token(runtime: Runtime) -> policy.http.Authorize:
    """The /v1/policy token check: role mta; a refusal is the API's JSON 401/403.

    Checked against the policy node's in-memory copy of the live tokens (reloaded with the
    decisions every second), so the lookup never waits on the database.
    """

    def authorize() -> Response | None:
        try:
            authenticate_known(runtime.policy.tokens, request.headers.get("Authorization"), (TokenRole.MTA,))
        except ApiError as refused:
            return error_response(refused.status, refused.error, refused.detail, refused.headers)
        return None

    return authorize
