"""Dashboard access on both backends: login, roles, CSRF, sessions that end, the secret, the API.

Expected behaviour comes from issue 5 ("admin acts, viewer reads", "CSRF protection on every
form", "API tokens as in the earlier issues") and docs/dashboard.md (same answer for a wrong
password and an unknown name, same-site ``next`` only, the lockout after [web].login_max_failures,
a 0600 secret file).
"""

from __future__ import annotations

import re
import stat
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Blueprint
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from werkzeug.test import TestResponse

from app import create_app
from config import load_settings
from config.web import WebSettings
from ingest.runtime import Runtime
from storage import User, find_user, remove_user, set_disabled
from tests.dashboard import PASSWORD, Dash, dash, database_url, db_engine, db_session
from tests.webclient import corpus_bytes
from web.dashboard.access import THROTTLE_KEY, admin_required, current_user, login_required, session_secret

__all__ = ["dash", "database_url", "db_engine", "db_session"]


def add_test_pages(dash: Dash) -> None:
    """A tiny blueprint with a read view and an act view (before the app's first request)."""
    pages = Blueprint("test_pages", __name__)

    @pages.get("/test/read")
    @login_required
    def read() -> str:
        user = current_user()
        assert user is not None
        return f"read by {user.name}"

    @pages.route("/test/act", methods=["GET", "POST"])
    @admin_required
    def act() -> str:
        return "acted"

    dash.app.register_blueprint(pages)


def log_in(dash: Dash, name: str, password: str = PASSWORD, next_: str | None = None,
           client: FlaskClient | None = None) -> tuple[FlaskClient, TestResponse]:
    client = client or dash.client()
    data = {"name": name, "password": password, "csrf_token": dash.csrf(client, "/login")}
    if next_ is not None:
        data["next"] = next_
    return client, client.post("/login", data=data)


def home(dash: Dash) -> str:
    return "/" if "overview.index" in dash.app.view_functions else "/account"


# Login


def test_a_good_login_goes_on_to_next_and_the_session_works(dash: Dash) -> None:
    name = dash.add_user("viewer")
    client, response = log_in(dash, name, next_="/account?tab=password")
    assert response.status_code == 302
    assert response.headers["Location"] == "/account?tab=password"
    page = client.get("/account")
    assert page.status_code == 200
    assert name in page.get_data(as_text=True)


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(dash: Dash) -> None:
    name = dash.add_user("admin")
    answers = []
    for who, password in ((name, PASSWORD + "x"), ("nobody-here", PASSWORD)):
        client, response = log_in(dash, who, password)
        assert response.status_code == 401
        text = response.get_data(as_text=True)
        answers.append(re.sub(r'name="csrf_token" value="[^"]*"', "", text.replace(who, "NAME")))
        assert "Wrong user name or password." in text
        assert client.get("/account").status_code == 302  # not logged in
    assert answers[0] == answers[1]


def test_a_disabled_user_cannot_log_in(dash: Dash) -> None:
    name = dash.add_user("admin")
    with dash.session() as session:
        set_disabled(session, name, True)
        session.commit()
    _, response = log_in(dash, name)
    assert response.status_code == 401


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example",
                                    "javascript:alert(1)", "evil.example", "/\tevil", ""])
def test_next_must_be_a_path_on_this_site(dash: Dash, target: str) -> None:
    name = dash.add_user("viewer")
    _, response = log_in(dash, name, next_=target)
    assert response.status_code == 302
    assert response.headers["Location"] == home(dash)


def test_an_anonymous_visitor_is_sent_to_login_with_next(dash: Dash) -> None:
    response = dash.client().get("/account?x=1")
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query) == {"next": ["/account?x=1"]}


def test_repeated_failures_lock_the_name_even_for_the_right_password(dash: Dash) -> None:
    name = dash.add_user("admin")
    limit = dash.runtime.settings.web.login_max_failures
    for _ in range(limit):
        assert log_in(dash, name, "wrong password!")[1].status_code == 401
    client, response = log_in(dash, name)
    assert response.status_code == 429
    assert "Too many failed logins" in response.get_data(as_text=True)
    assert client.get("/account").status_code == 302
    # Once the lockout has passed, the right password works again.
    throttle = dash.app.extensions[THROTTLE_KEY]
    later = throttle.clock() + timedelta(seconds=dash.runtime.settings.web.login_lockout_seconds + 1)
    throttle.clock = lambda: later
    assert log_in(dash, name)[1].status_code == 302


def test_repeated_failures_from_one_address_lock_every_name(dash: Dash) -> None:
    victim = dash.add_user("viewer")
    for number in range(dash.runtime.settings.web.login_max_failures):
        log_in(dash, f"guess-{number}", "wrong password!")
    assert log_in(dash, victim)[1].status_code == 429


# Logout, roles, sessions that end


def test_logout_is_a_post_with_csrf_and_ends_the_session(dash: Dash) -> None:
    client = dash.login("viewer")
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400  # no CSRF token
    assert client.get("/account").status_code == 200
    response = client.post("/logout", data={"csrf_token": dash.csrf(client, "/account")})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/account").status_code == 302


def test_a_viewer_reads_but_gets_403_on_an_admin_view(dash: Dash) -> None:
    add_test_pages(dash)
    viewer, admin = dash.login("viewer", "vera"), dash.login("admin", "ada")
    assert viewer.get("/test/read").get_data(as_text=True) == "read by vera"
    refused = viewer.get("/test/act")
    assert refused.status_code == 403
    assert "Admins only" in refused.get_data(as_text=True)
    assert admin.get("/test/act").get_data(as_text=True) == "acted"
    anonymous = dash.client().get("/test/act")
    assert anonymous.status_code == 302 and urlsplit(anonymous.headers["Location"]).path == "/login"


def test_a_database_failure_on_a_page_is_a_503_page_and_the_api_keeps_its_json(dash: Dash,
                                                                              db_engine: Engine) -> None:
    viewer = dash.login("viewer")
    token = dash.api.tokens["viewer"]
    with db_engine.begin() as connection:  # what the events page and API read is gone
        connection.exec_driver_sql("ALTER TABLE events RENAME TO events_away")
    try:
        page = viewer.get("/events")
        api = viewer.get("/v1/events", headers={"Authorization": f"Bearer {token}"})
    finally:
        with db_engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE events_away RENAME TO events")
    assert page.status_code == 503 and page.mimetype == "text/html"
    assert page.headers["Retry-After"] == "30"
    assert "The database is unavailable" in page.get_data(as_text=True)
    assert api.status_code == 503 and (api.get_json() or {}).get("error") == "service_unavailable"
    assert viewer.get("/events").status_code == 200  # and the page is back with the table


def test_a_post_needs_the_right_csrf_token(dash: Dash) -> None:
    add_test_pages(dash)
    admin = dash.login("admin")
    missing = admin.post("/test/act")
    assert missing.status_code == 400
    assert "This form has expired" in missing.get_data(as_text=True)
    assert admin.post("/test/act", data={"csrf_token": "not-the-token"}).status_code == 400
    # A token of another session (another user's page) is not this session's.
    other = dash.login("admin")
    assert admin.post("/test/act", data={"csrf_token": dash.csrf(other, "/account")}).status_code == 400
    good = admin.post("/test/act", data={"csrf_token": dash.csrf(admin, "/account")})
    assert good.status_code == 200 and good.get_data(as_text=True) == "acted"


def test_the_login_form_itself_needs_its_csrf_token(dash: Dash) -> None:
    name = dash.add_user("admin")
    response = dash.client().post("/login", data={"name": name, "password": PASSWORD})
    assert response.status_code == 400


@pytest.mark.parametrize("how", ["removed", "disabled"])
def test_a_removed_or_disabled_users_session_stops_at_once(dash: Dash, how: str) -> None:
    client = dash.login("admin", "gone")
    assert client.get("/account").status_code == 200
    with dash.session() as session:
        if how == "removed":
            remove_user(session, "gone")
        else:
            set_disabled(session, "gone", True)
        session.commit()
    response = client.get("/account")
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login"


def test_a_password_change_keeps_this_session_and_ends_the_others(dash: Dash) -> None:
    here = dash.login("viewer", "pat")
    elsewhere, _ = log_in(dash, "pat")
    token = dash.csrf(here, "/account")
    new = "a new long password"
    for data, message in (
        ({"current_password": "wrong one!", "new_password": new, "new_password_again": new},
         "The current password is wrong."),
        ({"current_password": PASSWORD, "new_password": new, "new_password_again": new + "!"},
         "The two new passwords differ."),
        ({"current_password": PASSWORD, "new_password": "short", "new_password_again": "short"},
         "at least 10 characters"),
    ):
        refused = here.post("/account", data={**data, "csrf_token": token})
        assert refused.status_code == 400 and message in refused.get_data(as_text=True)
    done = here.post("/account", data={"current_password": PASSWORD, "new_password": new,
                                       "new_password_again": new, "csrf_token": token}, follow_redirects=True)
    assert done.status_code == 200 and "Your password is changed" in done.get_data(as_text=True)
    assert here.get("/account").status_code == 200
    assert elsewhere.get("/account").status_code == 302
    assert log_in(dash, "pat")[1].status_code == 401
    assert log_in(dash, "pat", new)[1].status_code == 302


def test_guessing_the_current_password_on_the_account_page_is_throttled_too(dash: Dash) -> None:
    client = dash.login("viewer", "sam")
    token = dash.csrf(client, "/account")
    new = "a new long password"
    for _ in range(dash.runtime.settings.web.login_max_failures):
        wrong = client.post("/account", data={"current_password": "guess guess", "new_password": new,
                                              "new_password_again": new, "csrf_token": token})
        assert "The current password is wrong." in wrong.get_data(as_text=True)
    right = client.post("/account", data={"current_password": PASSWORD, "new_password": new,
                                          "new_password_again": new, "csrf_token": token})
    assert right.status_code == 400 and "Too many wrong passwords" in right.get_data(as_text=True)
    assert log_in(dash, "sam")[1].status_code == 429  # the same counter as the login's


# Storage of passwords, the secret, cookies, headers


def test_passwords_are_stored_as_salted_scrypt_hashes(dash: Dash) -> None:
    dash.add_user("admin", "one")
    dash.add_user("viewer", "two")
    with dash.session() as session:
        hashes = {name: stored for name, stored in session.execute(select(User.name, User.password_hash))}
        assert find_user(session, "one") is not None
    assert set(hashes) == {"one", "two"}
    for stored in hashes.values():
        assert PASSWORD not in stored
        assert stored.startswith("scrypt:")
    assert hashes["one"] != hashes["two"]  # same password, different salts


def test_the_generated_secret_file_is_0600_and_kept(dash: Dash, tmp_path: Path) -> None:
    made = tmp_path / "web-secret.key"  # the dash fixture's [web].secret_key_file
    assert made.exists()
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
    assert dash.app.secret_key == made.read_text(encoding="utf-8").strip()
    assert len(dash.app.secret_key) >= 32
    fresh = tmp_path / "sub" / "dir" / "secret"
    web = WebSettings(secret_key_file=str(fresh), secure_cookies=False, session_hours=1,
                      login_max_failures=5, login_lockout_seconds=60)
    first = session_secret(web)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
    assert session_secret(web) == first  # read back, not made again
    assert session_secret(WebSettings(**{**web.__dict__, "secret_key": "k" * 40})) == "k" * 40
    fresh.write_text("too short\n", encoding="utf-8")
    with pytest.raises(ValueError, match="fewer than 32 characters"):
        session_secret(web)


def test_cookie_flags_and_security_headers(dash: Dash, database_url: str, tmp_path: Path) -> None:
    client = dash.client()
    page = client.get("/login")
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith("ricochet_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in client.get("/v1/events").headers
    settings = load_settings(env={"RICOCHET_DATABASE_URL": database_url, "RICOCHET_WEB_SECRET_KEY": "s" * 40,
                                  "RICOCHET_WEB_SECURE_COOKIES": "true"})
    with Runtime.from_settings(settings) as runtime:
        secure = create_app(settings, runtime)
        assert "Secure" in secure.test_client().get("/login").headers["Set-Cookie"]
        assert secure.secret_key == "s" * 40


# The API keeps its bearer tokens and needs no CSRF token


def test_the_api_takes_bearer_tokens_without_csrf(dash: Dash) -> None:
    client = dash.login("admin")  # a session cookie is there, and no CSRF token is sent
    raw = corpus_bytes("lhost-exim-02.eml")
    response = client.post("/v1/ingest", data=raw,
                           headers={**dash.api.auth("ingest"), "Content-Type": "message/rfc822"})
    assert response.status_code == 202
    assert client.get("/v1/events", headers=dash.api.auth("viewer")).status_code == 200
    # The session is no API credential.
    assert client.get("/v1/events").status_code == 401
    # The admins' actions and the MTA's policy lookup are POSTs without a CSRF token too.
    acted = client.post("/v1/identities/account/alice@example.com/actions", headers=dash.api.auth("admin"),
                        json={"action": "block", "reason": "test"})
    assert acted.status_code == 200, acted.data
    looked_up = client.post("/v1/policy", json={"account": "alice@example.com"}, headers=dash.api.auth("mta"))
    # The policy node reloads its tokens every second: a refusal then is the API's JSON 401, never
    # the dashboard's CSRF page.
    assert looked_up.mimetype == "application/json" and looked_up.status_code in (200, 401)
