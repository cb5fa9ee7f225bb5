"""A real Haraka with the plugin of docs/mta.md asks a real HTTP ``/v1/policy`` at each RCPT.

Haraka 3 runs as a private instance on a free loopback port (tests/haraka.py) with
``contrib/haraka/ricochet.js`` (the doc shows that file whole: checked below), the doc's
``config/plugins`` order (its queue plugin swapped for ``queue/discard``) and its
``config/ricochet.ini`` (url and token swapped for the test server's). The policy endpoint is our
blueprint in a small Flask app served by Werkzeug in a thread; decisions are put into the engine's
cache directly. Clients log in with SMTP AUTH, so the plugin reads the account as in production.

Expected replies: Haraka answers a plugin's DENYSOFT at RCPT with 450 and DENY with 550, the DSN's
enhanced code first (haraka-dsn: ``DSN.create``), and a CONT for a relaying (authenticated)
client with 250; queue/quarantine keeps a message whose transaction note ``quarantine`` names a
subdirectory under ``<quarantine_path>/<subdir>/<YYYYMMDD>/`` (Haraka plugins/queue/quarantine.js).
"""

from __future__ import annotations

import re
import smtplib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask, Response, jsonify, request
from werkzeug.serving import make_server

from policy.cache import DecisionCache
from policy.engine import MemorySendSink, PolicyEngine
from policy.http import blueprint
from policy.texts import PolicyConfig
from reputation.model import Action, Decision, Identity, IdentityKind, State
from tests.exim import skip_or_fail
from tests.haraka import HarakaInstance, haraka_missing, running_haraka
from tests.postfix import free_port

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "mta.md"
PLUGIN = ROOT / "contrib" / "haraka" / "ricochet.js"
TOKEN = "mta-token-for-the-test"
PASSWORD = "ricochet-test"
NOW = datetime.now(UTC)
PAUSED = Identity(IdentityKind.ACCOUNT, "paused@example.com")
BLOCKED = Identity(IdentityKind.ACCOUNT, "blocked@example.com")
HELD = Identity(IdentityKind.ACCOUNT, "held@example.com")
OK = Identity(IdentityKind.ACCOUNT, "ok@example.com")
USERS = {identity.value: PASSWORD for identity in (PAUSED, BLOCKED, HELD, OK)}
REASON = "4 complaints on 300 messages in 24 h (1.3 %, limit 0.5 %)"


def doc_block(after: str, language: str = "") -> str:
    """The fenced block that follows the first occurrence of ``after`` in docs/mta.md."""
    text = DOC.read_text(encoding="utf-8")
    assert after in text, f"docs/mta.md lost {after!r}"
    match = re.compile(rf"```{language}\n(.*?)```", re.S).search(text, text.index(after))
    assert match, f"docs/mta.md has no ```{language} block after {after!r}"
    return match.group(1)


def documented_plugins() -> list[str]:
    """The doc's config/plugins, with the queue plugin that would deliver replaced by queue/discard."""
    plugins = doc_block("`config/plugins`, in this order").split()
    assert plugins[-1] == "queue/smtp_forward"
    return [*plugins[:-1], "queue/discard"]


def documented_ini(url: str, timeout: str | None = None) -> str:
    """The doc's config/ricochet.ini pointing at ``url`` with the test's token (and ``timeout``)."""
    ini = doc_block("`config/ricochet.ini`", "ini")
    ini, urls = re.subn(r"(?m)^url = .*$", f"url = {url}", ini)
    ini, tokens = re.subn(r"(?m)^token = .*$", f"token = {TOKEN}", ini)
    ini, timeouts = re.subn(r"(?m)^timeout = .*$", f"timeout = {timeout}", ini) if timeout else (ini, 1)
    assert (urls, tokens, timeouts) == (1, 1, 1), ini
    return ini


def test_doc_shows_the_plugin_file() -> None:
    shown = doc_block("<!-- tested: tests/test_mta_haraka.py checks that the next block is "
                      "contrib/haraka/ricochet.js -->", "js")
    assert shown == PLUGIN.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    decisions = DecisionCache()
    for identity, state, action in ((PAUSED, State.PAUSED, Action.DEFER),
                                    (BLOCKED, State.BLOCKED, Action.REJECT), (HELD, State.HELD, Action.HOLD)):
        decisions.update(Decision(identity, state, action, "complaint_rate", REASON, None,
                                  NOW + timedelta(hours=1), {}, NOW))
    return PolicyEngine(decisions, MemorySendSink(), PolicyConfig(support="abuse@provider.example"))


def _authorize() -> Response | None:
    if request.headers.get("Authorization") == f"Bearer {TOKEN}":
        return None
    response = jsonify(error="unauthorized")
    response.status_code = 401
    return response


@pytest.fixture(scope="module")
def policy_url(engine: PolicyEngine) -> Iterator[str]:
    """``/v1/policy`` on a real HTTP server (Werkzeug, threaded) on a free loopback port."""
    app = Flask("ricochet-haraka-test")
    app.register_blueprint(blueprint(engine, _authorize))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="policy-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1/policy"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@contextmanager
def haraka_asking(url: str, timeout: str | None = None) -> Iterator[HarakaInstance]:
    """A private Haraka set up as docs/mta.md says, its plugin asking ``url``."""
    missing = haraka_missing()
    if missing:
        skip_or_fail(missing)
    with running_haraka(documented_plugins(), USERS, local_plugins={"ricochet": PLUGIN},
                        files={"ricochet.ini": documented_ini(url, timeout)}) as instance:
        yield instance


@pytest.fixture(scope="module")
def haraka(policy_url: str) -> Iterator[HarakaInstance]:
    with haraka_asking(policy_url) as instance:
        yield instance


def submit(haraka: HarakaInstance, account: str, recipients: list[str]) -> list[tuple[int, str]]:
    """One message from ``account`` after AUTH: the reply to each RCPT, then to DATA if one was accepted."""
    with smtplib.SMTP("127.0.0.1", haraka.port, timeout=15) as smtp:
        smtp.ehlo("client.example")
        smtp.login(account, PASSWORD)
        smtp.mail(account)
        replies = [(code, text.decode()) for code, text in (smtp.rcpt(r) for r in recipients)]
        if any(code == 250 for code, _ in replies):
            code, text = smtp.data(f"From: {account}\r\nSubject: hello\r\n\r\nHello.\r\n".encode())
            replies.append((code, text.decode()))
        else:
            smtp.rset()
    return replies


def sink_of(engine: PolicyEngine) -> MemorySendSink:
    sink = engine.sink
    assert isinstance(sink, MemorySendSink)
    return sink


def test_ok_account_accepted_and_counted_once(engine: PolicyEngine, haraka: HarakaInstance) -> None:
    sink = sink_of(engine)
    sink.drain()
    replies = submit(haraka, OK.value, ["bob@gmail.com", "carol@yahoo.com"])
    assert [code for code, _ in replies] == [250, 250, 250], haraka.log()
    sends = sink.drain()
    # One message (the transaction's uuid is the instance), one recipient per RCPT lookup.
    assert sum(s.messages for s in sends) == 1
    assert [a for s in sends for a in s.addresses] == ["bob@gmail.com", "carol@yahoo.com"]
    assert {s.sender for s in sends} == {OK.value}
    assert {OK, Identity(IdentityKind.CLIENT, "127.0.0.1"), Identity(IdentityKind.DOMAIN, "example.com")} \
        <= set(sends[0].identities)


def test_paused_account_deferred_with_our_text(engine: PolicyEngine, haraka: HarakaInstance) -> None:
    [(code, text)] = submit(haraka, PAUSED.value, ["frank@gmail.com"])
    assert code == 450, haraka.log()
    assert text == (f"4.7.1 Your account paused@example.com is paused because {REASON}. Reset your password, "
                    "check your devices for malware, then contact abuse@provider.example")
    assert sink_of(engine).totals(PAUSED) == (0, 0)  # a deferred attempt is not a send


def test_blocked_account_rejected(haraka: HarakaInstance) -> None:
    [(code, text)] = submit(haraka, BLOCKED.value, ["grace@gmail.com"])
    assert code == 550, haraka.log()
    assert text == (f"5.7.1 Sending from account blocked@example.com is blocked because {REASON}. "
                    "Contact abuse@provider.example")


def test_held_account_accepted_into_quarantine(haraka: HarakaInstance) -> None:
    replies = submit(haraka, HELD.value, ["heidi@gmail.com"])
    assert [code for code, _ in replies] == [250, 250], haraka.log()
    kept = [p for p in (haraka.home / "quarantine" / "ricochet").rglob("*") if p.is_file()]
    assert len(kept) == 1, haraka.log()
    assert b"From: held@example.com" in kept[0].read_bytes()


def test_no_policy_server_fails_open() -> None:
    # Nothing listens on that port: the connection is refused at once, and the plugin fails open.
    with haraka_asking(f"http://127.0.0.1:{free_port()}/v1/policy") as instance:
        replies = submit(instance, PAUSED.value, ["ivan@gmail.com"])
        assert [code for code, _ in replies] == [250, 250], instance.log()
        assert "ricochet did not answer" in instance.log()


def test_policy_server_that_does_not_answer_fails_open_after_the_timeout() -> None:
    # A listening socket that never accepts: the TCP handshake completes (the kernel's backlog)
    # and the request waits for an answer that never comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1/policy"
        with haraka_asking(url, timeout="0.5") as instance:
            started = time.monotonic()
            replies = submit(instance, PAUSED.value, ["kate@gmail.com"])
            elapsed = time.monotonic() - started
            assert [code for code, _ in replies] == [250, 250], instance.log()
            assert "no answer in 500 ms" in instance.log()
    assert 0.5 <= elapsed < 5
