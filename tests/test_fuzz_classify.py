"""Hypothesis: nothing escapes ``classify``, whatever the bytes (issue 2, section 5).

Besides not raising, every answer must be well formed: a known kind, records only for the kinds
that have them, JSON-serialisable output. A parser exception turned into an error entry is
reported by classify as "<parser> failed: ..."; the fuzzer treats that as a bug too, so that a
crash hidden by the safety net still fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import Kind, classify

EMAILS = sorted((Path(__file__).resolve().parent / "data" / "corpus" / "emails").rglob("*.eml"))
SAMPLES = [path.read_bytes() for path in EMAILS]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Byte strings that steer a mutation into the parsers' interesting paths.
TOKENS = [b"\r\n", b"\n\n", b"--", b"Content-Type: multipart/report; boundary=x\n",
          b"Content-Type: message/delivery-status\n", b"Content-Type: message/feedback-report\n",
          b"Content-Transfer-Encoding: base64\n", b"=?utf-8?B?", b"?=", b"Status: 5.1.1\n",
          b"Final-Recipient: rfc822;", b"Feedback-Type: abuse\n", b"\x00", b"\xff\xfe", b">From ", b"<", b">"]


def check(raw: bytes) -> None:
    result = classify(raw)
    assert isinstance(result.kind, Kind)
    out = result.as_dict()
    assert out["kind"] in {"bounce", "complaint", "autoreply", "delivery", "other"}
    if result.kind is Kind.OTHER:
        assert result.records == ()
    else:
        assert result.records, f"kind {result.kind} without records"
    assert (out["complaint"] is not None) == (result.kind is Kind.COMPLAINT)
    crashes = [e for e in result.errors if " failed: " in e]
    assert not crashes, crashes
    json.dumps(out)


@FUZZ
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(raw: bytes) -> None:
    check(raw)


@st.composite
def mutated_samples(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        at = draw(st.integers(min_value=0, max_value=len(data)))
        action = draw(st.sampled_from(["cut", "insert", "token", "flip", "truncate", "crlf"]))
        if action == "cut":
            del data[at:at + draw(st.integers(min_value=1, max_value=400))]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif action == "token":
            data[at:at] = draw(st.sampled_from(TOKENS))
        elif action == "flip" and at < len(data):
            data[at] ^= draw(st.integers(min_value=1, max_value=255))
        elif action == "truncate":
            del data[at:]
        elif action == "crlf":
            data = bytearray(bytes(data).replace(b"\n", b"\r\n"))
    return bytes(data)


@FUZZ
@given(mutated_samples())
def test_mutated_corpus_messages(raw: bytes) -> None:
    check(raw)
