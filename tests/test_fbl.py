"""fbl.parse on the corpus: every ``feedback`` row is a complaint of the right type and recipient,
and nothing else in the corpus is taken for a complaint.

Expected feedback types and recipients come from the corpus's expected.jsonl (the Sisimai
authors' tables); the source IPs in SOURCE_IPS were read off the emails themselves.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

import fbl

CORPUS = Path(__file__).resolve().parent / "data" / "corpus"
EMAILS = CORPUS / "emails"


def _rows_by_file() -> dict[str, list[dict[str, object]]]:
    rows: dict[str, list[dict[str, object]]] = defaultdict(list)
    with (CORPUS / "expected.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            rows[str(row["file"])].append(row)
    return rows


ROWS = _rows_by_file()
FEEDBACK = sorted(name for name, rows in ROWS.items() if any(r["reason"] == "feedback" for r in rows))
NEGATIVES = sorted(
    json.loads(line)["file"] for line in (CORPUS / "negatives.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
)
NOT_FEEDBACK = sorted(
    {str(p.relative_to(EMAILS)) for p in EMAILS.rglob("*.eml")} - set(FEEDBACK)
)

# The IP that each complaint names as the source of the reported message, as the email shows it:
# a Source-IP field (RFC 5965 section 3.2) or, for JMRP, the "complaint about message from" subject.
SOURCE_IPS = {
    "maildir/bsd/arf-01.eml": "192.0.2.89",
    "maildir/bsd/arf-17.eml": "192.0.2.3",
    "maildir/bsd/arf-18.eml": "192.0.2.222",
    "maildir/bsd/arf-19.eml": "203.0.113.2",
    "maildir/bsd/arf-20.eml": "203.0.113.2",
    "maildir/bsd/arf-21.eml": "198.51.100.224",
    "maildir/bsd/arf-22.eml": "192.0.2.222",
    "maildir/bsd/arf-23.eml": "192.0.2.222",
}


def _parse(name: str) -> fbl.FeedbackReport:
    return fbl.parse((EMAILS / name).read_bytes())


def test_the_corpus_has_complaints_and_others() -> None:
    assert len(FEEDBACK) >= 10
    assert len(NOT_FEEDBACK) >= 400
    assert set(NEGATIVES) <= set(NOT_FEEDBACK)


@pytest.mark.parametrize("name", FEEDBACK)
def test_corpus_complaint_type_and_recipients(name: str) -> None:
    rows = [r for r in ROWS[name] if r["reason"] == "feedback"]
    report = _parse(name)
    assert report.is_complaint, report.errors
    assert {report.feedback_type} == {str(r["feedbacktype"]) for r in rows}
    wanted = sorted(str(r["recipient"]).lower() for r in rows if r.get("recipient"))
    if wanted:
        assert sorted(a.lower() for a in report.recipients) == wanted
    assert len(report.recipients) == len(rows)


@pytest.mark.parametrize("name", sorted(SOURCE_IPS))
def test_corpus_complaint_source_ip(name: str) -> None:
    assert _parse(name).source_ip == SOURCE_IPS[name]


@pytest.mark.parametrize("name", FEEDBACK)
def test_corpus_complaint_is_json_friendly(name: str) -> None:
    report = _parse(name)
    data = json.loads(json.dumps(report.as_dict(), ensure_ascii=False))
    assert data["feedback_type"] == report.feedback_type
    assert data["recipients"] == list(report.recipients)
    assert data["is_complaint"] is True
    if report.original is not None:
        assert data["original"] == json.loads(json.dumps(report.original.as_dict()))


@pytest.mark.parametrize("name", NOT_FEEDBACK)
def test_corpus_non_complaint_is_not_taken_for_one(name: str) -> None:
    report = _parse(name)
    assert not report.is_complaint, (report.format, report.feedback_type)
    assert report.feedback_type == ""
    assert report.recipients == ()


def test_arf_without_rcpt_to_takes_the_first_addressee_of_the_copy() -> None:
    # arf-01.eml redacts the recipient (Redacted-Address: redacted@); the copy's To names it.
    report = _parse("maildir/bsd/arf-01.eml")
    assert report.original_rcpt_to == ()
    assert report.recipients == ("redacted@example.net",)
    assert report.arrival_date == "Thu, 29 Apr 2009 00:00:00 -0000 (EST)"  # spelt Received-Date


def test_auth_failure_reports_keep_the_rfc6591_fields() -> None:
    report = _parse("maildir/bsd/arf-18.eml")
    assert report.format == "rfc6591"
    assert report.auth_failure == "dmarc"
    assert report.delivery_result == "delivered"
    assert report.authentication_results == ("dmarc=fail (p=none; dis=none) header.from=example.org",)
    assert report.original_mail_from == "sironeko@example.org"


def test_text_rfc822_headers_third_part_is_the_original() -> None:
    report = _parse("maildir/bsd/arf-19.eml")
    assert report.original is not None
    assert report.original.message_id == "<000000000.2222222.0000000000002@example.net>"
    assert report.dkim_domain == "ietf.org; example.net"


def test_ses_json_complaint_in_an_sns_email() -> None:
    # lhost-amazonses-11.eml: the JSON is folded with '!' by SNS e-mail delivery.
    report = _parse("maildir/bsd/lhost-amazonses-11.eml")
    assert report.format == "ses"
    assert report.original_mail_from == "kijitora@neko.example.jp"
    assert report.user_agent == "Amazon SES Mailbox Simulator"
    assert report.original is not None and report.original.subject == "Nyaan"


def test_report_whose_boundary_is_lost_is_read_from_the_raw_body() -> None:
    # Without its boundary the multipart cannot be split; the fields and the copy are still there.
    raw = (EMAILS / "maildir/bsd/arf-17.eml").read_bytes()
    raw = raw.replace(b'boundary="==f000000000111111111110000000eee=="', b"")
    report = fbl.parse(raw)
    assert report.feedback_type == "abuse"
    assert report.recipients == ("kijitora@example.com", "sabatora@example.net")
    assert report.source_ip == "192.0.2.3"
    assert report.original is not None
    assert report.original.message_id == "<EEEEEEEE-0000-0000-0000-EEEEEEEE2222@example.net>"


def test_report_cut_before_its_third_part_says_so() -> None:
    raw = (EMAILS / "maildir/bsd/arf-21.eml").read_bytes()
    report = fbl.parse(raw[: raw.find(b"Content-Type: message/rfc822")])
    assert report.feedback_type == "abuse"
    assert report.original is None
    assert report.recipients == ()
    assert any("reported message is missing" in e for e in report.errors)


def test_indented_report_fields_are_still_read() -> None:
    # The email package drops header lines that start with blanks; the raw text still has them.
    raw = (EMAILS / "maildir/bsd/arf-21.eml").read_bytes()
    for name in (b"User-Agent", b"Abuse-Type", b"Arrival-Date", b"Feedback-Type", b"Version", b"Source-IP",
                 b"Original-Mail-From"):
        raw = raw.replace(b"\n" + name + b":", b"\n   " + name + b":")
    report = fbl.parse(raw)
    assert (report.feedback_type, report.user_agent, report.original_mail_from) == (
        "abuse", "ReturnPathFBL/1.0", "sironeko@example.net")
    assert not any("Feedback-Type" in e for e in report.errors)
