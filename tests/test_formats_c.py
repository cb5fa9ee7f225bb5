"""Provider bounce formats: Amazon SES/WorkMail, Google, Yahoo!, GMX, Mail.Ru, Yandex, Zoho,
the Japanese carriers (EZweb, KDDI), m-FILTER and Verizon.

Each tests/data/formats/<module>-NN.eml is a minimal message written after the structure
that the format's documentation or its real notices show (the Sisimai module each format
module ports names them); the expected values below are what those messages say.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

import bounces
import rfc822
from bounces.formats import (
    REGISTRY,
    amazonses,
    amazonworkmail,
    ezweb,
    gmail,
    gmx,
    googlegroups,
    kddi,
    mailru,
    mfilter,
    receivingses,
    verizon,
    yahoo,
    yandex,
    zoho,
)
from bounces.model import Reason
from tests.format_cases import Expected, assert_delivery

DATA = Path(__file__).parent / "data" / "formats"
GROUP_C = (amazonses, amazonworkmail, receivingses, gmail, googlegroups, yahoo, gmx, mailru, yandex,
           zoho, ezweb, kddi, mfilter, verizon)


CASES = [
    # SES puts its generic 5.1.0 first and quotes the remote reply, whose 5.1.1 tells.
    Expected("amazonses-01.eml", "nobody@example.net", "5.1.1", "<nobody@example.net>... User unknown",
             reply_code="550"),
    # SES developer guide: bounceType Transient / bounceSubType MailboxFull.
    Expected("amazonses-02.eml", "full@example.org", "5.2.2", "552 5.2.2 Mailbox full", Reason.MAILBOXFULL),
    Expected("amazonses-03.eml", "someone@example.net", "2.6.0", "250 2.6.0 Message received",
             Reason.DELIVERED),
    # WorkMail wraps the last server's reply in angle brackets.
    Expected("amazonworkmail-01.eml", "late@example.org", "", "Message expired", reply_code="421"),
    Expected("receivingses-01.eml", "team@example.org", "5.6.1", "Message content rejected",
             Reason.SPAMDETECTED),
    Expected("gmail-01.eml", "ghost@example.jp", "", "User unknown (state 14)", Reason.USERUNKNOWN, "RCPT"),
    Expected("gmail-02.eml", "slow@example.org", "", "did not accept our requests to connect",
             Reason.EXPIRED),
    Expected("googlegroups-01.eml", "closed-list@googlegroups.com", "", "may not have permission to post",
             Reason.REJECTED),
    Expected("yahoo-01.eml", "full@example.jp", "5.2.2", "552 5.2.2 <full@example.jp>... Mailbox full",
             command="RCPT", reply_code="552"),
    Expected("gmx-01.eml", "nobody@example.co.jp", "5.1.1", "User Unknown", command="RCPT"),
    Expected("gmx-01.eml", "far@example.net", "", "delivery retry timeout exceeded", Reason.EXPIRED),
    Expected("mailru-01.eml", "refuser@example.jp", "5.1.8", "501 5.1.8 Sender address rejected",
             command="MAIL", reply_code="501"),
    Expected("yandex-01.eml", "gone@example.jp", "5.1.1", "User Unknown", command="RCPT"),
    Expected("zoho-01.eml", "nobody@example.co.jp", "5.1.1", "ERROR_CODE :5.1.1"),
    Expected("ezweb-01.eml", "full-user@ezweb.ne.jp", "", "temporarily over quota", Reason.MAILBOXFULL),
    Expected("kddi-01.eml", "nowhere@example.dion.ne.jp", "", "remote domain doesnt exist",
             Reason.HOSTUNKNOWN),
    Expected("mfilter-01.eml", "unknown@example.co.jp", "5.1.1", "User unknown in local recipient table",
             command="RCPT"),
    Expected("verizon-01.eml", "5550100@vtext.com", "", "no such user here", Reason.USERUNKNOWN, "RCPT"),
    Expected("verizon-02.eml", "5550101@vzwpix.com", "", "No valid recipients for this MM",
             Reason.USERUNKNOWN),
]


def load(name: str) -> rfc822.Mail:
    return rfc822.load((DATA / name).read_bytes())


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.file}:{c.recipient}")
def test_format_reads_its_sample(case: Expected) -> None:
    report = bounces.parse((DATA / case.file).read_bytes())
    assert report.format == case.file.rsplit("-", 1)[0]
    delivery = next(d for d in report.deliveries if d.recipient == case.recipient)
    assert_delivery(delivery, case)
    if case.reason is not None:
        assert delivery.reason is case.reason
    assert report.original is not None
    assert case.recipient in report.original.to or case.file.startswith(("amazonses-03", "verizon-01"))


def test_every_group_c_module_is_registered_once() -> None:
    names = [module.NAME for module in REGISTRY]
    for module in GROUP_C:
        assert names.count(module.NAME) == 1


@pytest.mark.parametrize("module", GROUP_C, ids=lambda m: m.NAME)
def test_plain_message_is_not_mine(module: ModuleType) -> None:
    assert module.parse(load("plain-01.eml")) is None


@pytest.mark.parametrize(("module", "sibling"), [
    (amazonses, "amazonworkmail-01.eml"),   # WorkMail also sends through SES
    (amazonses, "receivingses-01.eml"),     # SES receiving has the same X-SES-Outgoing header
    (amazonworkmail, "amazonses-01.eml"),
    (receivingses, "amazonses-01.eml"),
    (gmail, "googlegroups-01.eml"),         # same From and Subject
    (googlegroups, "gmail-01.eml"),
    (kddi, "ezweb-01.eml"),                 # both au by KDDI
    (ezweb, "kddi-01.eml"),
    (yandex, "rfc3464-02.eml"),             # a Postfix-style DSN from somebody else
    (mailru, "gmx-01.eml"),                 # both Exim texts
    (gmx, "mailru-01.eml"),
])
def test_sibling_format_is_not_mine(module: ModuleType, sibling: str) -> None:
    assert module.parse(load(sibling)) is None


def test_ses_complaint_is_left_to_the_feedback_parser() -> None:
    # notificationType "Complaint": fbl/ reads it; as a bounce it is nobody's.
    assert amazonses.parse(load("amazonses-04.eml")) is None


def test_ses_dsn_without_the_ses_header_is_known_by_its_sender() -> None:
    # A relay may drop X-SES-Outgoing; SES's MAILER-DAEMON address still names the format.
    raw = (DATA / "amazonses-01.eml").read_bytes().replace(b"X-SES-Outgoing: 2026.03.02-192.0.2.10\n", b"")
    result = amazonses.parse(rfc822.load(raw))
    assert result is not None and result.drafts[0].recipient == "nobody@example.net"


def test_ses_json_keeps_the_sent_headers_for_attribution() -> None:
    report = bounces.parse((DATA / "amazonses-02.eml").read_bytes())
    assert report.original is not None
    assert report.original.get("X-PHP-Originating-Script") == "1001:invoice.php"
    assert report.original.get("Message-ID") == "0100018e-mail-0002"
    assert report.deliveries[0].reporting_mta == "a1-3.smtp-out.amazonses.com"


def test_ses_json_folded_by_sendmail_is_joined() -> None:
    # amazonses-03 has a "!" + newline + space break inside the JSON (sendmail's long-line folding).
    assert b"!\n " in (DATA / "amazonses-03.eml").read_bytes()
    result = amazonses.parse(load("amazonses-03.eml"))
    assert result is not None
    assert [d.recipient for d in result.drafts] == ["someone@example.net"]
    assert result.drafts[0].action == "delivered"


def test_ses_json_that_does_not_parse_is_not_mine() -> None:
    raw = (DATA / "amazonses-02.eml").read_bytes().replace(b'"Type"', b'"Type', 1)
    assert amazonses.parse(rfc822.load(raw)) is None


def test_gmail_reads_the_remote_host_and_the_delay() -> None:
    permanent = bounces.parse((DATA / "gmail-01.eml").read_bytes()).deliveries[0]
    assert permanent.remote_mta == "mx.example.jp"
    delayed = gmail.parse(load("gmail-02.eml"))
    assert delayed is not None and delayed.drafts[0].action == "delayed"


def test_gmx_reads_the_remote_host() -> None:
    result = gmx.parse(load("gmx-01.eml"))
    assert result is not None
    assert result.drafts[0].remote_mta == "mx.example.co.jp"


def test_mailru_reads_each_address_once_and_the_hosts() -> None:
    # The Russian preamble repeats the English text; each address is reported once.
    result = mailru.parse(load("mailru-01.eml"))
    assert result is not None
    (draft,) = result.drafts
    assert (draft.remote_mta, draft.reporting_mta) == ("mx.example.jp", "smtp1.mail.ru")


def test_ezweb_spam_filter_header_means_filtered() -> None:
    raw = (DATA / "ezweb-01.eml").read_bytes().replace(b"MIME-Version", b"X-SPASIGN: NG\nMIME-Version", 1)
    result = ezweb.parse(rfc822.load(raw))
    assert result is not None and result.drafts[0].reason is Reason.FILTERED


def test_mfilter_names_the_remote_host_not_the_loopback() -> None:
    result = mfilter.parse(load("mfilter-01.eml"))
    assert result is not None
    assert result.drafts[0].remote_mta == ""
    assert result.drafts[0].reporting_mta == "mx.example.co.jp"


@pytest.mark.parametrize("module", GROUP_C, ids=lambda m: m.NAME)
def test_truncated_samples_never_raise(module: ModuleType) -> None:
    for path in sorted(DATA.glob("*.eml")):
        raw = path.read_bytes()
        for cut in (0, 40, len(raw) // 3, len(raw) // 2, len(raw) - 20):
            module.parse(rfc822.load(raw[:cut]))


def test_shared_helpers_read_commands_hosts_and_quoted_replies() -> None:
    from bounces.formats._providers import command_in, received_hosts, refine_generic_status
    from bounces.model import Draft

    assert command_in("SMTP error from remote mail server after end of data:") == "DATA"
    assert command_in("550 5.1.1 unknown (in reply to RCPT TO command)") == "RCPT"
    assert command_in("550 5.1.1 unknown") == ""
    hosts = received_hosts("from unknown (HELO mx.example.jp) ([192.0.2.4]) by mx2.example.com with SMTP")
    assert hosts == ["mx.example.jp", "mx2.example.com"]
    draft = Draft(status="5.1.0",
                  diagnostic="5.1.0 - Unknown address error 550-'5.2.2 <a@example.jp>... Full'")
    refine_generic_status(draft)
    assert (draft.status, draft.reply_code) == ("5.2.2", "550")
    kept = Draft(status="5.3.0",
                 diagnostic="5.3.0 - Other mail system problem 550-'Unknown user a@example.jp'")
    refine_generic_status(kept)
    assert kept.status == "5.3.0"  # no code in the quoted reply: SES's own status stands
