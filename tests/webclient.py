"""Support for the web API tests: an app on the two test databases, tokens, row counts, corpus files.

Import the fixtures into a test module (``from tests.webclient import api, tokens, ...``); they
build on tests/db.py, so every test using them runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app import create_app
from config import load_settings
from ingest.runtime import Runtime
from storage import ApiToken, Event, EventIdentity, RawMessage, create_token
from tests.db import database_url, db_engine, db_session

__all__ = ["CORPUS", "SESSION_SECRET", "Api", "api", "body_of", "corpus_bytes", "counts", "database_url",
           "db_engine", "db_session", "expected_rows", "make_api", "post_message"]

CORPUS = Path(__file__).resolve().parent / "data" / "corpus"
# Every role the tests use, one token each (the names are the roles).
ROLES = ("ingest", "viewer", "admin", "mta")
# The dashboard's session secret of the apps made here, unless a test names its own (a key or a
# file): the default, the file var/web-secret.key, would be created in the working tree.
SESSION_SECRET = secrets.token_hex(32)


@dataclass
class Api:
    """An app on the test database, its test client and a token per role."""

    app: Flask
    client: FlaskClient
    runtime: Runtime
    tokens: dict[str, str]

    def auth(self, role: str) -> dict[str, str]:
        """The Authorization header of the ``role`` token."""
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def make_api(url: str, session: Session, **env: str) -> Api:
    """An Api on ``url`` with one committed token per role; ``env`` adds RICOCHET_* settings."""
    secret = {} if {"RICOCHET_WEB_SECRET_KEY", "RICOCHET_WEB_SECRET_KEY_FILE"} & env.keys() else {
        "RICOCHET_WEB_SECRET_KEY": SESSION_SECRET}
    settings = load_settings(env={"RICOCHET_DATABASE_URL": url, **secret, **env})
    runtime = Runtime.from_settings(settings)
    app = create_app(settings, runtime)
    tokens = {role: create_token(session, role, role)[1] for role in ROLES}
    session.commit()
    return Api(app=app, client=app.test_client(), runtime=runtime, tokens=tokens)


@pytest.fixture
def api(database_url: str, db_session: Session) -> Iterator[Api]:
    """The API on both backends, default settings; the tables are emptied after the test."""
    made = make_api(database_url, db_session)
    yield made
    made.runtime.close()


def counts(engine: Engine) -> dict[str, int]:
    """Rows per table the webhook writes to, read in a connection of its own.

    DEFERRED on SQLite: a plain read must not queue behind (or hold) the write lock.
    """
    with engine.execution_options(sqlite_begin="DEFERRED").connect() as connection:
        return {
            "raw_messages": connection.scalar(select(func.count()).select_from(RawMessage)) or 0,
            "events": connection.scalar(select(func.count()).select_from(Event)) or 0,
            "event_identities": connection.scalar(select(func.count()).select_from(EventIdentity)) or 0,
            "api_tokens": connection.scalar(select(func.count()).select_from(ApiToken)) or 0,
        }


def corpus_bytes(name: str) -> bytes:
    """The bytes of corpus file ``maildir/bsd/<name>``."""
    return (CORPUS / "emails" / "maildir" / "bsd" / name).read_bytes()


def expected_rows(name: str) -> list[dict[str, Any]]:
    """The rows of the corpus's expected.jsonl for ``maildir/bsd/<name>`` (one per recipient)."""
    with (CORPUS / "expected.jsonl").open(encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    return [row for row in rows if row["file"] == f"maildir/bsd/{name}"]


def body_of(response: TestResponse) -> dict[str, Any]:
    """The JSON object of ``response`` (fails the test when there is none)."""
    body = response.get_json(silent=True)
    assert isinstance(body, dict), f"{response.status} is not a JSON object: {response.data[:200]!r}"
    return body


def post_message(api: Api, raw: bytes, role: str = "ingest",
                 content_type: str = "message/rfc822") -> TestResponse:
    """POST ``raw`` to /v1/ingest with the ``role`` token."""
    return api.client.post("/v1/ingest", data=raw, headers={**api.auth(role), "Content-Type": content_type})
