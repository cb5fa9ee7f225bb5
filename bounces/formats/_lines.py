"""Line-scanning helpers shared by the text-based bounce format modules.

Most non-standard bounces are read the way Sisimai reads them: split the
flattened body where the returned message begins (``Sisimai::RFC5322->fillet``),
walk the error text line by line from a starting phrase, pick up loose
RFC 3464 fields on the way, and clean the collected text
(``Sisimai::String->sweep``). These are those steps. After Sisimai 4.25
(BSD-2-Clause).
"""

from __future__ import annotations

import re
import re._constants as sre_constants  # type: ignore[import-not-found]  # the re module's own parser
import re._parser as sre_parse  # type: ignore[import-not-found]

from bounces.model import Draft
from rfc822 import Mail, first_address

__all__ = [
    "ORIGINAL_MARKER",
    "DsnField",
    "dsn_field",
    "fillet",
    "line_search",
    "reading",
    "reply_code_for",
    "sweep",
    "unforwarded",
]

# rfc822.Mail marks every MIME-returned original with this line.
ORIGINAL_MARKER = re.compile(r"^Content-Type: message/rfc822\n", re.M)
_MARKER_TEXT = "Content-Type: message/rfc822\n"

_BOUNDARY_TAIL = re.compile(r" -{2,}[^ \t].+$")
_FORWARDED = re.compile(r"^\s*fwd?:\s*", re.I)
# One level of quoting only: the transcript's own ">>> DATA" lines must survive (">>>> DATA").
_QUOTE = re.compile(r"^> ?", re.M)
# RFC 3464 sections 2.2 and 2.3 (and X-Actual-Recipient, which Sendmail writes):
# the fields a format module picks up when they appear among its error lines.
_FIELD = re.compile(
    r"^(Original-Recipient|Final-Recipient|X-Actual-Recipient|Action|Status|Remote-MTA|Reporting-MTA|"
    r"Received-From-MTA|Diagnostic-Code|Last-Attempt-Date|Arrival-Date)[ \t]*:[ \t]*(.*)$",
    re.I,
)
_TYPED = re.compile(r"^([A-Za-z0-9-]+)[ \t]*;[ \t]*(.*)$")
_STATUS = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})")
_ACTIONS = {"deliverable": "delivered", "expired": "delayed", "failure": "failed"}


def fillet(body: str, boundary: re.Pattern[str]) -> tuple[str, str]:
    """Split ``body`` at the first match of ``boundary``: (error text, returned original).

    The MIME marker of a returned message also ends the error text, so a
    bounce whose original is attached instead of quoted is split too.
    """
    cut = len(body)
    start = len(body)
    for match in (line_search(boundary, body), _original_marker(body)):
        if match and match.start() < cut:
            cut, start = match.start(), match.end()
    return body[:cut], body[start:].lstrip("\n")


def _original_marker(body: str) -> re.Match[str] | None:
    """``ORIGINAL_MARKER.search(body)``, found with str.find (much faster than the regular
    expression, which tries every position, and most format modules ask for it)."""
    at = body.find(_MARKER_TEXT)
    while at >= 0:
        if at == 0 or body[at - 1] == "\n":
            return ORIGINAL_MARKER.match(body, at)
        at = body.find(_MARKER_TEXT, at + 1)
    return None


def line_search(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """``pattern.search(text)``, faster for a multi-line pattern that starts with ``^`` and text.

    Such a pattern (a separator line: "^------ This is a copy of the message") makes the regular
    expression engine try every position of a whole body; its matches can only start at a line
    that begins with the pattern's literal text, and str.find finds those.
    """
    prefix = _LINE_PREFIXES.get(pattern)
    if prefix is None:
        prefix = _LINE_PREFIXES[pattern] = _line_prefix(pattern)
    if not prefix:
        return pattern.search(text)
    at = text.find(prefix)
    while at >= 0:
        if at == 0 or text[at - 1] == "\n":
            match = pattern.match(text, at)
            if match is not None:
                return match
        at = text.find(prefix, at + 1)
    return None


# The literal text after "^" of each pattern seen by line_search ('' when it has none): a property
# of the module-level patterns, worked out once.
_LINE_PREFIXES: dict[re.Pattern[str], str] = {}


def _line_prefix(pattern: re.Pattern[str]) -> str:
    """The plain characters that follow a MULTILINE pattern's leading ``^``, or ''."""
    flags = pattern.flags
    if flags & re.IGNORECASE or not flags & re.MULTILINE or not isinstance(pattern.pattern, str):
        return ""
    items = list(sre_parse.parse(pattern.pattern, flags))
    # The parser writes "^" as AT_BEGINNING; MULTILINE makes it a line start when compiled.
    if not items or items[0] != (sre_constants.AT, sre_constants.AT_BEGINNING):
        return ""
    prefix = ""
    for op, argument in items[1:]:
        if op is not sre_constants.LITERAL:
            break
        prefix += chr(argument)
    return prefix


def reading(lines: list[str], start: str | re.Pattern[str]) -> list[str]:
    """The lines after the first one that contains ``start`` (a string or a pattern)."""
    for index, line in enumerate(lines):
        if (line.find(start) >= 0) if isinstance(start, str) else start.search(line):
            return lines[index + 1:]
    return []


def sweep(text: str) -> str:
    """Collapse whitespace and drop a trailing MIME boundary (Sisimai::String->sweep)."""
    text = " ".join(text.split())
    return _BOUNDARY_TAIL.sub("", text)


def unforwarded(mail: Mail) -> tuple[str, str]:
    """Subject and body of a bounce that a person forwarded ("Fwd: ..."), unquoted.

    Sisimai::Message strips "Fwd:" and the ">" quoting before it tries the
    formats, so a forwarded Sendmail bounce still reads as one.
    """
    subject = mail.subject
    match = _FORWARDED.match(subject)
    if not match:
        return subject, mail.body
    return subject[match.end():], _QUOTE.sub("", mail.body)


class DsnField:
    """One RFC 3464 field found on a line: lower-cased name, sub-type and value."""

    __slots__ = ("name", "subtype", "value")

    def __init__(self, name: str, subtype: str, value: str) -> None:
        self.name, self.subtype, self.value = name, subtype, value

    @property
    def per_message(self) -> bool:
        return self.name in ("reporting-mta", "received-from-mta", "arrival-date")

    def apply(self, draft: Draft) -> None:
        """Store the field in ``draft`` (recipients are the caller's business)."""
        name, value = self.name, self.value
        if name == "diagnostic-code":
            draft.diagnostic, draft.spec = value, self.subtype.upper()
        elif name == "status":
            match = _STATUS.match(value)
            if match:
                draft.status = match.group(1)
        elif name == "action":
            word = value.lower().split(" ")[0] if value else ""
            draft.action = _ACTIONS.get(word, word)
        elif name == "remote-mta":
            draft.remote_mta = _host(value)
        elif name in ("reporting-mta", "received-from-mta"):
            if name == "reporting-mta" or not draft.reporting_mta:
                draft.reporting_mta = _host(value)
        elif name in ("last-attempt-date", "arrival-date"):
            if name == "last-attempt-date" or not draft.date:
                draft.date = value
        elif name in ("x-actual-recipient", "original-recipient"):
            draft.alias = first_address(value) or value


def dsn_field(line: str) -> DsnField | None:
    """The RFC 3464 field on ``line`` ("Status: 5.1.1"), or None (Sisimai::RFC1894->field)."""
    match = _FIELD.match(line)
    if not match:
        return None
    name, value = match.group(1).lower(), match.group(2).strip()
    subtype = ""
    typed = _TYPED.match(value)
    if typed and name not in ("status", "action", "last-attempt-date", "arrival-date"):
        subtype, value = typed.group(1), typed.group(2).strip()
    if name.endswith("recipient"):
        value = value.strip("<> ")
    return DsnField(name, subtype, value)


def _host(value: str) -> str:
    return value.strip().split(" ")[0].strip("[]().") if value.strip() else ""


_REPLY_CODE = re.compile(r"(?:^|\s)([245][0-5]\d)[ -]")


def reply_code_for(diagnostic: str, status: str) -> str:
    """The first SMTP reply code in ``diagnostic`` of the same class as ``status``, or ''.

    A transcript holds several replies (a 450 greeting retry, the 550 that
    failed the recipient, a 503 follow-up); the one that matches the status
    class is the one that decided the bounce.
    """
    codes = [m.group(1) for m in _REPLY_CODE.finditer(diagnostic)]
    if not codes:
        return ""
    for code in codes:
        if status and code[0] == status[0]:
            return code
    return codes[0]
