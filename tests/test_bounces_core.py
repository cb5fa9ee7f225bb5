"""The bounce pipeline: RFC 3464 reading, auto-replies, the registry and bad input.

Messages under tests/data/formats/ are written after RFC 3464 section 10
(rfc3464-01 is its example of a DSN) and RFC 3834 section 5.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import bounces
import rfc822
from bounces.dsn import parse_delivery_status, strip_address
from bounces.formats import REGISTRY
from bounces.model import Reason

DATA = Path(__file__).parent / "data" / "formats"


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def test_rfc3464_example_reads_every_field() -> None:
    report = bounces.parse(sample("rfc3464-01.eml"))
    assert report.format == "rfc3464"
    (delivery,) = report.deliveries
    assert delivery.recipient == "louisl@larry.slip.umd.edu"
    assert delivery.action == "failed"
    assert delivery.status == "4.0.0"
    assert delivery.reply_code == "426"
    assert delivery.diagnostic == "426 connection timed out"
    assert delivery.reporting_mta == "cs.utk.edu"
    assert delivery.date == "Thu, 7 Jul 1994 17:15:49 -0400"
    assert report.original is not None
    assert report.original.message_id == "<199407022110.RAA13877@CS.UTK.EDU>"
    assert report.original.subject == "Test message"


@pytest.mark.parametrize("name", ["rfc3464-02.eml", "rfc3464-03-crlf.eml"])
def test_two_recipients_folded_diagnostic_and_rfc822_headers(name: str) -> None:
    report = bounces.parse(sample(name))
    first, second = report.deliveries
    assert (first.recipient, first.status, first.reply_code) == ("one@example.net", "5.1.1", "550")
    assert first.diagnostic == "550 5.1.1 <one@example.net>... User unknown"
    assert first.remote_mta == "mx.example.net"
    assert first.reason is Reason.USERUNKNOWN  # RFC 3463: X.1.1 bad destination mailbox address
    assert first.hard_bounce is True
    assert (second.recipient, second.action, second.status) == ("two@example.org", "delayed", "4.2.2")
    assert second.reason is Reason.MAILBOXFULL  # RFC 3463: X.2.2 mailbox full
    assert second.hard_bounce is False
    assert second.remote_mta == "192.0.2.25"
    assert report.kind == "bounce"
    assert report.original is not None
    assert report.original.get("message-id") == "<hello-1@example.com>"


def test_auto_reply_is_vacation_for_the_person_who_answered() -> None:
    report = bounces.parse(sample("rfc3834-01.eml"))
    assert report.kind == "autoreply"
    (delivery,) = report.deliveries
    assert delivery.recipient == "alice@example.org"
    assert delivery.reason is Reason.VACATION
    assert "out of the office" in delivery.diagnostic
    assert report.original is not None and report.original.subject == "Meeting on Thursday"


def test_a_plain_message_mentioning_failures_is_not_a_bounce() -> None:
    report = bounces.parse(sample("plain-01.eml"))
    assert report.deliveries == ()
    assert report.kind == "other"


def test_success_dsn_is_delivered() -> None:
    raw = sample("rfc3464-02.eml").replace(b"Action: failed", b"Action: delivered").replace(
        b"Status: 5.1.1", b"Status: 2.0.0").replace(b"550 5.1.1 <one@example.net>... User\n    unknown",
                                                   b"250 2.0.0 Ok: queued")
    first = bounces.parse(raw).deliveries[0]
    assert (first.action, first.status, first.reason) == ("delivered", "2.0.0", Reason.DELIVERED)


def test_delivery_status_fields_without_blank_lines() -> None:
    report = parse_delivery_status(
        "Reporting-MTA: dns; a.example\nFinal-Recipient: rfc822; x@example.com\nAction: failed\n"
        "Status: 5.1.1\nFinal-Recipient: rfc822; y@example.com\nAction: failed\nStatus: 5.2.2\n")
    assert report.message == {"reporting-mta": "dns; a.example"}
    assert [r["status"] for r in report.recipients] == ["5.1.1", "5.2.2"]


@pytest.mark.parametrize(("value", "address"), [
    ("rfc822; <a@example.com>", "a@example.com"),
    ("RFC822;b@example.com", "b@example.com"),
    ("utf-8; c@example.com", "c@example.com"),
])
def test_recipient_field_address(value: str, address: str) -> None:
    assert strip_address(value) == address


def test_registry_is_ordered_and_complete() -> None:
    names = [module.NAME for module in REGISTRY]
    assert len(names) == len(set(names)), "a format is registered twice"
    # The generic readers come after every MTA-specific module, the address finder last.
    assert names[-3:] == ["rfc3464", "rfc3834", "fallback"]
    for module in REGISTRY:
        assert callable(module.parse)
        assert module.parse(rfc822.load(b"")) is None, f"{module.NAME} took an empty message"


@pytest.mark.parametrize("raw", [
    b"",
    b"\x00\xff\xfe garbage",
    b"Content-Type: multipart/report; boundary=x\n\n--x\nContent-Type: message/delivery-status\n\n",
    b"From: MAILER-DAEMON@example.com\nSubject: Undelivered Mail\n\n" + b"\xe9" * 1000,
])
def test_bad_input_gives_an_empty_report_not_an_exception(raw: bytes) -> None:
    report = bounces.parse(raw)
    assert report.deliveries == ()


def test_auto_reply_saying_the_mailbox_is_gone_is_suspend() -> None:
    raw = sample("rfc3834-01.eml").replace(
        b"I am out of the office until 7 December with limited access to e-mail.",
        b"This mailbox is no longer in use. Please write to the help desk instead.")
    (delivery,) = bounces.parse(raw).deliveries
    assert delivery.reason is Reason.SUSPEND
    assert delivery.hard_bounce is False
