"""``serve`` behind a reverse proxy ([server].trusted_proxy), over real HTTP on both backends.

The test plays the proxy of docs/api.md ("Behind a reverse proxy"): it is the peer 127.0.0.1 and
sends the client's address in X-Forwarded-For and the scheme in X-Forwarded-Proto. Waitress runs
with the options ``serve`` gives it (``app.waitress_options``). What must hold (docs/config.md):
from the trusted proxy, each client's own address counts for the dashboard's login lockout, and
HTTPS is seen as HTTPS; from any other peer (no proxy configured) those headers are removed, so a
client cannot pass for another address.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookies import SimpleCookie

from app import waitress_options
from config import load_settings
from tests.dashboard import PASSWORD, Dash, csrf_token_of, dash, database_url, db_engine, db_session
from tests.httpserver import serving

__all__ = ["dash", "database_url", "db_engine", "db_session"]

WRONG = "not the password"


class Browser:
    """One client's cookies, posting the login form to the server on ``port`` as a proxy would."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port = port
        self.headers = headers  # what the proxy adds to each request
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: str = "", headers: dict[str, str] | None = None,
                ) -> tuple[int, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            sent = {**self.headers, **(headers or {})}
            if self.cookies:
                sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
            connection.request(method, path, body=body.encode(), headers=sent)
            response = connection.getresponse()
            for header in response.headers.get_all("Set-Cookie") or []:
                self.cookies.update({name: morsel.value for name, morsel in SimpleCookie(header).items()})
            return response.status, response.read().decode("utf-8", "replace")
        finally:
            connection.close()

    def login(self, name: str, password: str, headers: dict[str, str] | None = None) -> int:
        """The status of a POST of the login form (after a GET for its CSRF token)."""
        token = csrf_token_of(self.request("GET", "/login")[1])
        form = f"name={name}&password={password.replace(' ', '+')}&csrf_token={token}"
        return self.request("POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded",
                                                      **(headers or {})})[0]


@contextmanager
def served(dash: Dash, **env: str) -> Iterator[int]:
    """``dash``'s app under waitress with the options of ``serve`` for the [server] settings ``env``."""
    settings = load_settings(env={"RICOCHET_DATABASE_URL": dash.runtime.settings.database.url, **env})
    with serving(dash.app, threads=4, options=waitress_options(settings)) as port:
        yield port


def from_client(port: int, address: str, scheme: str = "http") -> Browser:
    return Browser(port, {"X-Forwarded-For": address, "X-Forwarded-Proto": scheme})


def test_behind_a_trusted_proxy_each_client_has_its_own_address(dash: Dash) -> None:
    name = dash.add_user("viewer")
    limit = dash.runtime.settings.web.login_max_failures
    with served(dash, RICOCHET_SERVER_TRUSTED_PROXY="127.0.0.1") as port:
        guesser = from_client(port, "203.0.113.7")
        for number in range(limit):  # made-up names: only the address reaches the limit
            assert guesser.login(f"guess{number}", WRONG) == 401
        assert from_client(port, "203.0.113.7").login(name, PASSWORD) == 429
        assert from_client(port, "203.0.113.8").login(name, PASSWORD) == 302  # another client


def test_without_a_trusted_proxy_the_forwarded_address_is_not_believed(dash: Dash) -> None:
    name = dash.add_user("viewer")
    limit = dash.runtime.settings.web.login_max_failures
    with served(dash) as port:  # the default: no proxy is trusted
        guesser = from_client(port, "203.0.113.7")
        for number in range(limit):
            assert guesser.login(f"guess{number}", WRONG) == 401
        # Every request came from 127.0.0.1 whatever it claimed: that address is locked.
        assert from_client(port, "203.0.113.8").login(name, PASSWORD) == 429


def test_a_trusted_proxy_passes_https_on(dash: Dash) -> None:
    name = dash.add_user("viewer")
    with served(dash, RICOCHET_SERVER_TRUSTED_PROXY="127.0.0.1") as port:
        # Over HTTPS the CSRF check also wants a Referer of the same host (Flask-WTF's SSL strict
        # mode): the request is seen as HTTPS, so one without it is refused.
        assert from_client(port, "203.0.113.9", "https").login(name, PASSWORD) == 400
        referer = {"Referer": f"https://127.0.0.1:{port}/login"}
        assert from_client(port, "203.0.113.9", "https").login(name, PASSWORD, referer) == 302
    with served(dash) as port:  # from an untrusted peer, X-Forwarded-Proto is removed: plain HTTP
        assert from_client(port, "203.0.113.9", "https").login(name, PASSWORD) == 302
