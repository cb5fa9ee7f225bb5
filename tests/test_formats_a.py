"""Format modules of group a: Postfix, Exim, dma, OpenSMTPD, Courier, amavisd-new, PowerMTA,
SendGrid, Mimecast and Sisimai's unnamed X1/X2/X3/X5/X6 families.

Every sample under tests/data/formats/<module>-NN.eml was written for these tests from
the format's documentation or source text (Postfix bounce(5) and bounce_notify_util.c,
Exim deliver.c/moan.c, dma mail.c/net.c, OpenSMTPD bounce.c, Courier's notice) or from
the structure the corpus samples of that family show; the expected values below are
read from those messages, not from our output.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

import bounces
import rfc822
from bounces.formats import (
    amavis,
    courier,
    dragonfly,
    exim,
    mimecast,
    opensmtpd,
    postfix,
    powermta,
    sendgrid,
    x1,
    x2,
    x3,
    x5,
    x6,
)
from bounces.formats._text import cut_original, find_command
from bounces.model import Reason

DATA = Path(__file__).parent / "data" / "formats"
OURS = (postfix, exim, dragonfly, opensmtpd, courier, amavis, powermta, sendgrid, x1, x2, x3, x5, x6,
        mimecast)


@dataclass(frozen=True)
class Expect:
    recipient: str
    status: str
    diagnostic: str  # a substring of the diagnostic
    command: str = ""


CASES: dict[str, tuple[str, list[Expect]]] = {
    "postfix-01.eml": ("postfix", [
        Expect("nobody@receiver.example", "5.1.1", "User unknown in local recipient table", "RCPT"),
        # No Diagnostic-Code field: the notification's paragraph stands in for it.
        Expect("bob@receiver.example", "5.2.2", "552 5.2.2 Mailbox full", "DATA"),
    ]),
    "postfix-02.eml": ("postfix", [
        Expect("dave@gone.example", "5.7.1", "client host blocked using a DNS blocklist", "HELO"),
    ]),
    "postfix-03.eml": ("postfix", [
        Expect("frank@receiver.example", "4.3.1", "Insufficient system storage", "RCPT"),
    ]),
    "postfix-04.eml": ("postfix", [Expect("heidi@receiver.example", "", "")]),
    "postfix-05.eml": ("postfix", [Expect("oscar@slow.example", "4.4.1", "Connection timed out")]),
    "exim-01.eml": ("exim", [
        Expect("ghost@receiver.example", "5.1.1", "Recipient address rejected: User unknown", "RCPT"),
        Expect("full@receiver.example", "4.2.2", "452 4.2.2 Mailbox full", "DATA"),
    ]),
    "exim-02.eml": ("exim", [Expect("buyer@slow.example", "4.7.1", "451 4.7.1 Greylisted", "MAIL")]),
    "exim-03.eml": ("exim", [
        Expect("ivan@hosting.example", "5.0.0", "mailbox is full: retry timeout exceeded"),
    ]),
    "exim-04.eml": ("exim", [Expect("ken@nowhere.example", "", "Unrouteable address")]),
    # moan.c's notice to the postmaster: "Message X has been frozen" and the addresses still queued.
    "exim-05.eml": ("exim", [Expect("target@receiver.example", "", "has been frozen by the system filter")]),
    "exim-06.eml": ("exim", [Expect("userx@myhost.test.ex", "", "Child process of address_pipe transport")]),
    "dragonfly-01.eml": ("dragonfly", [
        Expect("liz@receiver.example", "5.1.1", "Recipient address rejected: User unknown", "RCPT"),
    ]),
    "dragonfly-02.eml": ("dragonfly", [
        Expect("nick@unreachable.example", "", "Could not deliver for the last"),
    ]),
    "opensmtpd-01.eml": ("opensmtpd", [
        Expect("peggy@receiver.example", "5.2.2", "Mailbox quota exceeded"),
        Expect("quentin@nowhere.example", "5.0.0", "Domain does not exist"),
    ]),
    "courier-01.eml": ("courier", [
        Expect("sybil@receiver.example", "5.1.1", "550 5.1.1 No such user", "RCPT"),
    ]),
    "amavis-01.eml": ("amavis", [Expect("uma@receiver.example", "5.7.0", "INFECTED: Eicar-Test-Signature")]),
    "powermta-01.eml": ("powermta", [Expect("victor@receiver.example", "5.2.2", "552 5.2.2 Quota exceeded")]),
    "sendgrid-01.eml": ("sendgrid", [Expect("xena@receiver.example", "5.1.1", "User Unknown", "RCPT")]),
    "x1-01.eml": ("x1", [Expect("zach@receiver.example", "", "User unknown")]),
    "x2-01.eml": ("x2", [Expect("ben@receiver.example", "", "Connection refused")]),
    "x3-01.eml": ("x3", [Expect("dana@receiver.example", "5.1.1", "Recipient address rejected", "RCPT")]),
    # X5 wraps an RFC 3464 DSN that the generic reader handles; the x5 module claims nothing.
    "x5-01.eml": ("rfc3464", [Expect("jack@receiver.example", "5.1.1", "550 5.1.1 User unknown")]),
    "x6-01.eml": ("x6", [Expect("fred@receiver.example", "5.1.1", "[550 5.1.1 User unknown]", "RCPT")]),
    "mimecast-01.eml": ("mimecast", [Expect("hank@corp.example", "5.2.2", "5.2.2 Mailbox quota exceeded")]),
}

# Reasons the formats themselves state (their own fixed texts or fields), read by the module.
NAMED_REASONS = {
    "exim-03.eml": (exim, Reason.MAILBOXFULL),            # Exim appendfile.c "mailbox is full"
    "exim-04.eml": (exim, Reason.HOSTUNKNOWN),            # Exim route.c "Unrouteable address"
    "dragonfly-02.eml": (dragonfly, Reason.EXPIRED),      # dma "Could not deliver ... Giving up."
    "amavis-01.eml": (amavis, Reason.VIRUSDETECTED),      # amavisd-new "... - INFECTED"
    "powermta-01.eml": (powermta, Reason.MAILBOXFULL),    # X-PowerMTA-BounceCategory: quota-issues
    "x2-01.eml": (x2, Reason.EXPIRED),                    # qmail-style "in the queue too long"
}


def load(name: str) -> rfc822.Mail:
    return rfc822.load((DATA / name).read_bytes())


@pytest.mark.parametrize("name", sorted(CASES))
def test_sample_gives_expected_records(name: str) -> None:
    fmt, expected = CASES[name]
    report = bounces.parse((DATA / name).read_bytes())
    assert report.format == fmt
    assert [d.recipient for d in report.deliveries] == [e.recipient for e in expected]
    for delivery, want in zip(report.deliveries, expected, strict=True):
        assert delivery.status == want.status
        assert want.diagnostic in delivery.diagnostic
        assert delivery.command == want.command


@pytest.mark.parametrize("name", sorted(NAMED_REASONS))
def test_format_names_the_reason(name: str) -> None:
    module, reason = NAMED_REASONS[name]
    result = module.parse(load(name))
    assert result is not None
    assert [d.reason for d in result.drafts] == [reason]


@pytest.mark.parametrize("name", sorted(CASES))
def test_only_the_owner_claims_a_sample(name: str) -> None:
    """Each sample is claimed by its own module and by none of its siblings."""
    mail = load(name)
    owner = CASES[name][0]
    for module in OURS:
        result = module.parse(mail)
        claimed = result is not None and bool(result.drafts)
        assert claimed == (owner == module.NAME), module.NAME


@pytest.mark.parametrize("name", ["plain-01.eml", "rfc3464-01.eml", "rfc3834-01.eml"])
def test_foreign_messages_are_not_ours(name: str) -> None:
    mail = load(name)
    for module in OURS:
        assert module.parse(mail) is None, module.NAME


def test_returned_original_is_read() -> None:
    for name, message_id in [("postfix-02.eml", "<offer-1@sender.example>"),
                             ("exim-01.eml", "<E1vQx2Z-0001AZ-1a@shared1.hosting.example>"),
                             ("exim-04.eml", "<newsletter-9@hosting.example>"),
                             ("dragonfly-01.eml", "<hello-1@box.sender.example>"),
                             ("x2-01.eml", "<lunch-6@sender.example>"),
                             ("x6-01.eml", "<agenda-9@sender.example>")]:
        report = bounces.parse((DATA / name).read_bytes())
        assert report.original is not None, name
        assert report.original.message_id == message_id


def test_exim_alias_and_x_failed_recipients() -> None:
    """'generated by' names the address of a file delivery; a bare local part takes the header's."""
    (ivan,) = bounces.parse((DATA / "exim-03.eml").read_bytes()).deliveries
    assert ivan.recipient == "ivan@hosting.example"
    assert ivan.reporting_mta == "mx2.hosting.example"
    (ken,) = bounces.parse((DATA / "exim-04.eml").read_bytes()).deliveries
    assert ken.recipient == "ken@nowhere.example"


def test_delay_notices_say_delayed() -> None:
    (buyer,) = bounces.parse((DATA / "exim-02.eml").read_bytes()).deliveries
    assert buyer.action == "delayed"
    assert buyer.remote_mta == "mx.slow.example"
    (frozen,) = bounces.parse((DATA / "exim-05.eml").read_bytes()).deliveries
    assert frozen.action == "delayed"
    (oscar,) = bounces.parse((DATA / "postfix-05.eml").read_bytes()).deliveries
    assert oscar.action == "delayed"


def test_exim_pipe_failure_is_a_local_program() -> None:
    result = exim.parse(load("exim-06.eml"))
    assert result is not None
    assert [d.spec for d in result.drafts] == ["X-UNIX"]


def test_postfix_reads_paragraphs_of_broken_or_old_notices() -> None:
    """Without a delivery-status part the '<rcpt> (expanded from <alias>):' paragraph is enough."""
    (dave,) = bounces.parse((DATA / "postfix-02.eml").read_bytes()).deliveries
    assert dave.remote_mta == "mx.gone.example"
    assert dave.action == "failed"
    report = bounces.parse((DATA / "postfix-01.eml").read_bytes())
    assert report.original is not None
    assert report.original.get("X-PHP-Originating-Script") == "1001:mailer.php"


def test_postfix_transcript_names_the_server() -> None:
    (frank,) = bounces.parse((DATA / "postfix-03.eml").read_bytes()).deliveries
    assert frank.reporting_mta == "relay.sender.example"
    assert frank.reply_code == "452"


def test_crlf_line_ends_read_the_same() -> None:
    for name in ("postfix-01.eml", "exim-01.eml", "opensmtpd-01.eml", "x2-01.eml"):
        raw = (DATA / name).read_bytes()
        lf = bounces.parse(raw)
        crlf = bounces.parse(raw.replace(b"\n", b"\r\n"))
        assert crlf.format == lf.format
        assert [(d.recipient, d.status, d.diagnostic) for d in crlf.deliveries] == [
            (d.recipient, d.status, d.diagnostic) for d in lf.deliveries]


@pytest.mark.parametrize("text,command", [
    ("host x[1.2.3.4] said: 550 nope (in reply to RCPT TO command)", "RCPT"),
    ("said: 554 spam (in reply to end of DATA command)", "DATA"),
    ("SMTP error from remote mail server after MAIL FROM:<a@b> SIZE=1: 550 no", "MAIL"),
    ("SMTP error from remote mail server after pipelined RCPT TO:<a@b>: 550 no", "RCPT"),
    ("Remote host mx.example [192.0.2.1] closed connection in response to end of data", "DATA"),
    ("SMTP error from remote mail server after initial connection: 554 go away", "CONN"),
    ("host mx.example[192.0.2.1] refused to talk to me: 421 busy", "HELO"),
    ("550 5.4.1 Recipient address rejected: Access denied", "RCPT"),
    ("550 5.1.1 user unknown", ""),
])
def test_find_command(text: str, command: str) -> None:
    assert find_command(text) == command


def test_cut_original_at_marker_or_separator() -> None:
    body = "report line\nContent-Type: message/rfc822\n\nFrom: a@b\n"
    assert cut_original(body) == ("report line\n", "From: a@b\n")
    assert cut_original("no original here\n") == ("no original here\n", "")


@pytest.mark.parametrize("name", sorted(CASES))
def test_truncated_samples_never_raise(name: str) -> None:
    raw = (DATA / name).read_bytes()
    for size in (0, 1, 16, 128, 512, len(raw) // 2):
        mail = rfc822.load(raw[:size])
        for module in OURS:
            module.parse(mail)
