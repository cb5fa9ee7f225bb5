"""policy.codec: the Postfix policy delegation and Exim one-line formats, fed in every chunk size.

The Postfix example request is the one of SMTPD_POLICY_README ("Protocol description"); the
framing rules (name=value lines, a request ends at an empty line, answer ``action=...`` plus an
empty line) come from the same page.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy.codec import (
    AttributeLimit,
    Decoder,
    Dialect,
    Limits,
    LineTooLong,
    MalformedRequest,
    ProtocolError,
    RequestTooLarge,
    encode_answer,
    encode_request,
)

DATA = Path(__file__).parent / "data" / "policy"
README_REQUEST = (DATA / "postfix-request.txt").read_bytes()
CHUNKS = (1, 16, 128, 4096)
SMALL = Limits(max_line_bytes=64, max_attributes=4, max_request_bytes=100)


def decode(data: bytes, chunk: int, limits: Limits | None = None) -> list[tuple[Dialect, dict[str, str]]]:
    decoder = Decoder(limits)
    out = []
    for start in range(0, len(data), chunk):
        out += [(r.dialect, dict(r.attributes)) for r in decoder.feed(data[start:start + chunk])]
    return out


# (name, bytes, expected requests) -- expected values written from the protocol description.
CASES = [
    ("postfix minimal", b"request=smtpd_access_policy\nsasl_username=you\n\n",
     [(Dialect.POSTFIX, {"request": "smtpd_access_policy", "sasl_username": "you"})]),
    ("postfix two requests on one connection",
     b"request=smtpd_access_policy\nrecipient=a@b\n\nrequest=smtpd_access_policy\nrecipient=c@d\n\n",
     [(Dialect.POSTFIX, {"request": "smtpd_access_policy", "recipient": "a@b"}),
      (Dialect.POSTFIX, {"request": "smtpd_access_policy", "recipient": "c@d"})]),
    ("postfix empty value and '=' inside a value", b"request=x\nsasl_sender=\nccert_issuer=a=b\n\n",
     [(Dialect.POSTFIX, {"request": "x", "sasl_sender": "", "ccert_issuer": "a=b"})]),
    ("postfix CRLF line ends are tolerated", b"request=x\r\nsender=a@b\r\n\r\n",
     [(Dialect.POSTFIX, {"request": "x", "sender": "a@b"})]),
    ("postfix incomplete request yields nothing yet", b"request=x\nsender=a@b\n", []),
    ("postfix UTF-8 sender (SMTPUTF8)", "request=x\nsender=jöe@exämple.de\n\n".encode(),
     [(Dialect.POSTFIX, {"request": "x", "sender": "jöe@exämple.de"})]),
    ("postfix undecodable bytes become U+FFFD", b"request=x\nsender=a\xffb\n\n",
     [(Dialect.POSTFIX, {"request": "x", "sender": "a\ufffdb"})]),
    ("exim one line", b"sasl_username=alice@example.com sender=a@example.com recipient_count=3\n",
     [(Dialect.EXIM, {"sasl_username": "alice@example.com", "sender": "a@example.com",
                      "recipient_count": "3"})]),
    ("exim tabs, runs of spaces, empty sender", b"sender=\t\tclient_address=10.0.0.1   instance=1Abc-00\n",
     [(Dialect.EXIM, {"sender": "", "client_address": "10.0.0.1", "instance": "1Abc-00"})]),
    ("exim two lines", b"sasl_username=a\nsasl_username=b\n",
     [(Dialect.EXIM, {"sasl_username": "a"}), (Dialect.EXIM, {"sasl_username": "b"})]),
]


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize(("name", "data", "expected"), CASES, ids=[c[0] for c in CASES])
def test_decode(name: str, data: bytes, expected: list, chunk: int) -> None:
    assert decode(data, chunk) == expected


@pytest.mark.parametrize("chunk", CHUNKS)
def test_readme_request(chunk: int) -> None:
    [(dialect, attrs)] = decode(README_REQUEST, chunk)
    assert dialect is Dialect.POSTFIX
    assert len(attrs) == 31
    assert attrs["protocol_state"] == "RCPT"
    assert attrs["sasl_username"] == "you"
    assert attrs["instance"] == "123.456.7"
    assert attrs["ccert_fingerprint"] == "C2:9D:F4:87:71:73:73:D9:18:E7:C2:F3:C1:DA:6E:04"
    assert attrs["etrn_domain"] == ""


ERRORS = [
    ("over-long line", b"request=x\nsender=" + b"a" * 100 + b"\n\n", LineTooLong),
    ("over-long unterminated line", b"request=x\nsender=" + b"a" * 100, LineTooLong),
    ("too many attributes", b"request=x\n" + b"".join(b"a%d=1\n" % i for i in range(10)) + b"\n",
     AttributeLimit),
    ("the same attribute a million times", b"request=x\n" + b"a=1\n" * 1_000_000, MalformedRequest),
    ("request too large", b"request=x\n" + b"a=" + b"b" * 50 + b"\nc=" + b"d" * 50 + b"\n\n",
     RequestTooLarge),
    ("postfix line without '='", b"request=x\ngarbage\n\n", MalformedRequest),
    ("postfix empty request", b"request=x\n\n\n", MalformedRequest),
    ("garbage first line", b"GET / HTTP/1.1\n", MalformedRequest),
    ("binary garbage", b"\x00\x01\x02=\xff\n", MalformedRequest),
    ("exim empty line", b"\n", MalformedRequest),
    ("exim too many tokens", b" ".join(b"a%d=1" % i for i in range(10)) + b"\n", AttributeLimit),
]


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize(("name", "data", "error"), ERRORS, ids=[c[0] for c in ERRORS])
def test_decode_errors(name: str, data: bytes, error: type[ProtocolError], chunk: int) -> None:
    with pytest.raises(error):
        decode(data, chunk, SMALL)


def test_dialect_is_fixed_by_the_first_line() -> None:
    decoder = Decoder()
    assert decoder.dialect is None
    decoder.feed(b"sasl_username=a\n")
    assert decoder.dialect is Dialect.EXIM
    # A forced dialect wins over detection.
    forced = Decoder(dialect=Dialect.POSTFIX)
    [request] = forced.feed(b"sasl_username=a\n\n")
    assert request.dialect is Dialect.POSTFIX


@pytest.mark.parametrize(("action", "dialect", "wire"), [
    ("DUNNO", Dialect.POSTFIX, b"action=DUNNO\n\n"),
    ("DEFER_IF_PERMIT 4.7.1 Paused", Dialect.POSTFIX, b"action=DEFER_IF_PERMIT 4.7.1 Paused\n\n"),
    ("REJECT 5.7.1 Blocked", Dialect.EXIM, b"action=REJECT 5.7.1 Blocked\n"),
    # A reply is one ASCII line (RFC 5321 section 4.2): line breaks fold, non-ASCII becomes '?'.
    ("HOLD a\nb\r\nc", Dialect.POSTFIX, b"action=HOLD a b c\n\n"),
    ("HOLD café", Dialect.POSTFIX, b"action=HOLD caf?\n\n"),
])
def test_encode_answer(action: str, dialect: Dialect, wire: bytes) -> None:
    assert encode_answer(action, dialect) == wire


def test_encode_answer_is_bounded() -> None:
    assert len(encode_answer("DEFER_IF_PERMIT " + "x" * 5000, Dialect.POSTFIX)) < 512


@pytest.mark.parametrize(("attrs", "dialect"), [
    ({"sender": "a\nb"}, Dialect.POSTFIX),
    ({"sender": "a b"}, Dialect.EXIM),
    ({"bad name": "x"}, Dialect.POSTFIX),
    ({"": "x"}, Dialect.EXIM),
])
def test_encode_request_refuses_what_cannot_be_carried(attrs: dict[str, str], dialect: Dialect) -> None:
    with pytest.raises(ValueError):
        encode_request(attrs, dialect)


names = st.builds(str.__add__, st.sampled_from("abcdefghijklmnopqrstuvwxyz"),
                  st.text("abcdefghijklmnopqrstuvwxyz0123456789_", max_size=20))
postfix_values = st.text(st.characters(exclude_characters="\r\n", codec="utf-8"),
                         max_size=30)
exim_values = st.text(st.characters(exclude_characters=" \t\r\n\x0b\x0c", codec="utf-8"),
                      max_size=30)


@given(st.lists(st.dictionaries(names, postfix_values, min_size=1, max_size=6), min_size=1, max_size=4),
       st.sampled_from(CHUNKS))
def test_postfix_round_trip(requests: list[dict[str, str]], chunk: int) -> None:
    requests = [{"request": "smtpd_access_policy", **r} for r in requests]
    wire = b"".join(encode_request(r, Dialect.POSTFIX) for r in requests)
    assert decode(wire, chunk) == [(Dialect.POSTFIX, r) for r in requests]


@given(st.lists(st.dictionaries(names.filter(lambda n: n != "request"), exim_values, min_size=1,
                                max_size=6), min_size=1, max_size=4),
       st.sampled_from(CHUNKS))
def test_exim_round_trip(requests: list[dict[str, str]], chunk: int) -> None:
    wire = b"".join(encode_request(r, Dialect.EXIM) for r in requests)
    assert decode(wire, chunk) == [(Dialect.EXIM, r) for r in requests]


@given(st.binary(max_size=2000), st.sampled_from(CHUNKS))
def test_arbitrary_bytes_raise_only_protocol_errors(data: bytes, chunk: int) -> None:
    with contextlib.suppress(ProtocolError):
        decode(data, chunk, SMALL)


@given(st.lists(st.sampled_from([b"request=x\n", b"a=1\n", b"\n", b"=\n", b"b=\xff\xfe\n", b"\r\n",
                                 b"x" * 70, b"c=d e=f\n", b"\x00"]), max_size=40),
       st.sampled_from(CHUNKS))
def test_structured_garbage_raises_only_protocol_errors(parts: list[bytes], chunk: int) -> None:
    try:
        requests = decode(b"".join(parts), chunk, SMALL)
    except ProtocolError:
        return
    # Whatever was accepted respects the limits.
    assert all(len(attrs) <= SMALL.max_attributes for _, attrs in requests)
