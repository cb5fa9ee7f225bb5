"""The shortcuts taken for speed (issue 2, section 5) answer exactly as the plain code would.

Each shortcut is compared with the straightforward computation it replaces, on the corpus and on
generated text: the regular expressions searched through str.find first, the status and reply-code
patterns written digit first, the phrase patterns tried only when their literal text is there.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bounces.formats
from bounces import phrases, status
from bounces.formats._lines import ORIGINAL_MARKER, _line_prefix, fillet, line_search
from bounces.formats._text import _ORIGINAL_MARK, _original_mark
from bounces.model import Reason
from rfc822 import load

DATA = Path(__file__).resolve().parent / "data"
BODIES = [load(path.read_bytes()).body for path in sorted((DATA / "corpus" / "emails").rglob("*.eml"))]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def multiline_patterns() -> list[re.Pattern[str]]:
    """Every MULTILINE text pattern of the bounce format modules."""
    found = []
    for info in pkgutil.iter_modules(bounces.formats.__path__):
        module = importlib.import_module(f"bounces.formats.{info.name}")
        found += [value for value in vars(module).values()
                  if isinstance(value, re.Pattern) and isinstance(value.pattern, str) and value.flags & re.M]
    return found


def same_match(a: re.Match[str] | None, b: re.Match[str] | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and a.span() == b.span()
                                         and a.groups() == b.groups())


def test_line_search_is_search_on_the_corpus() -> None:
    patterns = multiline_patterns()
    assert any(_line_prefix(pattern) for pattern in patterns)
    for pattern in patterns:
        for body in BODIES:
            assert same_match(line_search(pattern, body), pattern.search(body)), pattern.pattern


@FUZZ
@given(st.lists(st.sampled_from(["Content-Type: message/rfc822\n", "content-TYPE:  text/rfc822-headers\n",
                                 "\n", "\r\n", "x", " ", "-----", "This is a copy of the message", ">>> ",
                                 "Content-Type: message/rfc822", "Content-type:\tMessage/RFC822 x\n", "é"]),
                max_size=20))
def test_marker_searches_are_the_patterns(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert same_match(_original_mark(text), _ORIGINAL_MARK.search(text))
    assert fillet(text, re.compile(r"^-----", re.M)) == _plain_fillet(text, re.compile(r"^-----", re.M))
    for pattern in multiline_patterns():
        assert same_match(line_search(pattern, text), pattern.search(text)), pattern.pattern


def _plain_fillet(body: str, boundary: re.Pattern[str]) -> tuple[str, str]:
    """_lines.fillet as it reads without the shortcuts."""
    cut = start = len(body)
    for pattern in (boundary, ORIGINAL_MARKER):
        match = pattern.search(body)
        if match and match.start() < cut:
            cut, start = match.start(), match.end()
    return body[:cut], body[start:].lstrip("\n")


# The status and reply-code patterns as written before (lookbehind first), the reference.
_CODE = r"([245])\.(\d{1,3})\.(\d{1,3})(?![\w-]|\.\d)"
REFERENCE = {
    "_IPV4": r"\b(?:\d{1,3}\.){3}\d{1,3}\b",
    "_STATUS_AFTER_REPLY": r"(?<!\d)([245])\d\d[ -]#?" + _CODE,
    "_STATUS_ANY": r"(?<![\w.\-/])" + _CODE,
    "_REPLY_WITH_STATUS": r"(?<![\w.\-])([245][0-5]\d)[ -]#?([245])\.\d{1,3}\.\d{1,3}",
    "_REPLY_ANYWHERE": r"(?<![\w.\-/#])([45][0-5]\d)(?![\w.\-/]|\.\d)",
}
TEXT = st.text(alphabet="0123456789245.-/#:;()<>[]'\" \n\taZé_", max_size=40)


@FUZZ
@given(TEXT)
def test_digit_first_patterns_match_as_before(text: str) -> None:
    for name, reference in REFERENCE.items():
        ours = getattr(status, name)
        assert [(m.span(), m.groups()) for m in ours.finditer(text)] == \
            [(m.span(), m.groups()) for m in re.finditer(reference, text)], name


@FUZZ
@given(st.lists(st.sampled_from(["spf", " fail", "failure", "550 5.1.1 ", "user unknown", "<a@b>",
                                 " does not exist", "x", " ", "procmail: ", "exit 1", "http://", "."]),
                max_size=12))
def test_phrase_anchors_change_no_answer(pieces: list[str]) -> None:
    """A reason's patterns are tried only when one of their literal pieces is in the text."""
    text = "".join(pieces)
    for reason, matcher in phrases._MATCHERS.items():
        literal = any(literal in text for literal in matcher.literals)
        pattern = matcher.pattern is not None and matcher.pattern.search(text) is not None
        assert matcher.search(text) == (literal or pattern), reason


def test_said_answers_as_matches() -> None:
    for text in ["550 5.1.1 user unknown", "mailbox full", "", "spf check failed", "x"]:
        said = phrases.Said(text)
        for reason in Reason:
            assert said(reason) == phrases.matches(reason, text)
        order = tuple(Reason)
        assert said.first(order) == phrases.first_match(order, text)
