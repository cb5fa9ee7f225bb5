"""``python app.py user add|list|passwd|disable|enable|remove|unlock|locked``: the dashboard's users.

Users are made on the command line only (there is no sign-up page). A password comes from
``--password-file PATH`` (its first line), from the environment variable RICOCHET_USER_PASSWORD
(for scripts), or else from a prompt that asks twice and echoes nothing. Errors are one sentence
on standard error and exit status 1 (2 for a bad command line, as click does).

``unlock`` and ``locked`` are about the login lockouts of web/dashboard/throttle.py, which a restart
does not lift: they name the counters with its ``name_key`` and ``address_key``.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from config import Settings
from storage import (
    UserError,
    UserRole,
    counted_login_failures,
    create_user,
    find_user,
    forget_login_failures,
    list_users,
    locked_login_keys,
    login_lock_seconds,
    make_engine,
    remove_user,
    session_factory,
    set_disabled,
    set_password,
    utcnow,
)
from web.dashboard.throttle import address_key, name_key

__all__ = ["PASSWORD_ENV", "user_command"]

SettingsOf = Callable[[click.Context], Settings]
PASSWORD_ENV = "RICOCHET_USER_PASSWORD"
_ROLES = [role.value for role in UserRole]


def _fail(ctx: click.Context, message: str, status: int = 1) -> None:
    click.echo(f"Error: {message}", err=True)
    ctx.exit(status)


@contextmanager
def _session(ctx: click.Context, settings_of: SettingsOf) -> Iterator[Session]:
    """A session on [database].url whose work is committed at the end; stops on a missing schema."""
    url = settings_of(ctx).database.url
    where = make_url(url).render_as_string(hide_password=True)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # reading the revision is not news
    from storage import migrate  # Alembic is loaded only for the check

    try:
        at, wanted = migrate.current(url), migrate.head()
    except SQLAlchemyError as error:
        cause = str(error).splitlines()[0]
        _fail(ctx, f"cannot open the database {where} ({cause}); check [database].url", 2)
    if at != wanted:
        state = "has no tables yet" if at is None else f"is at revision {at}, not {wanted}"
        _fail(ctx, f"the database {where} {state}; run: python app.py db upgrade", 2)
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session, session.begin():
            yield session
    finally:
        engine.dispose()


def _password(ctx: click.Context, password_file: str | None, prompt: str) -> str:
    """The new password: from the file, else the environment, else asked twice."""
    if password_file is not None:
        try:
            lines = Path(password_file).read_text(encoding="utf-8").splitlines()
        except OSError as error:
            _fail(ctx, f"cannot read the password file {password_file} ({error.strerror})", 2)
        return lines[0] if lines else ""
    from_env = os.environ.get(PASSWORD_ENV, "")
    if from_env:
        return from_env
    answer: str = click.prompt(prompt, hide_input=True, confirmation_prompt=True, err=True)
    return answer


def _password_file_option(command: Callable[..., None]) -> Callable[..., None]:
    return click.option("--password-file", type=click.Path(dir_okay=False), metavar="PATH",
                        help=f"Read the password from the first line of PATH (else ${PASSWORD_ENV}, "
                             "else a prompt).")(command)


def user_command(settings_of: SettingsOf) -> click.Group:
    """The ``user`` group, reading its settings with ``settings_of(ctx)``."""

    @click.group("user")
    def user() -> None:
        """Dashboard users: add, list, passwd, disable, enable, remove; login lockouts: unlock, locked."""

    @user.command()
    @click.argument("name")
    @click.option("--role", required=True, type=click.Choice(_ROLES),
                  help="admin: reads and acts (resume, block, verdicts); viewer: reads only.")
    @_password_file_option
    @click.pass_context
    def add(ctx: click.Context, name: str, role: str, password_file: str | None) -> None:
        """Add the user NAME with a role and a password."""
        try:
            with _session(ctx, settings_of) as session:  # a taken name fails before the prompt
                if find_user(session, name) is not None:
                    raise UserError(f"a user named {name.strip()!r} exists already (python app.py user list)")
            password = _password(ctx, password_file, "Password")
            with _session(ctx, settings_of) as session:
                create_user(session, name, role, password)
        except UserError as error:
            _fail(ctx, str(error))
        click.echo(f"user {name.strip()!r} ({role}) added")

    @user.command("list")
    @click.pass_context
    def list_(ctx: click.Context) -> None:
        """List the users: name, role, created, disabled (never a password)."""
        with _session(ctx, settings_of) as session:
            rows = [(row.name, row.role, row.created_at, row.disabled_at) for row in list_users(session)]
        if not rows:
            click.echo("no user yet: python app.py user add NAME --role admin|viewer")
            return
        width = max(len(name) for name, _, _, _ in rows)
        for name, role, created, disabled in rows:
            state = f"disabled {disabled:%Y-%m-%d %H:%M}Z" if disabled else "active"
            click.echo(f"{name:<{width}}  {role:<6}  created {created:%Y-%m-%d %H:%M}Z  {state}")

    @user.command()
    @click.argument("name")
    @_password_file_option
    @click.pass_context
    def passwd(ctx: click.Context, name: str, password_file: str | None) -> None:
        """Set a new password for NAME (their open sessions end)."""
        try:
            with _session(ctx, settings_of) as session:
                found = find_user(session, name)
                if found is None:
                    raise UserError(f"no user named {name.strip()!r} (python app.py user list shows them)")
                set_password(session, found, _password(ctx, password_file, "New password"))
        except UserError as error:
            _fail(ctx, str(error))
        click.echo(f"password of {name.strip()!r} changed")

    def _switch(verb: str, disabled: bool) -> Callable[[click.Context, str], None]:
        def switch(ctx: click.Context, name: str) -> None:
            try:
                with _session(ctx, settings_of) as session:
                    set_disabled(session, name, disabled)
            except UserError as error:
                _fail(ctx, str(error))
            click.echo(f"user {name.strip()!r} {verb}")

        return switch

    user.command("disable", help="Disable NAME: no login, open sessions end; the name is kept.")(
        click.argument("name")(click.pass_context(_switch("disabled", True))))
    user.command("enable", help="Let the disabled user NAME log in again.")(
        click.argument("name")(click.pass_context(_switch("enabled", False))))

    @user.command()
    @click.argument("name")
    @click.pass_context
    def remove(ctx: click.Context, name: str) -> None:
        """Delete the user NAME: open sessions end at once (verdicts keep their author's name)."""
        try:
            with _session(ctx, settings_of) as session:
                remove_user(session, name)
        except UserError as error:
            _fail(ctx, str(error))
        click.echo(f"user {name.strip()!r} removed")

    _lockout_commands(user, settings_of)
    return user


def _lockout_commands(user: click.Group, settings_of: SettingsOf) -> None:
    """Add ``unlock`` and ``locked`` to the group ``user``."""

    @user.command()
    @click.argument("name", required=False)
    @click.option("--address", metavar="IP", help="Unlock the client address IP (as well as NAME, if given).")
    @click.pass_context
    def unlock(ctx: click.Context, name: str | None, address: str | None) -> None:
        """Lift the login lockout of NAME (any case) or --address IP.

        Their failed logins are forgotten too. NAME need not be a user: a guesser can lock made-up
        names as well.
        """
        if name is None and address is None:
            _fail(ctx, "say what to unlock: a user name, --address IP or both (user locked lists them)", 2)
        targets: list[tuple[str, str]] = []  # (key, how the sentence names it)
        if name is not None:
            targets.append((name_key(name), repr(name.strip())))
        if address is not None:
            try:
                ipaddress.ip_address(address.strip())
            except ValueError:
                _fail(ctx, f"--address {address!r} is not an IP address such as 192.0.2.7 or 2001:db8::7", 2)
            targets.append((address_key(address.strip()), f"the address {address.strip()}"))
        lockout = timedelta(seconds=settings_of(ctx).web.login_lockout_seconds)
        now = utcnow()
        with _session(ctx, settings_of) as session:
            lines = [_unlock(session, key, label, now, lockout) for key, label in targets]
            if name is not None and all(name_key(row.name) != targets[0][0] for row in list_users(session)):
                lines[0] += "; no user has this name"
        for line in lines:
            click.echo(line)

    @user.command()
    @click.pass_context
    def locked(ctx: click.Context) -> None:
        """List the names and addresses locked out of the login now, with the time left."""
        with _session(ctx, settings_of) as session:
            rows = locked_login_keys(session, utcnow())
        if not rows:
            click.echo("nothing is locked now")
            return
        width = max(len(_shown(key)) for key, _ in rows)
        for key, seconds in rows:
            click.echo(f"{_shown(key):<{width}}  {_time_left(seconds)} left")


def _unlock(session: Session, key: str, label: str, now: datetime, lockout: timedelta) -> str:
    """Forget the failures and the lockout of ``key``; what that did, as a sentence about ``label``."""
    left = login_lock_seconds(session, [key], now)
    failures = counted_login_failures(session, key, now, lockout)
    forget_login_failures(session, [key])
    if left:
        return f"unlocked {label} (the lockout had {_time_left(left)} left)"
    if failures:
        verb = "is" if failures == 1 else "are"
        return f"{label} was not locked; its {_count(failures, 'failed login')} {verb} forgotten"
    return f"nothing to unlock for {label}"


def _time_left(seconds: int) -> str:
    """A wait as people say it: "40 seconds", "5 minutes" (rounded up), "2 hours 5 minutes"."""
    if seconds < 60:
        return _count(seconds, "second")
    minutes = math.ceil(seconds / 60)
    if minutes < 120:
        return _count(minutes, "minute")
    hours, minutes = divmod(minutes, 60)
    return _count(hours, "hour") + (f" {_count(minutes, 'minute')}" if minutes else "")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _shown(key: str) -> str:
    """``key`` safe for a terminal: guessers choose the names, control characters included."""
    return key if key.isprintable() else ascii(key)
