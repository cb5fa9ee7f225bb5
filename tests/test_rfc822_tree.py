"""rfc822.tree builds exactly the tree that the stdlib's feed parser builds (compat32).

The expected value of every test is ``email.parser.BytesParser(policy=compat32).parsebytes``
itself: the fast builder must agree with it on headers, payloads, preambles, epilogues,
default types and defects, for the corpus, for mutated corpus messages and for messages put
together from the pieces that steer the feed parser into its special cases (RFC 2046 boundaries,
closing boundaries, boundaries repeated or missing, multipart/digest, message/delivery-status
field blocks, envelope "From " lines, headers without a blank line after them, CRLF and lone CR).
"""

from __future__ import annotations

from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfc822.mail import content_charset
from rfc822.tree import _TreeBuilder, header_items, parse_bytes, parse_tree

DATA = Path(__file__).resolve().parent / "data"
SAMPLES = [path.read_bytes() for path in sorted((DATA / "corpus" / "emails").rglob("*.eml"))]
STDLIB = BytesParser(policy=compat32)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PIECES = [
    b"A: 1\n", b"B: 2\r\n", b" folded\n", b"\tfolded\r\n", b"\n", b"\r\n", b"body text\n", b"x", b"\r",
    b"From me\n", b":no name\n", b"--a\n", b"--a--\n", b"--a \t\n", b"--a--", b"--b\r\n", b"--b--\r\n",
    b"--a.b*\n", b"Content-Type: multipart/mixed; boundary=a\n",
    b'Content-Type: multipart/alternative; boundary="b"\r\n', b"Content-Type: multipart/digest; boundary=b\n",
    b'Content-Type: multipart/mixed; boundary="a.b*"\n', b"Content-Type: multipart/report\n",
    b"Content-Type: message/rfc822\n", b"Content-Type: message/delivery-status\n",
    b"Content-Type: text/plain\n", b"Content-Transfer-Encoding: base64\n", b"Status: 5.1.1\n",
    b"Subject: \xe9t\xe9\n", b"Content-Type: text/plain; charset=\xff\n",
]


def dump(message: Message) -> dict[str, object]:
    """Everything the feed parser sets on a message, recursively."""
    parts = message.get_payload()
    # A leaf's raw payload: get_payload() would decode 8-bit text.
    raw = message._payload  # type: ignore[attr-defined]
    payload = [dump(part) for part in parts if isinstance(part, Message)] if isinstance(parts, list) else raw
    return {
        "unixfrom": message.get_unixfrom(),
        "headers": list(message._headers),  # type: ignore[attr-defined]
        "preamble": message.preamble,
        "epilogue": message.epilogue,
        "defects": [(type(defect).__name__, defect.args) for defect in message.defects],
        "default_type": message.get_default_type(),
        "payload": payload,
    }


def same_tree(raw: bytes) -> None:
    message, types = parse_tree(raw)
    assert dump(message) == dump(STDLIB.parsebytes(raw))
    if types:  # the fast path: the content types it noted are the parts' own
        for part in message.walk():
            assert types[id(part)] == part.get_content_type()


def test_corpus_messages_give_the_stdlib_tree() -> None:
    assert SAMPLES
    for raw in SAMPLES:
        same_tree(raw)


def test_corpus_messages_take_the_fast_path() -> None:
    """No corpus message needs the feed parser: otherwise the speed-up would be lost silently."""
    for raw in SAMPLES:
        text = raw.decode("ascii", "surrogateescape")
        if "\r" not in text or text.count("\r") == text.count("\r\n"):
            _TreeBuilder(text).root()  # raises _Fallback (or worse) if it cannot


def test_header_items_are_message_items() -> None:
    raw = b"Subject: caf\xc3\xa9\nX-Ascii: plain\nX-Folded: a\n b\n\nbody\n"
    message = parse_bytes(raw)
    assert [(name, str(value)) for name, value in header_items(message)] == \
        [(name, str(value)) for name, value in message.items()]


def test_feed_parser_special_cases() -> None:
    cases = [
        b"",
        b"no header at all\n",
        b"A: 1\nnot a header\nbody\n",
        b"From sender Mon Jan  1 00:00:00 2024\nA: 1\n\nbody\n",
        b"A: 1\nFrom x\n\nbody\n",  # an envelope line last in the header block: the feed parser's way
        b"A: 1\r\nB: 2\r\n\r\nbody\r\n",
        b"A: 1\rB: 2\r\rbody\r",  # lone CRs
        b"Content-Type: multipart/mixed; boundary=a\n\npre\n--a\n\none\n--a\nB: 2\n\ntwo\n--a--\nepi\n",
        b"Content-Type: multipart/mixed; boundary=a\n\n--a--\nclosed first\n",
        b"Content-Type: multipart/mixed; boundary=a\n\nno boundary at all\n",
        b"Content-Type: multipart/mixed; boundary=a\n\n--a\n\nnever closed\n",
        b"Content-Type: multipart/mixed; boundary=a\n\n--a\n--a\n--a--\n\nafter repeats\n--a--",
        b"Content-Type: multipart/mixed\n\nno boundary parameter\n",
        b"Content-Type: multipart/mixed; boundary=a\nContent-Transfer-Encoding: base64\n\n--a\n\nx\n--a--\n",
        b"Content-Type: multipart/digest; boundary=d\n\n--d\n\nA: 1\n\ndigest entry\n--d--\n",
        b"Content-Type: message/delivery-status\n\nA: 1\n\n\nB: 2\nC: 3\n\n",
        b"Content-Type: message/rfc822\n\nA: 1\n\ninner body\n",
        b"Content-Type: multipart/mixed; boundary=a\n\n--a\n"
        b"Content-Type: multipart/alternative; boundary=a\n\n--a\n\nsame boundary inside\n--a--\n",
        b'Content-Type: multipart/mixed; boundary="a\n folded"\n\n--a\n\nx\n--a--\n',
    ]
    for raw in cases:
        same_tree(raw)


@FUZZ
@given(st.lists(st.sampled_from(PIECES), max_size=40))
def test_pieced_messages(pieces: list[bytes]) -> None:
    same_tree(b"".join(pieces))


@st.composite
def mutated_samples(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        at = draw(st.integers(min_value=0, max_value=len(data)))
        action = draw(st.sampled_from(["cut", "piece", "boundary", "truncate", "crlf"]))
        if action == "cut":
            del data[at:at + draw(st.integers(min_value=1, max_value=200))]
        elif action == "piece":
            data[at:at] = draw(st.sampled_from(PIECES))
        elif action == "boundary":
            # A copy of one of the message's own boundary lines, opening or closing.
            lines = [line for line in bytes(data).split(b"\n") if line.startswith(b"--")]
            if lines:
                line = draw(st.sampled_from(lines)).rstrip(b"\r")
                data[at:at] = line + draw(st.sampled_from([b"\n", b"--\n", b" \n", b""]))
        elif action == "truncate":
            del data[at:]
        else:
            data[:] = bytes(data).replace(b"\n", b"\r\n")
    return bytes(data)


@FUZZ
@given(mutated_samples())
def test_mutated_corpus_messages(raw: bytes) -> None:
    same_tree(raw)


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes(raw: bytes) -> None:
    same_tree(raw)


@FUZZ
@given(st.lists(st.sampled_from(["text/plain", ";", " ", "\t", "charset", "CharSet", "=", "utf-8", "\"", "<",
                                 ">", "*", "0", "\\", "x-y", "\r\n ", "format=flowed", "é"]), max_size=12))
def test_content_charset_is_the_stdlib_one(pieces: list[str]) -> None:
    """rfc822.mail.content_charset (a shortcut for plain values) answers as get_content_charset."""
    message = Message()
    message["Content-Type"] = "".join(pieces)
    assert content_charset(message) == message.get_content_charset()


def test_content_charset_of_corpus_parts() -> None:
    for raw in SAMPLES:
        for part in parse_bytes(raw).walk():
            assert content_charset(part) == part.get_content_charset()
