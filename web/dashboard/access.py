"""Who may see and do what on the dashboard: users, sessions and CSRF.

Contract used by every page module:

- ``login_required(view)``: a viewer or admin must be logged in, else redirect to /login?next=...
- ``admin_required(view)``: an admin must be logged in (a viewer gets a 403 page).
- ``current_user() -> DashboardUser | None``: the logged-in user (name, role, is_admin).
- Every form that posts carries ``<input type="hidden" name="csrf_token" value="{{ csrf_token() }}">``.
- ``init_app(app, runtime)``: session secret, cookie settings, CSRF protection on every form
  (the bearer-token API is exempt).

The session cookie (Flask's, signed with the secret of [web]) holds only the user's id and a
fingerprint of their password hash. The user is read from the database on every request, so a
removed or disabled user, or a session opened before a password change, is out at once.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from flask import Flask, current_app, g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from config import ConfigError
from config.web import MIN_SECRET_LENGTH, WebSettings
from storage import User, password_stamp
from web.dashboard.throttle import LoginThrottle
from web.database import current_runtime, session_scope
from web.errors import API_PREFIX, RETRY_DATABASE, database_error, log_database_failure

if TYPE_CHECKING:
    from ingest.runtime import Runtime

__all__ = [
    "API_BLUEPRINTS",
    "THROTTLE_KEY",
    "DashboardUser",
    "admin_required",
    "current_user",
    "error_page",
    "init_app",
    "log_in",
    "login_required",
    "session_secret",
]

log = logging.getLogger(__name__)

_View = TypeVar("_View", bound=Callable[..., Any])

# The blueprints of the bearer-token API (web/__init__.py, policy/http.py): a program sends its
# token in a header, which a browser never adds by itself, so they need no CSRF token. Every
# other blueprint, present or future, is protected.
API_BLUEPRINTS = ("ingest_api", "read_api", "identities", "policy")
THROTTLE_KEY = "ricochet.login_throttle"
_USER_ID = "user_id"
_STAMP = "stamp"
_NO_USER = object()


@dataclass(frozen=True)
class DashboardUser:
    """A logged-in dashboard user."""

    name: str
    role: str  # "admin" or "viewer"
    id: int = 0

    @property
    def is_admin(self) -> bool:
        """Whether this user may act (not only read)."""
        return self.role == "admin"


def current_user() -> DashboardUser | None:
    """The user of this request's session, or None (read once per request from the database)."""
    cached = g.get("dashboard_user", _NO_USER)
    if cached is _NO_USER:
        cached = _load_user()
        g.dashboard_user = cached
    return cast("DashboardUser | None", cached)


def _load_user() -> DashboardUser | None:
    user_id = session.get(_USER_ID)
    if not isinstance(user_id, int):
        return None
    with session_scope(current_runtime(), read_only=True) as db:
        row = db.get(User, user_id)
        if row is None or row.disabled_at is not None or session.get(_STAMP) != password_stamp(row):
            found = None
        else:
            found = DashboardUser(name=row.name, role=row.role, id=row.id)
    if found is None:
        session.clear()  # removed, disabled, or the password changed since this login
    return found


def log_in(user: User) -> None:
    """Start a session for ``user`` (a fresh one: nothing of the anonymous session is kept)."""
    session.clear()
    session[_USER_ID] = user.id
    session[_STAMP] = password_stamp(user)
    session.permanent = True  # lasts [web].session_hours, not until the browser closes
    g.dashboard_user = DashboardUser(name=user.name, role=user.role, id=user.id)


def login_required(view: _View) -> _View:
    """Let logged-in users (either role) through; send others to the login page."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            return _to_login()
        return view(*args, **kwargs)

    return cast(_View, wrapped)


def admin_required(view: _View) -> _View:
    """Let admins through; viewers get 403, anonymous users the login page."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        user = current_user()
        if user is None:
            return _to_login()
        if not user.is_admin:
            return error_page(403, "Admins only", f"You are logged in as {user.name}, a viewer: you can "
                                                  "read every page, but only an admin can do this.")
        return view(*args, **kwargs)

    return cast(_View, wrapped)


def _to_login() -> Response:
    # Only a GET can be replayed after the login; a form's POST is not: the login goes home then.
    target = request.full_path if request.method == "GET" else ""
    target = target.removesuffix("?")
    return redirect(url_for("account.login", next=target or None))


def error_page(status: int, title: str, message: str) -> tuple[str, int]:
    """A dashboard page that explains a refusal or an error, with ``status``."""
    page = render_template("dashboard/account/error.html", status=status, heading=title, message=message)
    return page, status


def _csrf_error(error: CSRFError) -> tuple[str, int]:
    return error_page(400, "This form has expired",
                      "The form was sent without a valid security token (CSRF), so nothing was done: "
                      "it may be older than your login, or come from another site. Go back, reload "
                      f"the page and send it again. ({error.description})")


def _database_error(error: SQLAlchemyError) -> Response | tuple[str, int, dict[str, str]]:
    """The API's JSON 503 under /v1/; elsewhere a page that says what happened, also 503."""
    if request.path.startswith(API_PREFIX):
        return database_error(error)
    log_database_failure(error)
    g.dashboard_user = None  # the page must not ask the failing database who is logged in
    page, status = error_page(503, "The database is unavailable",
                              "Ricochet cannot reach its database, so this page cannot be shown and "
                              "nothing was changed. Try again in a minute; if it lasts, check the "
                              "database server and the service's log.")
    return page, status, {"Retry-After": RETRY_DATABASE}


def session_secret(web: WebSettings) -> str:
    """The secret that signs the session cookies: [web].secret_key, or the file, made if missing.

    The file is created atomically (written aside, then linked into place), so that several
    workers starting at once all end up with the one secret that won. ValueError (a sentence)
    when the file cannot be read or holds too short a secret.
    """
    if web.secret_key:
        return web.secret_key
    path = Path(web.secret_key_file)
    if not path.exists():
        try:
            _create_secret_file(path)
        except OSError as error:
            raise ValueError(f"[web].secret_key_file {path}: cannot be created ({error.strerror}); make "
                             "its directory writable, or set RICOCHET_WEB_SECRET_KEY") from None
    try:
        text = path.read_text(encoding="utf-8").strip()
        mode = path.stat().st_mode
    except OSError as error:
        raise ValueError(f"[web].secret_key_file {path}: cannot be read ({error.strerror}); fix its "
                         "permissions, or set RICOCHET_WEB_SECRET_KEY") from None
    if len(text) < MIN_SECRET_LENGTH:
        raise ValueError(f"[web].secret_key_file {path}: holds fewer than {MIN_SECRET_LENGTH} characters; "
                         "delete it to have a new one made, or put a longer random secret in it")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s can be read by other users (mode %o); run: chmod 600 %s", path, mode & 0o777, path)
    return text


def _create_secret_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # whatever the umask
        os.write(descriptor, (secrets.token_hex(32) + "\n").encode("ascii"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    try:
        os.link(aside, path)
        log.warning("created the dashboard's session secret in %s (every node must share it; "
                    "see docs/dashboard.md)", path)
    except FileExistsError:
        pass  # another worker was first: use its secret
    finally:
        aside.unlink()


def _security_headers(response: Response) -> Response:
    if not request.path.startswith("/v1/"):
        # No framing (clickjacking), no MIME sniffing, no full URLs (identity names) to other sites.
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy",
                                    "frame-ancestors 'none'; object-src 'none'; base-uri 'none'; "
                                    "form-action 'self'")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def _template_context() -> dict[str, object]:
    # Page helpers add blueprints while the dashboard grows: the nav shows the ones that exist.
    return {"current_user": current_user(), "endpoints": frozenset(current_app.view_functions)}


def init_app(app: Flask, runtime: Runtime) -> None:
    """Session secret and cookie settings, CSRF protection of every form.

    Raises ConfigError (a sentence) when the session secret's file cannot be read or made.
    """
    web = runtime.settings.web
    try:
        app.secret_key = session_secret(web)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    app.config.update(
        SESSION_COOKIE_NAME="ricochet_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=web.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=web.session_hours),
        # A form's token is good as long as the login is (the session ends it), not one hour.
        WTF_CSRF_TIME_LIMIT=None,
    )
    csrf = CSRFProtect(app)
    for name in API_BLUEPRINTS:
        csrf.exempt(app.blueprints[name])
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(SQLAlchemyError, _database_error)  # in place of web.errors's
    app.extensions[THROTTLE_KEY] = LoginThrottle(runtime, web.login_max_failures, web.login_lockout_seconds)
    app.context_processor(_template_context)
    app.after_request(_security_headers)
