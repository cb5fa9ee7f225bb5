"""Dashboard page module `account`: /login, /logout and /account (change one's own password).

A wrong password and an unknown name get the same answer in the same time
(storage.users.authenticate); repeated failures lock the name and the client address for a while
(web.dashboard.throttle, [web].login_max_failures and login_lockout_seconds).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from storage import UserError, authenticate, find_user, set_password
from storage.users import MIN_PASSWORD_LENGTH, check_password_rules, verify_password
from web.dashboard.access import THROTTLE_KEY, current_user, log_in, login_required
from web.dashboard.throttle import LoginThrottle, address_key, name_key
from web.database import current_runtime, session_scope

__all__ = ["blueprint", "safe_next"]

blueprint = Blueprint("account", __name__)

BAD_LOGIN = "Wrong user name or password."


def _home() -> str:
    if "overview.index" in current_app.view_functions:
        return url_for("overview.index")
    return url_for("account.account")


def safe_next(target: str | None) -> str:
    """``target`` when it is a path on this site, else the home page (no open redirect).

    Browsers read "//evil.example" and "/\\evil.example" as other hosts, and drop tabs and
    newlines from URLs, so only a plain absolute path without those passes.
    """
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return _home()
    if any(ch in target for ch in "\\\t\r\n") or not target.isprintable():
        return _home()
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return _home()
    return target


def _throttle() -> LoginThrottle:
    throttle: LoginThrottle = current_app.extensions[THROTTLE_KEY]
    return throttle


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    """The login form; a good name and password start a session and go on to ``next``."""
    target = request.values.get("next", "")
    if current_user() is not None and request.method == "GET":
        return redirect(safe_next(target))
    if request.method == "GET":
        return render_template("dashboard/account/login.html", next=target, name="")
    name = request.form.get("name", "").strip()
    password = request.form.get("password", "")
    keys = (name_key(name), address_key(request.remote_addr))
    wait = _throttle().wait_seconds(keys)
    if wait:
        minutes = max(1, round(wait / 60))
        return render_template("dashboard/account/login.html", next=target, name=name,
                               error=f"Too many failed logins; try again in {minutes} minute"
                                     f"{'s' if minutes > 1 else ''}."), 429
    with session_scope(current_runtime(), read_only=True) as db:
        user = authenticate(db, name, password)
    # The throttle writes in transactions of its own, after this one has ended.
    if user is None:
        _throttle().failed(keys)
        return render_template("dashboard/account/login.html", next=target, name=name, error=BAD_LOGIN), 401
    _throttle().succeeded(keys[0])
    log_in(user)  # last, so that a 503 of the throttle above leaves no session behind
    return redirect(safe_next(target))


@blueprint.post("/logout")
@login_required
def logout() -> Response:
    """End the session (a POST with the CSRF token, so another site cannot log a user out)."""
    session.clear()
    flash("You are logged out.", "ok")
    return redirect(url_for("account.login"))


@blueprint.route("/account", methods=["GET", "POST"])
@login_required
def account() -> Response | str | tuple[str, int]:
    """The user's own page: who they are, and a form to change their password."""
    if request.method == "GET":
        return render_template("dashboard/account/account.html", min_password_length=MIN_PASSWORD_LENGTH)
    current = request.form.get("current_password", "")
    new, again = request.form.get("new_password", ""), request.form.get("new_password_again", "")
    error = _change_password(current, new, again)
    if error:
        return render_template("dashboard/account/account.html", min_password_length=MIN_PASSWORD_LENGTH,
                               error=error), 400
    flash("Your password is changed; your other sessions have ended.", "ok")
    return redirect(url_for("account.account"))


def _change_password(current: str, new: str, again: str) -> str:
    """Change the logged-in user's password; the error sentence, or "" when done."""
    user = current_user()
    if user is None:  # login_required makes this impossible
        return "You are not logged in."
    if new != again:
        return "The two new passwords differ."
    # The current password is guessed here as at the login (a session left open): same counter.
    if _throttle().wait_seconds([name_key(user.name)]):
        return "Too many wrong passwords; try again later."
    try:
        check_password_rules(new)
    except UserError as error:
        return f"{str(error)[0].upper()}{str(error)[1:]}."
    with session_scope(current_runtime()) as db:
        row = find_user(db, user.name)
        if row is not None and verify_password(row, current):
            set_password(db, row, new)
            db.commit()
            log_in(row)  # this session goes on with the new stamp; the others end
            return ""
    # Counted once the session above has ended: on SQLite it holds the write lock the count needs.
    _throttle().failed([name_key(user.name)])
    return "The current password is wrong."
