"""A small, realistic week at a hosting provider, for the dashboard's browser test and the README.

What happens (times relative to ``now``; every fact goes in through the real code paths):

- a week of ordinary traffic: the newsletter account ``news@shop.example`` of customer C2001
  (300 messages a day, a few stale addresses bouncing, now and then a complaint) and the office
  account ``office@lawfirm.example`` (50 a day), counted against account, client, sender domain
  (and customer when known) as a policy node counts sends (``CounterStore`` deltas upserted by
  ``storage.counters.apply_deltas``);
- four days ago, ``office@lawfirm.example`` had 15 of 60 messages refused by Outlook in an hour:
  the evaluation job paused it (block-bounce-rate-pause), and an admin resumed it with a
  false-positive verdict (Outlook's outage), through ``jobs.identity_actions.apply_action``;
  the scheduler's later runs let its client and domain resume after their cool-down;
- in the last 40 minutes the compromised account ``sales@meadowfarm.example`` sent ``SENDS``
  messages to freemail addresses and ``BLOCKED`` of them came back refused as spam or blocked
  (Gmail's "likely unsolicited mail", Spamhaus named by Yahoo, Outlook's block list): the
  evaluation job pauses it with block-bounce-rate-pause (a fifth or more of at least 50
  recipients in an hour, config/rules.toml), 25 % here, with the host it was used from and its
  domain; two recipients complained;
- every state change is delivered to a webhook (a receiver on loopback while seeding) by the
  delivery job, so the notification log has entries;
- last week's report is built and stored as the scheduler would on Monday morning.

The bounces and complaints are the attribution samples (tests/data/attribution/dsn-verp-01.eml
and arf-postfix-01.eml) with their account, recipient, status, diagnostic and dates rewritten,
run through the real pipeline with the provider's trust settings (``SETTINGS_TOML``).

``python -m tests.demo_data --config FILE`` seeds the database of FILE (after ``db upgrade``), to
look at the dashboard by hand; ``python -m tests.browser`` makes docs/images/ and
docs/sample-report.html from it (README.md, "The dashboard").
"""

from __future__ import annotations

import argparse
import contextlib
import email.utils
import http.server
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from config import Settings, load_settings
from ingest.runtime import Runtime
from jobs.evaluate import Evaluator, Tiers
from jobs.identity_actions import apply_action
from notify.deliver import NotifyJobs
from reports import build_and_store, last_week
from reputation import CounterStore, Identity, IdentityKind
from storage.counters import apply_deltas
from storage.reputation import history_of

__all__ = ["BLOCKED", "COMPLAINTS", "COMPROMISED", "NEWSLETTER", "OFFICE", "SENDS", "SETTINGS_TOML",
           "Scenario", "seed"]

SAMPLES = Path(__file__).resolve().parent / "data" / "attribution"

# The provider's own hosts and addresses, as in every attribution sample: their headers are believed.
SETTINGS_TOML = """\
[attribution]
trusted_hosts = ["*.provider.example"]
trusted_networks = ["198.51.100.0/24"]
"""



@dataclass(frozen=True)
class Sender:
    """An account, the host it submits from, the subject of its mail, its customer if our VERP names it."""

    account: str
    client: str
    subject: str
    customer: str = ""

    @property
    def identities(self) -> tuple[Identity, ...]:
        """What a policy node counts a send against (account, client, sender domain, customer if known)."""
        known = (Identity(IdentityKind.ACCOUNT, self.account), Identity(IdentityKind.CLIENT, self.client),
                 Identity(IdentityKind.DOMAIN, self.account.split("@")[1]))
        return (*known, Identity(IdentityKind.CUSTOMER, self.customer)) if self.customer else known


# The compromised account is used from a botnet host; the others from their offices.
INTRUDER = Sender("sales@meadowfarm.example", "203.0.113.66", "Your invoice #4471 is overdue")
SHOP = Sender("news@shop.example", "203.0.113.21", "Our November newsletter", "C2001")
LAWFIRM = Sender("office@lawfirm.example", "203.0.113.34", "Minutes of the meeting")
COMPROMISED, NEWSLETTER, OFFICE = INTRUDER.identities[0], SHOP.identities[0], LAWFIRM.identities[0]
SENDS = 80  # the compromised account's messages in the last 40 minutes, one recipient each
BLOCKED = 20  # of which refused as spam or blocked: 25 %, over block-bounce-rate-pause's 20 %
COMPLAINTS = 2

# Real texts of the big receivers (reason group "block" in shared/reasons.md), for the
# outbound IP 198.51.100.10 of the samples.
_REFUSALS = (
    ("gmail.com", "gmail-smtp-in.l.google.com",
     "550 5.7.1 [198.51.100.10] Our system has detected that this message is likely unsolicited "
     "mail. To reduce the amount of spam sent to Gmail, this message has been blocked."),
    ("yahoo.com", "mta7.am0.yahoodns.net",
     "553 5.7.1 [BL21] Connections will not be accepted from 198.51.100.10, because the ip is in "
     "Spamhaus's list; see https://postmaster.yahooinc.com/error-codes"),
    ("outlook.com", "outlook-com.olc.protection.outlook.com",
     "550 5.7.1 Unfortunately, messages from [198.51.100.10] weren't sent. Please contact your "
     "Internet service provider since part of their network is on our block list (S3150)."),
)
_USER_UNKNOWN = "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table"
_DATE = re.compile(rb"Mon, 30 Nov 2026 \d\d:\d\d:\d\d [+-]\d{4}")
_HUMAN = re.compile(rb"<nosuchuser@receiver\.example>: host .*?\(in reply to RCPT TO command\)", re.DOTALL)
_DIAGNOSTIC = re.compile(rb"Diagnostic-Code: smtp; [^\n]*\n(?:[ \t][^\n]*\n)*")


@dataclass(frozen=True)
class Scenario:
    """What ``seed`` wrote: the facts a test checks the pages against."""

    now: datetime
    compromised: Identity
    sends: int
    blocked: int
    complaints: int
    report_week: str


def dsn(sender: Sender, recipient: str, status: str, diagnostic: str, at: datetime) -> bytes:
    """Our outbound Postfix's DSN for ``sender``'s message to ``recipient``, refused with ``diagnostic``."""
    raw = (SAMPLES / "dsn-verp-01.eml").read_bytes()
    local, domain = recipient.split("@")
    mx = next((host for d, host, _ in _REFUSALS if d == domain), "mx.receiver.example")
    raw = _HUMAN.sub(f"<{recipient}>: host {mx}[192.0.2.25] said: {diagnostic} "
                     f"(in reply to RCPT TO command)".encode(), raw)
    raw = _DIAGNOSTIC.sub(f"Diagnostic-Code: smtp; {diagnostic}\n".encode(), raw)
    raw = raw.replace(b"Status: 5.1.1", f"Status: {status}".encode())
    raw = raw.replace(b"dns; mx.receiver.example", f"dns; {mx}".encode())
    # Our VERP return path names the customer and account (bounces-C1001-alice=example.com@, as in
    # the sample), or only the recipient (bounces+local=domain@): then the account comes from our
    # submission server's "Authenticated sender" line.
    verp = (f"bounces-{sender.customer}-{sender.account.replace('@', '=')}@" if sender.customer
            else f"bounces+{local}={domain}@")
    raw = raw.replace(b"bounces-C1001-alice=example.com@", verp.encode())
    raw = raw.replace(b"nosuchuser@receiver.example", recipient.encode())
    return _sender(raw, sender, "Example Newsletter <news@example.com>", "Our November newsletter",
                   "newsletter-2026-11-30-0001@example.com", f"{local}.{at:%H%M%S}", at)


def _sender(raw: bytes, sender: Sender, author: str, subject: str, message_id: str, unique: str,
            at: datetime) -> bytes:
    """``raw`` with the sample's sender, client, subject, Message-ID and dates made ``sender``'s."""
    domain = sender.account.split("@")[1]
    for old, new in ((author, sender.account), ("alice@example.com", sender.account),
                     ("203.0.113.5", sender.client), (subject, sender.subject),
                     (message_id, f"{unique}@{domain}"),
                     ("Reported-Domain: example.com", f"Reported-Domain: {domain}")):
        raw = raw.replace(old.encode(), new.encode())
    return _DATE.sub(email.utils.format_datetime(at).encode(), raw)


def complaint(sender: Sender, recipient: str, customer: str, at: datetime) -> bytes:
    """An ARF complaint (RFC 5965) by ``recipient`` about ``sender``'s message, received at ``at``."""
    raw = (SAMPLES / "arf-postfix-01.eml").read_bytes()
    raw = raw.replace(b"bob@receiver.example", recipient.encode()).replace(b"C1001", customer.encode())
    return _sender(raw, sender, "Alice Example <alice@example.com>", "Minutes of the meeting",
                   "3f1c2a9e-7b4d-4e11-9c2a-1d5e8f0a6b7c@example.com", recipient.replace("@", "."), at)


def _count_sends(session: Session, settings: Settings, sender: Sender, recipients: Iterable[str],
                 start: datetime, spread: timedelta) -> None:
    """Count one message per recipient from ``start`` over ``spread``, as a policy node flushes them."""
    node = CounterStore(settings.reputation.rules.freemail_domains, track_deltas=True)
    addresses = list(recipients)
    for i, address in enumerate(addresses):
        for identity in sender.identities:
            node.record_send(identity, [address], start + spread * i / max(len(addresses), 1))
    apply_deltas(session, node.drain_deltas(), start + spread)


def _ingest(runtime: Runtime, session: Session, messages: Iterable[tuple[bytes, datetime]]) -> None:
    for raw, at in messages:
        result = runtime.pipeline.ingest(session, raw, source="demo", received_at=at)
        if result.status != "parsed":
            raise AssertionError(f"the demo message of {at} was not parsed: {result}")


def _ordinary_days(runtime: Runtime, session: Session, now: datetime, days: range) -> None:
    """Days of newsletters (9:00-11:00) and office mail (9:00-17:00), a few stale addresses bouncing."""
    settings = runtime.settings
    for day in days:
        start = (now - timedelta(days=day)).replace(hour=9, minute=0, second=0, microsecond=0)
        readers = [f"reader{i}@{('gmail.com', 'web.de', 'shop-fans.example')[i % 3]}" for i in range(300)]
        _count_sends(session, settings, SHOP, readers, start, timedelta(hours=2))
        _count_sends(session, settings, LAWFIRM, [f"client{i}@firm{i % 7}.example" for i in range(50)],
                     start, timedelta(hours=8))
        stale = [f"gone{day}{i}@web.de" for i in range(day % 3 + 1)]
        _ingest(runtime, session, [(dsn(SHOP, rcpt, "5.1.1", _USER_UNKNOWN.format(rcpt=rcpt),
                                        start + timedelta(minutes=20 + i)), start + timedelta(minutes=21 + i))
                                   for i, rcpt in enumerate(stale)])
        if day % 3 == 2:  # now and then a reader calls the newsletter spam
            at = start + timedelta(hours=3)
            _ingest(runtime, session, [(complaint(SHOP, f"reader{day}@gmail.com", SHOP.customer, at),
                                        at + timedelta(minutes=2))])
    session.commit()


def _outlook_outage(runtime: Runtime, session: Session, now: datetime, notify: NotifyJobs) -> None:
    """Four days ago: office@lawfirm.example paused by Outlook's refusals, resumed as a false positive."""
    settings = runtime.settings
    start = (now - timedelta(days=4)).replace(hour=18, minute=0, second=0, microsecond=0)
    recipients = [f"partner{i}@outlook.com" for i in range(60)]
    _count_sends(session, settings, LAWFIRM, recipients, start, timedelta(minutes=30))
    text = _REFUSALS[2][2]  # Outlook's
    _ingest(runtime, session, [(dsn(LAWFIRM, rcpt, "5.7.1", text, start + timedelta(minutes=i * 2)),
                                start + timedelta(minutes=i * 2, seconds=5))
                               for i, rcpt in enumerate(recipients[:15])])
    session.commit()
    at = start + timedelta(minutes=35)
    job = _evaluator(settings)
    job.run(session, at)
    session.commit()
    notify.deliver(at + timedelta(seconds=10))  # the webhook hears of the pause
    paused = history_of(session, OFFICE, 1)
    if not paused or paused[0].state != "paused":
        raise AssertionError(f"the Outlook outage did not pause {OFFICE}: {paused}")
    rules = settings.reputation.rules
    apply_action(session, OFFICE, "verdict", verdict="false_positive", decision_id=paused[0].id,
                 author="maria", reason="Outlook.com outage (their status page), not this customer",
                 now=at + timedelta(minutes=25), rules=rules)
    apply_action(session, OFFICE, "resume", author="maria", reason="Outlook refused everybody for an hour",
                 now=at + timedelta(minutes=26), rules=rules)
    session.commit()
    # The scheduler's next runs: the client's and domain's cool-downs end, then the probations.
    for hours in (1, 2, 3, 25):
        job.run(session, at + timedelta(hours=hours))
        session.commit()
        notify.deliver(at + timedelta(hours=hours, seconds=10))


def _compromise(runtime: Runtime, session: Session, now: datetime) -> None:
    """The last 40 minutes: a stolen password, a spam run to freemail, receivers refusing it."""
    start = now - timedelta(minutes=40)
    domains = [domain for domain, _, _ in _REFUSALS]
    names = ("anna", "ben", "chloe", "dev", "emma")
    recipients = [f"{names[i % 5]}{i}@{domains[i % 3]}" for i in range(SENDS)]
    _count_sends(session, runtime.settings, INTRUDER, recipients, start, timedelta(minutes=30))
    refused = []
    for i, rcpt in enumerate(recipients[:BLOCKED]):
        _, _, text = _REFUSALS[i % 3]
        at = start + timedelta(minutes=5, seconds=i * 60)
        refused.append((dsn(INTRUDER, rcpt, "5.7.1", text, at), at + timedelta(seconds=3)))
    complained = [(complaint(INTRUDER, rcpt, "C3307", start + timedelta(minutes=25 + i)),
                   start + timedelta(minutes=26 + i)) for i, rcpt in enumerate(recipients[-COMPLAINTS:])]
    _ingest(runtime, session, refused + complained)
    # Today's newsletter: ordinary, so that the overview has more than one sender.
    _count_sends(session, runtime.settings, SHOP,
                 [f"reader{i}@{('gmail.com', 'web.de')[i % 2]}" for i in range(120)],
                 now - timedelta(hours=3), timedelta(hours=1))
    session.commit()


class _Receiver(http.server.BaseHTTPRequestHandler):
    """A control panel's webhook endpoint that takes every notification (204)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the delivery log in the database is what the demo shows."""


@contextlib.contextmanager
def _webhooks(runtime: Runtime) -> Iterator[NotifyJobs]:
    """The delivery job with one webhook, a receiver on loopback that the demo runs meanwhile."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, name="demo-webhook", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/ricochet"
    settings = replace(runtime.settings.notify, webhook_urls=[url], admins=[],
                       secret=b"demo-webhook-secret-0123")
    try:
        yield NotifyJobs(settings, runtime.sessions)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _evaluator(settings: Settings) -> Evaluator:
    return Evaluator(settings.reputation.rules,
                     Tiers.from_settings(settings.reputation, settings.attribution.rules.directory))


def seed(runtime: Runtime, now: datetime | None = None) -> Scenario:
    """Write the scenario into ``runtime``'s (migrated, empty) database at ``now`` and evaluate it."""
    now = now or datetime.now(UTC)
    settings = runtime.settings
    with runtime.sessions() as session, _webhooks(runtime) as notify:
        # In time order: an evaluation at a past time must not see what came after it.
        _ordinary_days(runtime, session, now, range(8, 3, -1))
        _outlook_outage(runtime, session, now, notify)
        _ordinary_days(runtime, session, now, range(3, 0, -1))
        _compromise(runtime, session, now)
        _evaluator(settings).run(session, now)  # the scheduler's evaluation job, once
        session.commit()
        notify.deliver(now)
    week = last_week(now)
    build_and_store(runtime.sessions, week, settings.reputation.rules, now)
    return Scenario(now=now, compromised=COMPROMISED, sends=SENDS, blocked=BLOCKED, complaints=COMPLAINTS,
                    report_week=week)


def main() -> None:
    """Seed the database of ``--config`` (run ``python app.py --config FILE db upgrade`` first)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--config", required=True, help="a TOML file with [database].url and [attribution]")
    settings = load_settings(parser.parse_args().config)
    with Runtime.from_settings(settings) as runtime:
        scenario = seed(runtime)
    print(f"seeded the demo at {scenario.now:%Y-%m-%dT%H:%MZ} ({scenario.compromised}: {scenario.blocked} of "
          f"{scenario.sends} refused); report {scenario.report_week} stored in the database")


if __name__ == "__main__":
    main()
