"""Support for the dashboard tests: the app on both test databases, logged-in clients, CSRF tokens.

Import the fixture and the ones it builds on into a test module::

    from tests.dashboard import Dash, dash, database_url, db_engine, db_session

``dash.login("admin")`` gives a test client logged in, through the real /login form, as a fresh
user of that role; ``dash.csrf(client, url)`` reads the csrf_token of the form on page ``url``;
``dash.session()`` is a Session on the test database for seeding (commit it). The tables are
emptied after each test (tests/db.py).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

import storage.users
from ingest.runtime import Runtime
from storage import create_user
from tests.webclient import Api, database_url, db_engine, db_session, make_api

__all__ = ["PASSWORD", "Dash", "csrf_token_of", "dash", "database_url", "db_engine", "db_session"]

# Every user the fixture makes has this password (long enough for storage.users).
PASSWORD = "correct horse battery"
FAST_HASH = "scrypt:4096:8:1"
_CSRF = re.compile(r'name="csrf_token"[^>]*\bvalue="([^"]+)"|value="([^"]+)"[^>]*\bname="csrf_token"')


def csrf_token_of(html: str) -> str:
    """The value of the first csrf_token field in ``html``; AssertionError when there is none."""
    found = _CSRF.search(html)
    assert found, "the page has no csrf_token field"
    return found.group(1) or found.group(2)


@dataclass
class Dash:
    """The app on the test database, with helpers to log in and to post forms."""

    app: Flask
    runtime: Runtime
    api: Api
    _sessions: list[Session] = field(default_factory=list)
    _numbers: Iterator[int] = field(default_factory=itertools.count)

    def session(self) -> Session:
        """A new Session on the test database (closed after the test; commit what you seed)."""
        made = self.runtime.sessions()
        self._sessions.append(made)
        return made

    def add_user(self, role: str, name: str | None = None, password: str = PASSWORD) -> str:
        """Create (and commit) a user of ``role``; returns the name."""
        name = name or f"{role}-{next(self._numbers)}"
        with self.runtime.sessions() as session:
            create_user(session, name, role, password)
            session.commit()
        return name

    def client(self) -> FlaskClient:
        """A test client with no session yet."""
        return self.app.test_client()

    def csrf(self, client: FlaskClient, url: str) -> str:
        """The csrf_token of the form on page ``url``, as ``client`` sees it."""
        response = client.get(url)
        assert response.status_code == 200, f"GET {url} gave {response.status_code}"
        return csrf_token_of(response.get_data(as_text=True))

    def login(self, role: str, name: str | None = None) -> FlaskClient:
        """A client logged in (through the /login form) as a fresh user of ``role``."""
        name = self.add_user(role, name)
        client = self.client()
        response = client.post("/login", data={"name": name, "password": PASSWORD,
                                               "csrf_token": self.csrf(client, "/login")})
        assert response.status_code == 302, f"login of {name} gave {response.status_code}"
        return client

    def close(self) -> None:
        for made in self._sessions:
            made.close()
        self.runtime.close()


@pytest.fixture
def dash(database_url: str, db_session: Session, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Dash]:
    """The dashboard on both backends (a session secret of its own); tables emptied afterwards.

    Passwords are hashed with a cheaper scrypt cost (N=2**12) than in production, so that the
    many logins of the tests stay fast; the hashes are scrypt all the same.
    """
    monkeypatch.setattr(storage.users, "HASH_METHOD", FAST_HASH)
    monkeypatch.setattr(storage.users, "_DUMMY_HASH", generate_password_hash("nobody's", method=FAST_HASH))
    api = make_api(database_url, db_session, RICOCHET_WEB_SECRET_KEY_FILE=str(tmp_path / "web-secret.key"))
    made = Dash(app=api.app, runtime=api.runtime, api=api)
    yield made
    made.close()
