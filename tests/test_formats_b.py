"""MTA bounce formats: Sendmail (V8 and V5), qmail, Messaging Server, Exchange 2003/2007+,
Office 365, Outlook.com, Domino, Notes, IMail, MailMarshal, McAfee, MX Logic, SurfControl,
MailFoundry, Barracuda, Active!hunter, Bigfoot, fml and Apache James.

Each tests/data/formats/<module>-NN.eml is a minimal message written after the structure
that the MTA's documentation, its source (Sendmail's savemail.c, qmail-remote.c, ...) or its
real notices show (the Sisimai module each format module ports names them); the expected
values below are what those messages say. McAfee, SurfControl and Barracuda notices are plain
RFC 3464 reports: their modules leave them to the RFC 3464 reader, and the tests say so.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType

import pytest

import bounces
import rfc822
from bounces.formats import REGISTRY
from bounces.formats._lines import dsn_field, fillet, reply_code_for, sweep
from bounces.model import Reason
from tests.format_cases import Expected, assert_delivery

DATA = Path(__file__).parent / "data" / "formats"
GROUP_B_NAMES = ("sendmail", "v5sendmail", "qmail", "messagingserver", "exchange2003", "exchange2007",
                 "office365", "outlook", "domino", "notes", "imailserver", "mailmarshal", "mcafee", "mxlogic",
                 "surfcontrol", "mailfoundry", "barracuda", "activehunter", "bigfoot", "fml", "apachejames")
GROUP_B: tuple[ModuleType, ...] = tuple(
    importlib.import_module(f"bounces.formats.{name}") for name in GROUP_B_NAMES)


CASES = [
    # savemail.c: the transcript's <<< lines hold the whole multi-line reply that the
    # Diagnostic-Code field cuts after its first line; >>> DATA names the command.
    Expected("sendmail-01.eml", "blocked@example.net", "5.7.0", "552 5.7.0 Message rejected.",
             command="DATA", reply_code="552"),
    # Diagnostic-Code is the mailer's exit code only; the transcript's status line explains it.
    Expected("sendmail-02.eml", "helpdesk@example.jp", "5.3.0", "554 5.3.0 unknown mailer error 255",
             reply_code="554"),
    # Two recipients, one transcript: the one the transcript is not about keeps its own reply.
    Expected("sendmail-03.eml", "nobody@one.example.net", "5.1.1", "please check the spelling",
             command="RCPT", reply_code="550"),
    Expected("sendmail-03.eml", "full@two.example.org", "5.2.2", "552 5.2.2 Mailbox full", reply_code="552"),
    Expected("v5sendmail-01.eml", "gone@example.org", "", "User unknown: 550 <gone@example.org>",
             command="RCPT", reply_code="550"),
    # No address in the transcript: the returned message's To: names the recipient.
    Expected("v5sendmail-02.eml", "someone@far.example.net", "", "Connection timed out during user open",
             reply_code="421"),
    Expected("qmail-01.eml", "nobody@example.org", "5.1.1", "Recipient address rejected: User unknown",
             command="RCPT", reply_code="550"),
    Expected("qmail-01.eml", "full@example.org", "5.2.2", "552 5.2.2 <full@example.org>: Mailbox full",
             command="RCPT", reply_code="552"),
    # qmail-ldap's own text; the "queue too long" note is not the cause.
    Expected("qmail-02.eml", "kenji@example.jp", "4.4.3", "Unable to contact LDAP server",
             Reason.SYSTEMERROR),
    # qmail-remote.c:78 "Sorry, I couldn't find any host named ..."
    Expected("qmail-02.eml", "nomx@example.invalid", "5.1.2", "couldn't find any host named",
             Reason.HOSTUNKNOWN),
    Expected("qmail-03.eml", "full@example.org", "5.2.2", "Mailbox full", command="RCPT"),  # CRLF copy
    Expected("messagingserver-01.eml", "missing@example.net", "5.1.1",
             "<missing@example.net>... User Unknown", reply_code="550"),
    Expected("messagingserver-02.eml", "someone@nohost.example", "5.4.4", "Illegal host/domain name found",
             Reason.HOSTUNKNOWN),
    # Exchange's error table: 000C05A6 is "Unknown Recipient".
    Expected("exchange2003-01.eml", "nobody@example.co.jp", "", "(000C05A6) Unknown Recipient",
             Reason.USERUNKNOWN),
    # French NDR (subject "Non remis :", "Informations de diagnostic pour les administrateurs").
    Expected("exchange2007-01.eml", "absent@example.fr", "5.1.1", "RESOLVER.ADR.RecipNotFound",
             Reason.USERUNKNOWN, reply_code="550"),
    # Italian NDR ("Non recapitabile:"): the recipient's own size limit.
    Expected("exchange2007-02.eml", "grande@example.it", "5.2.3", "RESOLVER.RST.RecipSizeLimit",
             Reason.EXCEEDLIMIT, reply_code="550"),
    # Microsoft documents 5.1.10 as "recipient not found".
    Expected("office365-01.eml", "nosuch@contoso.com", "5.1.10", "RESOLVER.ADR.RecipientNotFound",
             Reason.USERUNKNOWN, reply_code="550"),
    # No Diagnostic-Code: Hotmail's own sentence for a delayed message stands in for it.
    Expected("outlook-01.eml", "slow@example.org", "4.4.7", "has been delayed"),
    Expected("domino-01.eml", "tanaka@example.com", "5.0.0", "not listed in Domino Directory",
             Reason.USERUNKNOWN),
    Expected("notes-01.eml", "yamada@notes.example.co.jp", "",
             "User not listed in public Name & Address Book", Reason.USERUNKNOWN),
    Expected("imailserver-01.eml", "someone@example.net", "5.7.1", "Message rejected as spam",
             reply_code="550"),
    Expected("imailserver-02.eml", "ghost@example.com", "", "Unknown user", Reason.USERUNKNOWN),
    Expected("mailmarshal-01.eml", "absent@example.com", "5.1.1", "User unknown", reply_code="550"),
    Expected("mxlogic-01.eml", "full@example.net", "5.2.2", "552 5.2.2 Mailbox full", command="RCPT",
             reply_code="552"),
    Expected("mailfoundry-01.eml", "quota@example.org", "5.2.2", "responded with failure: 552 5.2.2",
             reply_code="552"),
    Expected("activehunter-01.eml", "nobody@example.org", "5.1.1", "no mailbox here by that name",
             reply_code="550"),
    # The transcript's >>> RCPT TO: names the command the fields do not.
    Expected("bigfoot-01.eml", "moved@example.org", "5.7.1", "Invalid recipient moved@example.org",
             command="RCPT", reply_code="553"),
    Expected("fml-01.eml", "stranger@example.net", "", "NOT MEMBER article from", Reason.REJECTED),
    Expected("apachejames-01.eml", "buyer@james.example.net", "", "550 - Requested action not taken",
             reply_code="550"),
]

RFC3464_CASES = [
    ("mcafee-01.eml", "nouser@example.co.jp", "5.1.1", "User unknown"),
    ("surfcontrol-01.eml", "nobody@example.com", "5.1.1", "No such user"),
    ("barracuda-01.eml", "user@example.jp", "5.7.1", "Message content rejected, UBE"),
]


def _load(name: str) -> rfc822.Mail:
    return rfc822.load((DATA / name).read_bytes())


def _module(file: str) -> ModuleType:
    return importlib.import_module(f"bounces.formats.{file.rsplit('-', 1)[0]}")


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.file}:{c.recipient}")
def test_format_reads_its_sample(case: Expected) -> None:
    module = _module(case.file)
    report = bounces.parse((DATA / case.file).read_bytes())
    assert report.format == module.NAME
    found = [d for d in report.deliveries if d.recipient == case.recipient]
    assert found, [d.recipient for d in report.deliveries]
    delivery = found[0]
    assert delivery.status == case.status
    assert_delivery(delivery, case)
    if case.reason is not None:
        result = module.parse(_load(case.file))
        assert result is not None
        draft = next(d for d in result.drafts if d.recipient == case.recipient)
        assert draft.reason is case.reason


PLAIN = (b"From: friend@example.org\nTo: me@example.jp\nSubject: Undeliverable thoughts on the weekend\n"
         b"Date: Wed, 1 Apr 2026 10:00:00 +0900\nMessage-ID: <plain@example.org>\n\n"
         b"Are you free on Saturday? Returned mail from the post office made me think of you.\n")


@pytest.mark.parametrize("module", GROUP_B, ids=lambda m: m.NAME)
def test_module_ignores_a_plain_message(module: ModuleType) -> None:
    result = module.parse(rfc822.load(PLAIN))
    assert result is None or not result.drafts


@pytest.mark.parametrize("module", GROUP_B, ids=lambda m: m.NAME)
def test_module_ignores_the_other_formats(module: ModuleType) -> None:
    """Each module leaves its sibling formats' samples alone (the registry order must not matter here)."""
    for path in sorted(DATA.glob("*.eml")):
        if path.name.startswith(module.NAME + "-") or path.name.rsplit("-", 1)[0] not in GROUP_B_NAMES:
            continue
        result = module.parse(rfc822.load(path.read_bytes()))
        assert result is None or not result.drafts, path.name


@pytest.mark.parametrize(("file", "recipient", "status", "diagnostic"), RFC3464_CASES)
def test_plain_rfc3464_notices_are_left_to_the_rfc3464_reader(
        file: str, recipient: str, status: str, diagnostic: str) -> None:
    assert _module(file).parse(_load(file)) is None
    report = bounces.parse((DATA / file).read_bytes())
    assert report.format == "rfc3464"
    delivery = report.deliveries[0]
    assert (delivery.recipient, delivery.status) == (recipient, status)
    assert diagnostic in delivery.diagnostic


def test_every_group_b_module_is_registered() -> None:
    names = [m.NAME for m in REGISTRY]
    assert all(name in names for name in GROUP_B_NAMES)
    # Exchange 2007 excludes Office 365 by its CrossTenant headers, so it must be asked first.
    assert names.index("exchange2007") < names.index("office365")


def test_returned_original_is_kept() -> None:
    report = bounces.parse((DATA / "v5sendmail-01.eml").read_bytes())
    assert report.original is not None
    assert report.original.subject == "minutes"
    report = bounces.parse((DATA / "qmail-01.eml").read_bytes())
    assert report.original is not None and report.original.subject == "party"


def test_forwarded_sendmail_bounce_is_unquoted() -> None:
    """A person forwarding a bounce quotes it with '>' (Sisimai::Message strips both)."""
    raw = (DATA / "sendmail-01.eml").read_text()
    quoted = "\n".join("> " + line for line in raw.split("\n"))
    forwarded = ("From: sender@example.jp\nTo: admin@example.jp\nSubject: Fwd: Returned mail: see transcript "
                 "for details\nContent-Type: text/plain\n\nFYI\n\n" + quoted)
    report = bounces.parse(forwarded.encode())
    assert report.format == "sendmail"
    assert report.deliveries[0].recipient == "blocked@example.net"


def test_helpers() -> None:
    assert sweep("  550  5.1.1\tunknown  --boundary-1") == "550 5.1.1 unknown"
    field = dsn_field("Final-Recipient: RFC822; <a@example.org>")
    assert field is not None and (field.name, field.subtype, field.value) == ("final-recipient", "RFC822",
                                                                              "a@example.org")
    assert dsn_field("Subject: nope") is None
    boundary = re.compile(r"^--- Below\n", re.M)
    assert fillet("error\n--- Below\nFrom: x\n", boundary) == ("error\n", "From: x\n")
    # The reply of the status's class decides, not a 450 retry before it.
    assert reply_code_for("450 busy 551 not our user 503 need RCPT", "5.1.6") == "551"
    assert reply_code_for("no code here", "5.0.0") == ""


@pytest.mark.parametrize("module", GROUP_B, ids=lambda m: m.NAME)
def test_module_survives_junk(module: ModuleType) -> None:
    for junk in (b"", b"\x00\xff" * 50, b"Subject: failure notice\n\nHi. This is the qmail\n<@>:\n",
                 b"Subject: Returned mail: see transcript for details\n\n----- Transcript of session follows"
                 b" -----\nFinal-Recipient: rfc822;\n"):
        module.parse(rfc822.load(junk))
