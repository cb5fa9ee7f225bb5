"""Slowing down password guessing: failed logins counted per user name and per client address.

After ``max_failures`` failures within ``lockout_seconds`` for one name, or from one address, the
login form refuses that name (or address) for ``lockout_seconds``, without checking the password.
The counters are rows of the database (``login_failures``, storage/logins.py), not the memory of
a process: every worker and every node on the same database counts into the same rows, so a
guesser who spreads the tries over the nodes gets no more of them, and a restart keeps the
lockouts. Each call is a short transaction of its own, committed before the page is answered.

A counter's key is made by ``name_key`` or ``address_key``, here only, so that the login form,
the Account page and ``python app.py user unlock`` (web/dashboard/user_commands.py) name the same
rows.

When the database fails, the call raises SQLAlchemyError like every other use of the database in
a request: the app's handler (web/errors.py) answers 503 and logs the cause's first line. The
login cannot check a password without the database anyway.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from storage import count_login_failures, forget_login_failures, login_lock_seconds, utcnow
from web.database import session_scope

if TYPE_CHECKING:
    from ingest.runtime import Runtime

__all__ = ["LoginThrottle", "address_key", "name_key"]


def name_key(name: str) -> str:
    """The counter of the user name ``name`` as the login form takes it: stripped, in any case."""
    return f"name:{name.strip().casefold()}"


def address_key(address: str | None) -> str:
    """The counter of the client address ``address``, an IP written in its one canonical form.

    "2001:DB8::7" and "2001:db8:0::7" are one client, and so are "::ffff:192.0.2.7" (an IPv4
    client of a dual-stack socket) and "192.0.2.7", whether the address comes from the socket,
    from a proxy's X-Forwarded-For or from the command line. Anything else is kept as it is
    ("-" for none).
    """
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return f"addr:{address or '-'}"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return f"addr:{ip}"


class LoginThrottle:
    """Failure counters with a lockout, kept in the database of ``runtime``; safe to share.

    ``clock`` gives the time (aware, UTC) of each failure and check; tests move it.
    """

    def __init__(self, runtime: Runtime, max_failures: int, lockout_seconds: int,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.runtime = runtime
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds
        self.clock = clock

    def wait_seconds(self, keys: Iterable[str]) -> int:
        """Seconds until any of ``keys`` (a name, an address) may try again; 0 when none is locked."""
        with session_scope(self.runtime, read_only=True) as session:
            return login_lock_seconds(session, keys, self.clock())

    def failed(self, keys: Iterable[str]) -> None:
        """Count one failed login for each of ``keys``; lock the ones that reach the limit."""
        with session_scope(self.runtime) as session:
            count_login_failures(session, keys, self.clock(), max_failures=self.max_failures,
                                 lockout=timedelta(seconds=self.lockout_seconds))
            session.commit()

    def succeeded(self, key: str) -> None:
        """Forget the failures of ``key`` (the user name that just logged in)."""
        with session_scope(self.runtime) as session:
            forget_login_failures(session, [key])
            session.commit()
