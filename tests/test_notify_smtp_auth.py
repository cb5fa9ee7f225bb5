"""SMTP AUTH and TLS towards the relay, against real aiosmtpd listeners on loopback.

What is expected comes from RFC 4954 (AUTH; 535 for bad credentials, 5.7.8), RFC 3207 (STARTTLS)
and RFC 8314 (implicit TLS), and from docs/notify.md: a wrong password fails with a sentence naming
the user and where the password comes from, logged by the delivery job; the right one delivers; a
password never crosses the network without TLS. The throwaway certificate is made by the openssl
command line for 127.0.0.1 in each test session.
"""

from __future__ import annotations

import logging
import ssl
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from config import ConfigError, NotifySettings, load_settings
from notify import DeliveryError, attempt, send_mail
from storage.notify_models import Delivery
from tests.test_notify_mail import Collector, free_port

# aiosmtpd warns when AUTH is allowed without TLS; here that is the loopback case under test.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

USER, PASSWORD = "ricochet", "correct horse battery staple"
NOW = datetime(2026, 11, 30, 18, 30, tzinfo=UTC)


class Accounts:
    """aiosmtpd authenticator: one user and password; remembers every login tried."""

    def __init__(self) -> None:
        self.tried: list[tuple[str, bool]] = []  # (login, whether the session was under TLS)

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        login, password = data.login.decode(), data.password.decode()
        # The transport under the server: a TLS one after STARTTLS or from the start (implicit TLS).
        self.tried.append((login, server.transport.get_extra_info("ssl_object") is not None))
        # handled=False: aiosmtpd answers (235, or 535 5.7.8), not this callback.
        return AuthResult(success=login == USER and password == PASSWORD, handled=False)


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(certificate, key) of a self-signed certificate for 127.0.0.1, valid one day."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def _listen(handler: Collector, **options: Any) -> Iterator[int]:
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


@pytest.fixture
def accounts() -> Accounts:
    return Accounts()


@pytest.fixture
def got() -> Collector:
    return Collector()


@pytest.fixture
def plain_relay(got: Collector, accounts: Accounts) -> Iterator[int]:
    """AUTH without TLS: acceptable on loopback only (auth_require_tls=False)."""
    yield from _listen(got, authenticator=accounts, auth_require_tls=False, auth_required=True)


@pytest.fixture
def starttls_relay(got: Collector, accounts: Accounts, certificate: tuple[Path, Path]) -> Iterator[int]:
    """AUTH offered only after STARTTLS (aiosmtpd's default auth_require_tls=True)."""
    yield from _listen(got, authenticator=accounts, auth_required=True, require_starttls=True,
                       tls_context=_server_context(certificate))


@pytest.fixture
def tls_relay(got: Collector, accounts: Accounts, certificate: tuple[Path, Path]) -> Iterator[int]:
    """Implicit TLS from the first byte (RFC 8314), as on port 465. (aiosmtpd counts only STARTTLS as
    TLS for auth_require_tls; the authenticator checks that the connection is encrypted.)"""
    yield from _listen(got, authenticator=accounts, auth_required=True, auth_require_tls=False,
                       ssl_context=_server_context(certificate))


def _settings(port: int, **changes: Any) -> NotifySettings:
    values: dict[str, Any] = {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_user": USER,
                              "mail_from": "ricochet@example.net", "timeout_seconds": 5,
                              "retry_seconds": [60]}
    return NotifySettings(**{**values, **changes})


def _message(to: str = "noc@example.net") -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "ricochet@example.net", to, "test"
    message.set_content("hello\n")
    return message


def test_the_right_password_from_the_environment_delivers(plain_relay: int, got: Collector,
                                                           accounts: Accounts,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RICOCHET_SMTP_PASSWORD", PASSWORD)
    send_mail(_settings(plain_relay), _message(), ["noc@example.net"])
    assert accounts.tried == [(USER, False)]
    assert [(sender, rcpts) for sender, rcpts, _ in got.received] == [("ricochet@example.net",
                                                                        ["noc@example.net"])]


def test_the_password_file_is_read_without_its_newline(plain_relay: int, got: Collector,
                                                       accounts: Accounts, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RICOCHET_SMTP_PASSWORD", raising=False)
    secret = tmp_path / "smtp-password"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")  # as `echo ... > file` writes it
    send_mail(_settings(plain_relay, smtp_password_file=str(secret)), _message(), ["noc@example.net"])
    assert accounts.tried == [(USER, False)] and len(got.received) == 1


def test_a_wrong_password_fails_with_a_clear_logged_error(plain_relay: int, got: Collector,
                                                          accounts: Accounts, monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("RICOCHET_SMTP_PASSWORD", "wrong")
    settings = _settings(plain_relay, admins=["noc@example.net"])
    row = Delivery(id=7, channel="email", target="noc@example.net", event="blocklisted", attempts=0,
                   payload={"ip": "192.0.2.10", "blocklists": ["Spamhaus"]}, status="pending")
    with caplog.at_level(logging.WARNING, logger="notify.deliver"):
        assert attempt(settings, row, NOW) is False
    # smtplib tries each mechanism offered (PLAIN, then LOGIN), each refused.
    assert accounts.tried and set(accounts.tried) == {(USER, False)} and got.received == []
    # RFC 4954 section 6: 535 5.7.8 for credentials that are not valid (aiosmtpd's text).
    expected = (f"SMTP relay 127.0.0.1:{plain_relay} refused the login of {USER} (535 5.7.8 Authentication "
                "credentials invalid); check [notify].smtp_user and the password in RICOCHET_SMTP_PASSWORD")
    assert row.last_error == expected
    assert (row.status, row.attempts) == ("pending", 1)  # retried after [notify].retry_seconds
    assert expected in caplog.text and "attempt 1 of 2 failed" in caplog.text


def test_a_missing_password_is_named_before_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RICOCHET_SMTP_PASSWORD", raising=False)
    port = free_port()  # nothing listens there: the error is not "connection refused"
    with pytest.raises(DeliveryError) as caught:
        send_mail(_settings(port), _message(), ["noc@example.net"])
    assert str(caught.value) == (f"[notify].smtp_user {USER} needs a password: the environment variable "
                                 "RICOCHET_SMTP_PASSWORD is not set or empty, and no "
                                 "[notify].smtp_password_file is set")


def test_starttls_then_auth_delivers(starttls_relay: int, got: Collector, accounts: Accounts,
                                     certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RICOCHET_SMTP_PASSWORD", PASSWORD)
    settings = _settings(starttls_relay, smtp_security="starttls", smtp_ca_file=str(certificate[0]))
    send_mail(settings, _message(), ["noc@example.net"])
    assert accounts.tried == [(USER, True)]  # the password went over TLS
    assert len(got.received) == 1


def test_auth_without_starttls_is_refused_by_such_a_relay(starttls_relay: int, got: Collector,
                                                         accounts: Accounts,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RICOCHET_SMTP_PASSWORD", PASSWORD)
    with pytest.raises(DeliveryError, match=r"check \[notify\].smtp_security and smtp_port"):
        send_mail(_settings(starttls_relay), _message(), ["noc@example.net"])
    assert accounts.tried == [] and got.received == []


def test_an_untrusted_certificate_is_refused(starttls_relay: int, got: Collector,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RICOCHET_SMTP_PASSWORD", PASSWORD)
    with pytest.raises(DeliveryError, match=r"TLS certificate is not trusted \(self.signed certificate\); .*"
                                            r"\[notify\]\.smtp_ca_file"):
        send_mail(_settings(starttls_relay, smtp_security="starttls"), _message(), ["noc@example.net"])
    assert got.received == []


def test_implicit_tls_then_auth_delivers(tls_relay: int, got: Collector, accounts: Accounts,
                                         certificate: tuple[Path, Path],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RICOCHET_SMTP_PASSWORD", PASSWORD)
    settings = _settings(tls_relay, smtp_security="tls", smtp_ca_file=str(certificate[0]))
    send_mail(settings, _message(), ["noc@example.net"])
    assert accounts.tried == [(USER, True)] and len(got.received) == 1


def test_config_refuses_a_password_in_clear_over_the_network() -> None:
    env = {"RICOCHET_NOTIFY_SMTP_HOST": "relay.example.net", "RICOCHET_NOTIFY_SMTP_USER": USER}
    with pytest.raises(ConfigError) as caught:
        load_settings(env=env)
    assert str(caught.value) == ('[notify].smtp_user with smtp_security = "none" would send the password '
                                 'unencrypted to relay.example.net; set smtp_security to "starttls" '
                                 '(port 587 or 25) or "tls" (port 465)')
    settings = load_settings(env={**env, "RICOCHET_NOTIFY_SMTP_SECURITY": "starttls",
                                  "RICOCHET_NOTIFY_SMTP_PORT": "587"}).notify
    assert (settings.smtp_user, settings.smtp_password_env) == (USER, "RICOCHET_SMTP_PASSWORD")
    loopback = load_settings(env={**env, "RICOCHET_NOTIFY_SMTP_HOST": "127.0.0.1"}).notify
    assert loopback.smtp_security == "none"
    with pytest.raises(ConfigError, match=r"^\[notify\].smtp_user needs a password"):
        load_settings(env={**env, "RICOCHET_NOTIFY_SMTP_SECURITY": "tls",
                           "RICOCHET_NOTIFY_SMTP_PASSWORD_ENV": ""})
