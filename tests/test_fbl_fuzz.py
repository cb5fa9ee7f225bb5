"""fbl.parse never raises: arbitrary bytes, and corpus complaints cut, flipped, spliced and re-encoded.

Beyond not raising, every result must keep the report's invariants: a complaint has a feedback
type, a non-complaint has no type and no recipients, and ``as_dict`` is JSON that can be written
as UTF-8.
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fbl

HERE = Path(__file__).resolve().parent
SAMPLES = sorted(
    [*(HERE / "data" / "corpus" / "emails" / "maildir" / "bsd").glob("arf-*.eml"),
     HERE / "data" / "corpus" / "emails" / "maildir" / "bsd" / "lhost-amazonses-11.eml",
     *(HERE / "data" / "fbl").glob("*.eml")]
)
RAWS = [p.read_bytes() for p in SAMPLES]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(raw: bytes) -> None:
    report = fbl.parse(raw)
    assert isinstance(report, fbl.FeedbackReport)
    if report.is_complaint:
        assert report.feedback_type
    else:
        assert report.feedback_type == "" and report.recipients == ()
    json.dumps(report.as_dict(), ensure_ascii=False).encode("utf-8")


@SETTINGS
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(raw: bytes) -> None:
    _check(raw)


@SETTINGS
@given(st.sampled_from(RAWS), st.floats(0, 1))
def test_truncated_complaints(raw: bytes, where: float) -> None:
    _check(raw[: int(len(raw) * where)])


@SETTINGS
@given(st.sampled_from(RAWS), st.lists(st.tuples(st.floats(0, 1), st.binary(min_size=1, max_size=8)),
                                        min_size=1, max_size=12))
def test_complaints_with_bytes_overwritten(raw: bytes, edits: list[tuple[float, bytes]]) -> None:
    data = bytearray(raw)
    for where, chunk in edits:
        at = int((len(data) - 1) * where)
        data[at : at + len(chunk)] = chunk
    _check(bytes(data))


@SETTINGS
@given(st.sampled_from(RAWS), st.sampled_from(RAWS), st.floats(0, 1), st.floats(0, 1))
def test_complaints_spliced(first: bytes, second: bytes, cut: float, resume: float) -> None:
    _check(first[: int(len(first) * cut)] + second[int(len(second) * resume) :])


@SETTINGS
@given(st.sampled_from(RAWS), st.sampled_from([b"\r\n", b"\r", b"\n\n", b"\n ", b"\x00", b"\n--"]))
def test_complaints_with_line_ends_mangled(raw: bytes, line_end: bytes) -> None:
    _check(raw.replace(b"\n", line_end))


@SETTINGS
@given(st.sampled_from(RAWS), st.sampled_from(["utf-16", "latin-1", "cp1252", "utf-8-sig"]))
def test_complaints_reencoded(raw: bytes, codec: str) -> None:
    _check(raw.decode("latin-1").encode(codec, "replace"))


@SETTINGS
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(st.sampled_from(["notificationType", "eventType", "complaint",
                                                       "complainedRecipients", "emailAddress", "mail",
                                                       "headers", "name", "value", "Message", "sourceIp"]),
                                      children, max_size=5),
                    max_leaves=30))
def test_ses_shaped_json(value: object) -> None:
    _check(json.dumps(value).encode())
    _check(json.dumps({"notificationType": "Complaint", "complaint": value, "mail": value}).encode())
