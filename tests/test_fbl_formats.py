"""One minimal message per complaint format, written from the format's documentation.

tests/data/fbl/<format>-NN.eml:
  arf-01      RFC 5965 appendix B.1 (required fields only)
  arf-02      RFC 5965 appendix B.2 (optional fields), CRLF line ends
  arf-03      broken: AOL-style Version 0.1 with its spellings, Latin-1 bytes, truncated third part
  arf-04      base64-encoded feedback-report and message/rfc822 parts, IPv6 source, Incidents
  arf-05      RFC 6650 not-spam report; the copy pasted, quoted, into the text part
  arf-06      report part missing: the fields are in the text part
  rfc6591-01  RFC 6591 section 3 example (DKIM bodyhash failure)
  rfc6591-02  RFC 6591 SPF failure with SPF-DNS, Delivery-Result, RFC 7489 Identity-Alignment
  ses-01      the SES Developer Guide's complaint notification, bare JSON (webhook)
  ses-02      the same inside an SNS HTTP envelope
  ses-03      an SES bounce notification in an SNS e-mail: not a complaint
  jmrp-01     a Hotmail JMRP complaint, CRLF line ends
  apple-01    an Apple Mail unsubscribe request (X-Apple-Unsubscribe: true)
  not-01      a DSN returning an ARF report: a bounce, not a complaint
  not-02      a person's e-mail that quotes ARF fields and a JMRP subject: not a complaint
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import fbl
from fbl.fields import feedback_type, find_ip, report_from_fields
from fbl.formats import FORMATS, arf
from rfc822 import load

DATA = Path(__file__).resolve().parent / "data" / "fbl"

# Expected values, per sample, from the documents the samples were written from.
EXPECTED: dict[str, dict[str, object]] = {
    "arf-01.eml": {
        "format": "arf", "feedback_type": "abuse", "user_agent": "SomeGenerator/1.0", "version": "1",
        # "received from IP\n192.0.2.1" in the human-readable part (RFC 5965 B.1 has no Source-IP)
        "source_ip": "192.0.2.1", "recipients": (), "message_id": "8787KJKJ3K4J3K4J3K4J3.mail@example.net",
    },
    "arf-02.eml": {
        "format": "arf", "feedback_type": "abuse", "source_ip": "192.0.2.1",
        "original_mail_from": "somespammer@example.net", "original_rcpt_to": ("user@example.com",),
        "arrival_date": "Thu, 8 Mar 2005 14:00:00 EDT", "reporting_mta": "mail.example.com",
        "authentication_results": ("mail.example.com; spf=fail smtp.mail=somespammer@example.com",),
        "reported_domain": ("example.net",),
        "reported_uri": ("http://example.net/earn_money.html", "mailto:user@example.com"),
        "removal_recipient": ("user@example.com",), "recipients": ("user@example.com",),
        "message_id": "8787KJKJ3K4J3K4J3K4J3.mail@example.net",
    },
    "arf-03.eml": {
        "format": "arf", "feedback_type": "abuse", "user_agent": "AOL SComp", "version": "0.1",
        "source_ip": "192.0.2.45", "arrival_date": "Thu, 29 Apr 2010 00:00:00 -0400 (EDT)",
        "reported_domain": ("mail.example.jp",), "recipients": ("redacted@aol.com",),
        "message_id": "<20100429.0000@mail.example.jp>",
    },
    "arf-04.eml": {
        "format": "arf", "feedback_type": "fraud", "source_ip": "2001:db8::25", "incidents": 3,
        "original_mail_from": "bank-notice@phish.example.net", "recipients": ("victim@example.com",),
        "message_id": "<phish-1@phish.example.net>",
    },
    "arf-05.eml": {
        "format": "arf", "feedback_type": "not-spam", "source_ip": "198.51.100.7",
        "recipients": ("alice@isp.example.com",), "message_id": "<order-42@shop.example.org>",
    },
    "arf-06.eml": {
        "format": "arf", "feedback_type": "virus", "source_ip": "203.0.113.9",
        "recipients": ("bob@isp.example.com",), "message_id": None,
    },
    "rfc6591-01.eml": {
        "format": "rfc6591", "feedback_type": "auth-failure", "auth_failure": "bodyhash",
        "dkim_domain": "example.net", "source_ip": "192.0.2.1",
        "arrival_date": "Wed, 14 Apr 2010 12:15:31 -0700 (PDT)",
        "original_mail_from": "randomuser@example.net", "recipients": ("user@example.com",),
        "authentication_results": ("mail.example.com; dkim=fail header.d=example.net",),
        "message_id": "<20100414.1@example.net>",
    },
    "rfc6591-02.eml": {
        "format": "rfc6591", "feedback_type": "auth-failure", "auth_failure": "spf",
        "delivery_result": "reject", "identity_alignment": "none",
        "spf_dns": ('txt : example.org : "v=spf1 ip4:192.0.2.0/24 -all"',),
        "recipients": ("carol@receiver.example.com",), "message_id": "<june@example.org>",
    },
    "ses-01.eml": {
        "format": "ses", "feedback_type": "abuse", "user_agent": "AnyCompany Feedback Loop (V0.01)",
        "source_ip": "127.0.3.0", "original_mail_from": "email_1337983178613@amazon.com",
        "arrival_date": "2009-12-03T04:24:21.000-05:00", "recipients": ("recipient1@example.com",),
        "message_id": "custom-message-ID", "errors": (),
    },
    "ses-02.eml": {
        "format": "ses", "feedback_type": "abuse", "source_ip": "203.0.113.80",
        "original_mail_from": "news@example.org", "recipients": ("dave@example.net",), "message_id": "",
    },
    "jmrp-01.eml": {
        "format": "jmrp", "feedback_type": "abuse", "source_ip": "198.51.100.12",
        "recipients": ("erin@outlook.example",), "message_id": "<deals-7@example.org>",
    },
    "apple-01.eml": {
        "format": "apple", "feedback_type": "opt-out", "recipients": ("frank@icloud.example",),
        "reported_uri": ("mailto:unsubscribe+list42.frank=icloud.example@lists.example.org",),
        "message_id": None,
    },
}
NOT_COMPLAINTS = ["ses-03.eml", "not-01.eml", "not-02.eml"]


def _raw(name: str) -> bytes:
    return (DATA / name).read_bytes()


def test_every_sample_file_is_in_a_table() -> None:
    assert sorted(p.name for p in DATA.glob("*.eml")) == sorted([*EXPECTED, *NOT_COMPLAINTS])


def test_registry_order() -> None:
    # The narrower standard claim first (RFC 6591 is ARF with one feedback type), then ARF, then
    # the self-describing JSON, then the formats recognised by sender and wording.
    assert [f.name for f in FORMATS] == ["rfc6591", "arf", "ses", "jmrp", "apple"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_registry_walk_first_match_is_the_samples_format(name: str) -> None:
    mail = load(_raw(name))
    claims = [f.name for f in FORMATS if f.parse(mail) is not None]
    assert claims and claims[0] == EXPECTED[name]["format"]


@pytest.mark.parametrize("name", NOT_COMPLAINTS)
def test_no_format_claims_a_non_complaint(name: str) -> None:
    mail = load(_raw(name))
    assert [f.name for f in FORMATS if f.parse(mail) is not None] == []
    report = fbl.parse(_raw(name))
    assert not report.is_complaint
    assert report.format == report.feedback_type == ""
    assert report.recipients == ()


def test_rfc6591_reports_are_arf_for_the_arf_module() -> None:
    # Why the order matters: without the rfc6591 entry, ARF would take the report as generic.
    report = arf.parse(load(_raw("rfc6591-01.eml")))
    assert report is not None and report.format == "arf" and report.feedback_type == "auth-failure"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_fields(name: str) -> None:
    report = fbl.parse(_raw(name))
    expected = dict(EXPECTED[name])
    message_id = expected.pop("message_id")
    assert report.is_complaint
    for key, value in expected.items():
        assert getattr(report, key) == value, key
    if message_id is None:
        assert report.original is None
    else:
        assert report.original is not None and report.original.message_id == message_id
    json.dumps(report.as_dict())


def test_broken_sample_reads_what_is_there_and_says_what_is_not() -> None:
    report = fbl.parse(_raw("arf-03.eml"))
    assert report.original is not None
    assert report.original.subject.startswith("Café crème brûlée")
    assert report.original.from_ == "Café Neko <newsletter@mail.example.jp>"
    assert any("Boundary" in e for e in report.errors)


def test_missing_report_part_is_an_error_but_still_a_complaint() -> None:
    report = fbl.parse(_raw("arf-06.eml"))
    assert any("no message/feedback-report part" in e for e in report.errors)
    assert any("reported message is missing" in e for e in report.errors)


def test_crlf_and_lf_give_the_same_report() -> None:
    crlf = fbl.parse(_raw("arf-02.eml"))
    lf = fbl.parse(_raw("arf-02.eml").replace(b"\r\n", b"\n"))
    assert crlf.as_dict() == lf.as_dict()


def test_ses_envelope_subject_is_decoded() -> None:
    report = fbl.parse(_raw("ses-02.eml"))
    assert report.original is not None and report.original.subject == "June \N{INCOMING ENVELOPE}"


def test_ses_complaint_without_feedback_type_is_abuse() -> None:
    body = json.loads(_raw("ses-01.eml"))
    del body["complaint"]["complaintFeedbackType"]
    assert fbl.parse(json.dumps(body).encode()).feedback_type == "abuse"


def test_ses_event_publishing_uses_event_type() -> None:
    body = json.loads(_raw("ses-01.eml"))
    body["eventType"] = body.pop("notificationType")
    assert fbl.parse(json.dumps(body).encode()).recipients == ("recipient1@example.com",)


def test_jmrp_needs_more_than_the_subject() -> None:
    raw = _raw("jmrp-01.eml").replace(b"From: staff@hotmail.com", b"From: someone@example.net")
    raw = raw.replace(b"X-HmXmrOriginalRecipient", b"X-Other")
    assert not fbl.parse(raw).is_complaint


def test_apple_header_must_say_true() -> None:
    raw = _raw("apple-01.eml").replace(b"X-Apple-Unsubscribe: true", b"X-Apple-Unsubscribe: false")
    assert not fbl.parse(raw).is_complaint


@pytest.mark.parametrize(
    ("value", "normalised"),
    [("abuse", "abuse"), ("Abuse", "abuse"), ("abuse (spam)", "abuse"), ("Opt_Out", "opt-out"),
     ("optout", "opt-out"), ("not spam", "not-spam"), ("auth-failure", "auth-failure"),
     ('"fraud"', "fraud"), ("", "")],
)
def test_feedback_type_spellings(value: str, normalised: str) -> None:
    assert feedback_type(value) == normalised


@pytest.mark.parametrize(
    ("text", "ip"),
    [("192.0.2.1", "192.0.2.1"), ("[192.0.2.1]", "192.0.2.1"), ("192.0.2.1 (mail.example.net)", "192.0.2.1"),
     ("IPv6:2001:db8::1", "2001:db8::1"), ("2001:DB8::1", "2001:db8::1"), ("unknown", ""),
     ("Thu, 29 Apr 2009 00:00:00", "")],
)
def test_find_ip(text: str, ip: str) -> None:
    assert find_ip(text) == ip


def test_fields_that_must_not_repeat_keep_the_first() -> None:
    report = report_from_fields([("Feedback-Type", "abuse"), ("Feedback-Type", "fraud"),
                                 ("Incidents", "many"), ("Original-Rcpt-To", "<a@example.com>"),
                                 ("Original-Rcpt-To", "rfc822; b@example.com")])
    assert report.feedback_type == "abuse"
    assert report.incidents is None
    assert report.original_rcpt_to == ("a@example.com", "b@example.com")
    assert len(report.errors) == 2


def test_not_a_complaint_is_an_empty_report() -> None:
    report = fbl.parse(b"From: a@example.com\nSubject: hello\n\nhi\n")
    assert report == fbl.FeedbackReport()
    assert report.as_dict()["is_complaint"] is False
