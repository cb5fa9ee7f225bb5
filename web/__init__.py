"""The HTTP API of Ricochet (the admin dashboard will join it here).

``init_app(app, runtime)`` registers the endpoints on a Flask app:

- ``POST /v1/ingest`` (web.ingest_api): the webhook collector, tokens of role ingest or admin;
- ``GET /v1/messages/<id>``, ``GET /v1/messages/<id>/raw`` and ``GET /v1/events``
  (web.read_api): reading it back, tokens of role viewer or admin;

with bearer-token authentication (web.auth) and one JSON shape for every error (web.errors).
docs/api.md documents them for clients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask

from web import ingest_api, read_api
from web.database import RUNTIME_KEY
from web.errors import register_error_handlers

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
    register_error_handlers(app)
