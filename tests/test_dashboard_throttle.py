"""The login lockout across processes, on both backends: nodes share it, a restart keeps it.

Expected behaviour comes from docs/dashboard.md ("Slowing down guessing"): the failed logins are
counted in the database, so several `serve` nodes on one database count together and a restart
forgets nothing; a database failure is a 503 page, not a 500. Each node here is an
app of its own (``create_app``, its own Runtime and memory) on the test database.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import text

from app import create_app
from config import load_settings
from ingest.runtime import Runtime
from storage.engine import make_engine
from storage.migrate import upgrade
from tests.dashboard import PASSWORD, Dash, csrf_token_of, dash, database_url, db_engine, db_session
from tests.db import empty_database_url
from web.dashboard.access import THROTTLE_KEY

__all__ = ["dash", "database_url", "db_engine", "db_session", "empty_database_url"]

WRONG = "wrong password!"


@contextmanager
def node(url: str, tmp_path: Path) -> Iterator[Flask]:
    """Another `serve` process on the database ``url``, with the session secret of the dash fixture."""
    settings = load_settings(env={"RICOCHET_DATABASE_URL": url,
                                  "RICOCHET_WEB_SECRET_KEY_FILE": str(tmp_path / "web-secret.key")})
    with Runtime.from_settings(settings) as runtime:
        yield create_app(settings, runtime)


def attempt(app: Flask, name: str, password: str, address: str) -> int:
    """The status of a login to ``app`` as ``name`` from the client address ``address``."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    token = csrf_token_of(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token}).status_code


def test_two_nodes_count_the_failures_of_a_name_together(dash: Dash, database_url: str,
                                                         tmp_path: Path) -> None:
    name = dash.add_user("admin")
    limit = dash.runtime.settings.web.login_max_failures
    with node(database_url, tmp_path) as other:
        # Half the guesses on each node, each from an address of its own: only the name reaches
        # the limit, and only when the nodes add up.
        for number in range(limit):
            assert attempt(dash.app if number % 2 else other, name, WRONG, f"192.0.2.{number}") == 401
        for app in (dash.app, other):
            assert attempt(app, name, PASSWORD, "198.51.100.1") == 429


def test_two_nodes_count_the_failures_of_an_address_together(dash: Dash, database_url: str,
                                                             tmp_path: Path) -> None:
    victim = dash.add_user("viewer")
    limit = dash.runtime.settings.web.login_max_failures
    with node(database_url, tmp_path) as other:
        for number in range(limit):
            assert attempt(dash.app if number % 2 else other, f"guess-{number}", WRONG, "192.0.2.9") == 401
        for app in (dash.app, other):
            assert attempt(app, victim, PASSWORD, "192.0.2.9") == 429
        assert attempt(other, victim, PASSWORD, "192.0.2.10") == 302  # another address is not locked


def test_a_restarted_node_keeps_the_lockout_until_it_ends(dash: Dash, database_url: str,
                                                          tmp_path: Path) -> None:
    name = dash.add_user("viewer")
    web = dash.runtime.settings.web
    for _ in range(web.login_max_failures):
        assert attempt(dash.app, name, WRONG, "192.0.2.1") == 401
    with node(database_url, tmp_path) as restarted:  # new memory, same database
        assert attempt(restarted, name, PASSWORD, "198.51.100.1") == 429
        throttle = restarted.extensions[THROTTLE_KEY]
        left = throttle.wait_seconds([f"name:{name}"])
        assert web.login_lockout_seconds - 5 <= left <= web.login_lockout_seconds
        later = throttle.clock() + timedelta(seconds=web.login_lockout_seconds + 1)
        throttle.clock = lambda: later
        assert attempt(restarted, name, PASSWORD, "198.51.100.1") == 302
    # That good login cleared the name for every node (the address 192.0.2.1 stays locked).
    assert attempt(dash.app, name, PASSWORD, "198.51.100.2") == 302
    assert attempt(dash.app, name, PASSWORD, "192.0.2.1") == 429


def test_a_throttle_the_database_fails_answers_503_not_500(empty_database_url: str, tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE login_failures"))
    finally:
        engine.dispose()
    caplog.set_level(logging.INFO)
    with node(empty_database_url, tmp_path) as app:
        client = app.test_client()
        token = csrf_token_of(client.get("/login").get_data(as_text=True))
        response = client.post("/login", data={"name": "ada", "password": WRONG, "csrf_token": token})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    # A page for the person at the form, not the API's JSON (docs/dashboard.md).
    assert response.mimetype == "text/html"
    assert "The database is unavailable" in response.get_data(as_text=True)
    assert "database failure on POST /login" in caplog.text
    assert "Traceback" not in caplog.text and "Exception on /login" not in caplog.text
