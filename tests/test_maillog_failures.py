"""Delivery failures in the mail log (maillog/, pure) and the DSN made of them (maillog/dsn.py).

The lines follow the wording of Postfix 3.7's delivery agents (smtp, virtual, error; the
``host ... said: ... (in reply to RCPT TO command)`` form of smtp(8)) and Exim 4.96's ``**`` and
``==`` lines (the Exim specification, "Log files"; transports/smtp.c's "SMTP error from remote mail
server after ..."). Expected values are read off the lines: the status is Postfix's ``dsn=`` or the
reply's enhanced code; the reason is what shared/reasons.md and RFC 3463 (bounces/status.py's
table) give that code or text; the DSN's fields are RFC 3464's.
"""

from __future__ import annotations

import email
from email.message import Message

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.classify import Kind, classify
from maillog import DeliveryFailure, LedgerFact, LogReader, delivery_report, read_facts

SUBMISSION = """\
Nov 30 08:52:49 mail postfix/submission/smtpd[31027]: 7DAC3226316: client=unknown[198.51.100.23], \
sasl_method=PLAIN, sasl_username=alice@example.com
Nov 30 08:52:49 mail postfix/cleanup[31031]: 7DAC3226316: message-id=<probe.1@example.com>
Nov 30 08:52:49 mail postfix/qmgr[31024]: 7DAC3226316: from=<alice@example.com>, size=306, nrcpt=5 \
(queue active)
""".replace("\\\n", "")
REMOVED = "Nov 30 08:52:59 mail postfix/qmgr[31024]: 7DAC3226316: removed"
ALICE = {"message_id": "probe.1@example.com", "account": "alice@example.com", "client": "198.51.100.23",
         "sender": "alice@example.com", "host": "mail"}

USER_UNKNOWN = (
    "Nov 30 08:52:50 mail postfix/smtp[31040]: 7DAC3226316: to=<bob@example.net>, "
    "relay=mx.example.net[203.0.113.5]:25, delay=1.2, delays=0.1/0/0.6/0.5, dsn=5.1.1, status=bounced "
    "(host mx.example.net[203.0.113.5] said: 550 5.1.1 <bob@example.net>: Recipient address rejected: "
    "User unknown in virtual mailbox table (in reply to RCPT TO command))")
MAILBOX_FULL = (
    "Nov 30 08:52:51 mail postfix/virtual[31042]: 7DAC3226316: to=<erin@provider.example>, "
    "orig_to=<sales@provider.example>, relay=virtual, delay=0.3, delays=0.1/0/0/0.2, dsn=5.2.2, "
    "status=bounced (maildir delivery failed: Sorry, the user's maildir has overdrawn his diskspace quota, "
    "please try again later.)")
SPAM_BLOCK = (
    "Nov 30 08:52:52 mail postfix/smtp[31043]: 7DAC3226316: to=<carol@example.org>, "
    "relay=mx.example.org[203.0.113.6]:25, delay=0.9, delays=0.1/0/0.4/0.4, dsn=5.7.1, status=bounced "
    "(host mx.example.org[203.0.113.6] said: 554 5.7.1 Service unavailable; Client host [198.51.100.1] "
    "blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/198.51.100.1 "
    "(in reply to RCPT TO command))")
DEFERRED = (
    "Nov 30 08:52:53 mail postfix/smtp[31044]: 7DAC3226316: to=<dan@example.com>, "
    "relay=mx.example.com[203.0.113.7]:25, delay=3, delays=0.1/0/0.6/2.3, dsn=4.2.2, status=deferred "
    "(host mx.example.com[203.0.113.7] said: 452 4.2.2 Mailbox full (in reply to RCPT TO command))")
# The error(8) transport of a transport map entry "error:5.1.1 Mailbox does not exist": no remote host.
ERROR_TRANSPORT = (
    "Nov 30 08:52:54 mail postfix/error[31045]: 7DAC3226316: to=<old@closed.example>, relay=none, "
    "delay=0.2, delays=0.1/0/0/0.1, dsn=5.1.1, status=bounced (Mailbox does not exist)")


def failures(*lines: str) -> list[DeliveryFailure]:
    found = read_facts([*SUBMISSION.splitlines(), *lines], LogReader())
    return [fact for fact in found if isinstance(fact, DeliveryFailure)]


def delivery_status(raw: bytes) -> list[Message]:
    [status] = [part for part in email.message_from_bytes(raw).walk()
                if part.get_content_type() == "message/delivery-status"]
    payload = status.get_payload()
    assert isinstance(payload, list)
    return [block for block in payload if isinstance(block, Message)]


@pytest.mark.parametrize(("line", "expected"), [
    (USER_UNKNOWN, DeliveryFailure(
        "postfix", "7DAC3226316", "bob@example.net", True, "5.1.1",
        "550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown in virtual mailbox table "
        "(in reply to RCPT TO command)", remote_mta="mx.example.net", logged_at="Nov 30 08:52:50",
        lines=(USER_UNKNOWN,), **ALICE)),
    (MAILBOX_FULL, DeliveryFailure(
        "postfix", "7DAC3226316", "erin@provider.example", True, "5.2.2",
        "maildir delivery failed: Sorry, the user's maildir has overdrawn his diskspace quota, please try "
        "again later.", original_recipient="sales@provider.example", logged_at="Nov 30 08:52:51",
        lines=(MAILBOX_FULL,), **ALICE)),
    (DEFERRED, DeliveryFailure(
        "postfix", "7DAC3226316", "dan@example.com", False, "4.2.2",
        "452 4.2.2 Mailbox full (in reply to RCPT TO command)", remote_mta="mx.example.com",
        logged_at="Nov 30 08:52:53", lines=(DEFERRED,), **ALICE)),
    (ERROR_TRANSPORT, DeliveryFailure(
        "postfix", "7DAC3226316", "old@closed.example", True, "5.1.1", "Mailbox does not exist",
        logged_at="Nov 30 08:52:54", lines=(ERROR_TRANSPORT,), **ALICE)),
])
def test_postfix_failure_lines_are_joined_with_their_message(line: str, expected: DeliveryFailure):
    assert failures(line) == [expected]


def test_a_failure_after_the_fact_keeps_the_queue_id_until_removed():
    reader = LogReader()
    lines = [*SUBMISSION.splitlines(), USER_UNKNOWN, REMOVED, USER_UNKNOWN]
    given = [fact for line in lines for fact in reader.feed(line)]
    assert [type(fact) for fact in given] == [LedgerFact, DeliveryFailure]  # the fact once, at from=
    # After "removed" the queue id is forgotten: a line for it again is not ours any more.
    assert (reader.pending, reader.counts.used, reader.counts.skipped) == (0, 5, 1)
    assert (reader.counts.facts, reader.counts.failures) == (1, 1)


def test_a_deferral_is_given_once_per_recipient_and_status():
    retried = DEFERRED.replace("delay=3,", "delay=903,").replace("08:52:53", "09:07:53")
    other_answer = retried.replace("4.2.2", "4.7.0").replace("Mailbox full", "Try again later")
    found = failures(DEFERRED, retried, retried, other_answer, USER_UNKNOWN)
    assert [(failure.recipient, failure.status, failure.lines[0]) for failure in found] == [
        ("dan@example.com", "4.2.2", DEFERRED), ("dan@example.com", "4.7.0", other_answer),
        ("bob@example.net", "5.1.1", USER_UNKNOWN)]


def test_failures_of_messages_not_followed_from_their_start_are_skipped():
    # Postfix's own bounce (no smtpd/pickup line) failing, and a log that starts mid-message.
    log = [USER_UNKNOWN.replace("7DAC3226316", "4A2B3C4D5E"), USER_UNKNOWN]
    reader = LogReader()
    assert list(read_facts(log, reader)) == []
    assert (reader.counts.used, reader.counts.skipped) == (0, 2)


def test_the_ledger_fact_comes_before_a_failure_pushed_out_state_or_not():
    # cleanup then a failure with no qmgr from= seen (a log cut): the fact is given with the failure.
    lines = [*SUBMISSION.splitlines()[:2], USER_UNKNOWN]
    given = list(read_facts(lines, LogReader()))
    assert [type(fact) for fact in given] == [LedgerFact, DeliveryFailure]
    assert given[0].message_id == given[1].message_id == "probe.1@example.com"


# --- Exim -----------------------------------------------------------------------------------------

EXIM_ARRIVAL = ("2026-11-30 08:53:49 1xXx8v-0008TR-0i <= alice@example.com H=(client.example) [192.0.2.7] "
                "P=esmtpa A=plain:alice@example.com S=296 id=probe.2@example.com")
EXIM_USER_UNKNOWN = ("2026-11-30 08:53:50 1xXx8v-0008TR-0i ** bob@example.net R=dnslookup T=remote_smtp "
                     "H=mx.example.net [203.0.113.5]: SMTP error from remote mail server after RCPT "
                     "TO:<bob@example.net>: 550 5.1.1 User unknown")
EXIM_SPAM = ("2026-11-30 08:53:50 1xXx8v-0008TR-0i ** dave@example.net <dave@alias.example> R=dnslookup "
             "T=remote_smtp H=mx.example.net [203.0.113.5]:25 X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes: "
             "SMTP error from remote mail server after end of data: 550 5.7.1 Message rejected as spam")
EXIM_DEFERRED = ("2026-11-30 08:53:50 1xXx8v-0008TR-0i == carol@example.org R=dnslookup T=remote_smtp "
                 "defer (-44) H=mx.example.org [203.0.113.6]: SMTP error from remote mail server after "
                 "pipelined RCPT TO:<carol@example.org>: 452 4.2.2 Mailbox full")
EXIM_NOT_TRIED = ("2026-11-30 08:58:50 1xXx8v-0008TR-0i == carol@example.org R=dnslookup T=remote_smtp "
                  "defer (-53): retry time not reached for any host for 'example.org'")
EXIM_UNROUTEABLE = "2026-11-30 08:53:51 1xXx8v-0008TR-0i ** nobody@example.com: Unrouteable address"
EXIM_COMPLETED = "2026-11-30 08:53:51 1xXx8v-0008TR-0i Completed"
EXIM_ALICE = {"message_id": "probe.2@example.com", "account": "alice@example.com", "client": "192.0.2.7",
              "sender": "alice@example.com"}


def test_exim_failures_and_deferrals_are_joined_with_the_arrival():
    lines = [EXIM_ARRIVAL, EXIM_USER_UNKNOWN, EXIM_SPAM, EXIM_DEFERRED, EXIM_NOT_TRIED, EXIM_UNROUTEABLE,
             EXIM_COMPLETED, EXIM_USER_UNKNOWN]
    reader = LogReader()
    found = [fact for fact in read_facts(lines, reader) if isinstance(fact, DeliveryFailure)]
    assert found == [
        DeliveryFailure("exim", "1xXx8v-0008TR-0i", "bob@example.net", True, "5.1.1",
                        "550 5.1.1 User unknown (after RCPT TO:<bob@example.net>)",
                        remote_mta="mx.example.net",
                        logged_at="2026-11-30 08:53:50", lines=(EXIM_USER_UNKNOWN,), **EXIM_ALICE),
        DeliveryFailure("exim", "1xXx8v-0008TR-0i", "dave@example.net", True, "5.7.1",
                        "550 5.7.1 Message rejected as spam (after end of data)", remote_mta="mx.example.net",
                        original_recipient="dave@alias.example", logged_at="2026-11-30 08:53:50",
                        lines=(EXIM_SPAM,), **EXIM_ALICE),
        DeliveryFailure("exim", "1xXx8v-0008TR-0i", "carol@example.org", False, "4.2.2",
                        "452 4.2.2 Mailbox full (after RCPT TO:<carol@example.org>)",
                        remote_mta="mx.example.org",
                        logged_at="2026-11-30 08:53:50", lines=(EXIM_DEFERRED,), **EXIM_ALICE),
        # No remote reply, no code: Exim's own words, and the default permanent status.
        DeliveryFailure("exim", "1xXx8v-0008TR-0i", "nobody@example.com", True, "5.0.0",
                        "Unrouteable address",
                        logged_at="2026-11-30 08:53:51", lines=(EXIM_UNROUTEABLE,), **EXIM_ALICE),
    ]
    # "retry time not reached" is no attempt; after "Completed" the message is forgotten.
    assert (reader.counts.used, reader.counts.skipped, reader.pending) == (6, 2, 0)


# --- The DSN --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("line", "action", "status", "reason", "hard"), [
    (USER_UNKNOWN, "failed", "5.1.1", "userunknown", True),  # RFC 3463 5.1.1: bad destination mailbox
    (MAILBOX_FULL, "failed", "5.2.2", "mailboxfull", False),  # 5.2.2: mailbox full
    (SPAM_BLOCK, "failed", "5.7.1", "blocked", False),  # "Client host [..] blocked using zen.spamhaus.org"
    (DEFERRED, "delayed", "4.2.2", "mailboxfull", False),  # a soft bounce, Action: delayed
    (ERROR_TRANSPORT, "failed", "5.1.1", "userunknown", True),
])
def test_the_dsn_of_a_postfix_failure_classifies_as_the_bounce_it_stands_for(
        line: str, action: str, status: str, reason: str, hard: bool):
    [failure] = failures(line)
    raw = delivery_report(failure)
    result = classify(raw)
    assert result.kind is Kind.BOUNCE
    [record] = result.records
    assert (record.recipient, record.action, record.status, record.reason, record.hard_bounce) == (
        failure.recipient, action, status, reason, hard)
    assert record.remote_mta == failure.remote_mta
    assert result.original is not None and result.original.message_id == "<probe.1@example.com>"


@pytest.mark.parametrize(("line", "reason"), [
    (EXIM_USER_UNKNOWN, "userunknown"),
    (EXIM_SPAM, "spamdetected"),  # refused after DATA as spam: the content (shared/reasons.md)
    (EXIM_DEFERRED, "mailboxfull"),
])
def test_the_dsn_of_an_exim_failure_classifies_as_the_bounce_it_stands_for(line: str, reason: str):
    [failure] = [fact for fact in read_facts([EXIM_ARRIVAL, line], LogReader())
                 if isinstance(fact, DeliveryFailure)]
    [record] = classify(delivery_report(failure)).records
    assert (record.recipient, record.status, record.reason) == (failure.recipient, failure.status, reason)


def test_the_dsn_says_what_the_log_says_in_rfc3464_fields():
    [failure] = failures(USER_UNKNOWN)
    raw = delivery_report(failure)
    assert raw == delivery_report(failures(USER_UNKNOWN)[0])  # the same lines, the same bytes
    message = email.message_from_bytes(raw)
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "delivery-status"
    assert message["To"] == "alice@example.com"
    per_message, per_recipient = delivery_status(raw)
    assert per_message["Reporting-MTA"] == "dns; mail"
    assert dict(per_recipient.items()) == {
        "Final-Recipient": "rfc822; bob@example.net", "Action": "failed", "Status": "5.1.1",
        "Remote-MTA": "dns; mx.example.net",
        "Diagnostic-Code": "smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown in "
                           "virtual mailbox table (in reply to RCPT TO command)",
        "Final-Log-ID": "7DAC3226316"}
    text, _, headers = [part for part in message.get_payload() if isinstance(part, Message)]
    evidence = text.get_payload(decode=True)
    assert isinstance(evidence, bytes) and USER_UNKNOWN in evidence.decode()  # the evidence, quoted
    assert str(headers.get_payload()).splitlines() == [
        "Message-ID: <probe.1@example.com>", "From: <alice@example.com>", "Return-Path: <alice@example.com>"]
    # Another line (another retry, another time) is another report.
    assert delivery_report(failures(USER_UNKNOWN.replace("delay=1.2", "delay=1.3"))[0]) != raw


def test_a_zoned_time_stamp_becomes_the_last_attempt_date():
    rfc3339 = USER_UNKNOWN.replace("Nov 30 08:52:50", "2026-11-30T08:52:50.123456+01:00")
    [failure] = failures(rfc3339)
    _, per_recipient = delivery_status(delivery_report(failure))
    assert per_recipient["Last-Attempt-Date"] == "Mon, 30 Nov 2026 08:52:50 +0100"


FAILURE_PREFIXES = [USER_UNKNOWN[:80], EXIM_DEFERRED[:60], EXIM_UNROUTEABLE[:50],
                    "Nov 30 08:52:50 h postfix/smtp[1]: "]


@given(st.lists(st.tuples(st.sampled_from(FAILURE_PREFIXES), st.text(max_size=200)), max_size=20))
def test_failure_lines_with_any_text_never_raise(tails: list[tuple[str, str]]):
    lines = [*SUBMISSION.splitlines(), EXIM_ARRIVAL, *(prefix + tail for prefix, tail in tails)]
    reader = LogReader()
    for fact in read_facts(lines, reader):
        if isinstance(fact, DeliveryFailure):
            assert classify(delivery_report(fact)).kind is Kind.BOUNCE
    assert reader.counts.lines == reader.counts.used + reader.counts.skipped == len(lines)


@given(st.builds(DeliveryFailure, st.sampled_from(["postfix", "exim"]), st.text(max_size=30),
                 st.text(max_size=80), st.booleans(), st.text(max_size=12), st.text(max_size=300),
                 *(st.text(max_size=60) for _ in range(9)),
                 st.lists(st.text(max_size=200), max_size=3).map(tuple)))
def test_any_failure_makes_a_report_the_same_each_time(failure: DeliveryFailure):
    raw = delivery_report(failure)
    assert raw == delivery_report(failure)
    assert email.message_from_bytes(raw).get_content_type() == "multipart/report"
