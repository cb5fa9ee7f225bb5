"""ingest.classify: the single entry point that tells complaints, bounces, auto-replies apart.

Expected answers come from the corpus's expected.jsonl (the Sisimai authors' tables) and from the
JSON shape of issue 2, section 4.
"""

from __future__ import annotations

import importlib
import json
from collections import defaultdict
from pathlib import Path

import pytest

import bounces
import fbl
from bounces.model import BounceReport, Delivery, Reason
from fbl.model import FeedbackReport
from ingest import Kind, SourceMessage, classify, classify_source
from rfc822 import Mail

CORPUS = Path(__file__).resolve().parent / "data" / "corpus"
KIND_OF_REASON = {"feedback": "complaint", "vacation": "autoreply", "delivered": "delivery"}
TOP_KEYS = {"kind", "records", "complaint", "original", "errors"}
RECORD_KEYS = {"recipient", "action", "status", "reply_code", "reason", "hard_bounce", "diagnostic",
               "remote_mta", "reporting_mta", "command", "date", "feedback_type"}


def expected_by_file() -> dict[str, list[dict[str, object]]]:
    rows: dict[str, list[dict[str, object]]] = defaultdict(list)
    with (CORPUS / "expected.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            rows[row["file"]].append(row)
    return rows


EXPECTED = expected_by_file()
NOT_BOUNCES = sorted(name for name, rows in EXPECTED.items()
                     if {str(r["reason"]) for r in rows} <= set(KIND_OF_REASON) and len(rows) == 1)


def raw(name: str) -> bytes:
    return (CORPUS / "emails" / name).read_bytes()


@pytest.mark.parametrize("name", NOT_BOUNCES)
def test_complaints_autoreplies_and_deliveries_get_their_kind(name: str) -> None:
    row = EXPECTED[name][0]
    result = classify(raw(name))
    assert result.kind.value == KIND_OF_REASON[str(row["reason"])]
    assert [r.reason for r in result.records] == [row["reason"]] * len(result.records)
    assert result.records
    if row["reason"] == "feedback":
        assert {r.feedback_type for r in result.records} == {row["feedbacktype"]}
        if row.get("recipient"):
            assert str(row["recipient"]).lower() in [r.recipient.lower() for r in result.records]


def test_a_complaint_record_is_shaped_like_a_bounce_record() -> None:
    row = EXPECTED["maildir/bsd/arf-14.eml"][0]
    out = classify(raw("maildir/bsd/arf-14.eml")).as_dict()
    assert set(out) == TOP_KEYS
    assert out["kind"] == "complaint"
    records = out["records"]
    assert isinstance(records, list)
    assert set(records[0]) == RECORD_KEYS
    assert records[0]["reason"] == "feedback"
    assert records[0]["hard_bounce"] is False
    assert records[0]["feedback_type"] == row["feedbacktype"]
    assert (records[0]["action"], records[0]["status"], records[0]["reply_code"]) == ("", "", "")
    assert isinstance(out["complaint"], dict)
    assert out["complaint"]["feedback_type"] == row["feedbacktype"]
    json.dumps(out)


@pytest.mark.parametrize("name", ["maildir/bsd/lhost-exim-01.eml", "maildir/bsd/rfc3464-03.eml"])
def test_a_bounce_has_a_null_feedback_type_and_its_original(name: str) -> None:
    row = EXPECTED[name][0]
    out = classify(raw(name)).as_dict()
    assert set(out) == TOP_KEYS
    assert out["kind"] == "bounce"
    assert out["complaint"] is None
    records = out["records"]
    assert isinstance(records, list)
    record = next(r for r in records if r["recipient"] == row["recipient"])
    assert set(record) == RECORD_KEYS
    assert record["feedback_type"] is None
    assert (record["reason"], record["status"]) == (row["reason"], row["status"])
    if b"message/rfc822" in raw(name) or b"text/rfc822-headers" in raw(name):
        assert isinstance(out["original"], dict)
        assert {"message_id", "from", "subject", "headers"} <= set(out["original"])


@pytest.mark.parametrize("name", ["maildir/not/is-not-bounce-01.eml"])
def test_a_negative_is_other_with_nothing_reported(name: str) -> None:
    out = classify(raw(name)).as_dict()
    assert out["kind"] == "other"
    assert out["records"] == []
    assert out["complaint"] is None


@pytest.mark.parametrize("data", [b"", b"\x00\xff garbage \r\n\r\n", b"Subject: hello\n\nJust a note.\n"])
def test_junk_is_other(data: bytes) -> None:
    result = classify(data)
    assert result.kind is Kind.OTHER
    assert result.records == ()


def _complaint() -> FeedbackReport:
    # RFC 5965 section 3.1: Feedback-Type "abuse", Original-Rcpt-To names the complained-about address.
    return FeedbackReport(format="arf", feedback_type="abuse", original_rcpt_to=("victim@example.net",))


def _bounce() -> BounceReport:
    delivery = Delivery(recipient="gone@example.org", action="failed", status="5.1.1", reply_code="550",
                        reason=Reason.USERUNKNOWN, hard_bounce=True, diagnostic="550 5.1.1 unknown user",
                        remote_mta="mx.example.org", reporting_mta="mta.example.com", command="RCPT",
                        date="")
    return BounceReport(deliveries=(delivery,), format="rfc3464")


def test_a_complaint_wins_over_a_bounce(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fbl, "parse_mail", lambda mail: _complaint())
    monkeypatch.setattr(bounces, "parse_mail", lambda mail: _bounce())
    result = classify(b"x")
    assert result.kind is Kind.COMPLAINT
    assert [(r.recipient, r.reason, r.feedback_type) for r in result.records] == [
        ("victim@example.net", "feedback", "abuse")]


def test_a_complaint_without_recipients_still_gives_one_record(monkeypatch: pytest.MonkeyPatch) -> None:
    # RFC 6590 lets a reporter redact the recipient; the complaint must still be counted.
    monkeypatch.setattr(fbl, "parse_mail", lambda mail: FeedbackReport(format="arf", feedback_type="fraud"))
    result = classify(b"x")
    assert [(r.recipient, r.feedback_type) for r in result.records] == [("", "fraud")]


def test_a_failing_complaint_parser_leaves_the_bounce_readable(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(mail: Mail) -> FeedbackReport:
        raise RuntimeError("boom")

    monkeypatch.setattr(fbl, "parse_mail", broken)
    monkeypatch.setattr(bounces, "parse_mail", lambda mail: _bounce())
    result = classify(b"x")
    assert result.kind is Kind.BOUNCE
    assert result.records[0].reason == "userunknown"
    assert result.errors == ("fbl.parse failed: RuntimeError: boom",)


def test_failing_parsers_give_other_with_both_errors(monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    def broken(mail: Mail) -> FeedbackReport:
        raise ValueError("bad")

    monkeypatch.setattr(fbl, "parse_mail", broken)
    monkeypatch.setattr(bounces, "parse_mail", broken)
    result = classify(b"x")
    assert result.kind is Kind.OTHER
    assert result.errors == ("fbl.parse failed: ValueError: bad", "bounces.parse failed: ValueError: bad")
    assert "Traceback" in caplog.text


def test_classify_source_puts_reading_errors_first() -> None:
    cut = SourceMessage("a.eml", raw("maildir/bsd/arf-14.eml"), ("the message has 9 bytes; only ...",))
    out = classify_source(cut)
    assert next(iter(out)) == "file"
    assert out["file"] == "a.eml"
    assert out["kind"] == "complaint"
    assert out["errors"] == ["the message has 9 bytes; only ..."]
    unreadable = classify_source(SourceMessage("b.eml", b"", ("could not read the file: Permission denied",)))
    assert unreadable == {"file": "b.eml", "kind": "other", "records": [], "complaint": None,
                          "original": None, "errors": ["could not read the file: Permission denied"]}


def test_nothing_escapes_classify_even_a_broken_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    # ingest.classify is also the name of the function ingest exports: fetch the module itself.
    module = importlib.import_module("ingest.classify")

    def broken(raw: bytes) -> Mail:
        raise RuntimeError("reader bug")

    monkeypatch.setattr(module, "load", broken)
    result = classify(b"x")
    assert result.kind is Kind.OTHER
    assert result.errors == ("classify failed: RuntimeError: reader bug",)
