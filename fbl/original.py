"""Finding the reported message in a complaint: an attached copy, its headers, or an inline copy.

RFC 5965 section 2 puts the reported message (or only its header, as
``text/rfc822-headers``, which RFC 6591 section 3 recommends) in the third
part of the report. Generators get this wrong in several ways that this
module tolerates: a transfer-encoded ``message/rfc822`` part (forbidden by
RFC 2046 section 5.2.1 but seen from webmail FBLs), a third part that is
missing or truncated, and a copy pasted into the text part instead.
"""

from __future__ import annotations

import re
from email.message import Message

from rfc822 import OriginalMessage, original_from_message, original_from_text

__all__ = ["ORIGINAL_TYPES", "decode_part", "decode_text", "inline_original", "original_of_part"]

ORIGINAL_TYPES = frozenset(
    {"message/rfc822", "text/rfc822-headers", "message/rfc822-headers", "text/rfc822",
     "message/global", "message/global-headers"}
)
# Header names that start the header block of a pasted copy of a message.
_HEADER_START = re.compile(
    r"^(?:>+ ?)?(?:Return-Path|Received|From|To|Subject|Date|Message-I[Dd]|MIME-Version|"
    r"DKIM-Signature|Delivered-To|X-[A-Za-z0-9-]+):", re.I
)
# At least two of these make a header block a message's header, not prose
# that happens to contain "Note: ..." lines.
_TELLING = frozenset({"received", "from", "to", "subject", "date", "message-id", "return-path"})
_MAX_SCAN_LINES = 400


def decode_part(part: Message) -> str:
    """A leaf part's text: transfer encoding undone, then its charset, UTF-8 or Latin-1."""
    try:
        data = part.get_payload(decode=True)
    except (ValueError, TypeError, LookupError):
        data = None
    if not isinstance(data, bytes):
        payload = part.get_payload()
        return payload if isinstance(payload, str) else ""
    charset = part.get_content_charset() or "utf-8"
    for name in (charset, "utf-8"):
        try:
            return data.decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")


def original_of_part(part: Message) -> OriginalMessage | None:
    """The headers of a ``message/rfc822``-like part, or None when it holds no header."""
    payload = part.get_payload()
    encoded = str(part.get("Content-Transfer-Encoding", "")).strip().lower() in ("base64", "quoted-printable")
    if isinstance(payload, list):
        inner = payload[0] if payload and isinstance(payload[0], Message) else None
        if inner is None:
            return None
        if inner.keys() and not encoded:
            found = original_from_message(inner)
            return found if _telling(found) else None
        # An encoded message/rfc822 part: the email package took the encoded
        # text for a body without headers. Decode it and read it again.
        body = inner.get_payload()
        return _from_text(decode_text(body if isinstance(body, str) else "", part))
    return _from_text(decode_part(part))


def decode_text(text: str, part: Message) -> str:
    """``text`` decoded with ``part``'s transfer encoding (for bodies the email package left encoded)."""
    helper = Message()
    helper["Content-Transfer-Encoding"] = str(part.get("Content-Transfer-Encoding", "8bit"))
    helper.set_payload(text)
    return decode_part(helper)


def _from_text(text: str) -> OriginalMessage | None:
    found = original_from_text(text)
    return found if found is not None and _telling(found) else None


def _telling(original: OriginalMessage) -> bool:
    names = {name.lower() for name, _ in original.headers}
    return len(names & _TELLING) >= 2 or (len(names & _TELLING) == 1 and len(original.headers) >= 3)


def inline_original(text: str) -> OriginalMessage | None:
    """The header of a message pasted into ``text`` (quoted with '>' or not), or None.

    A block counts only when it has at least three fields, two of them ones
    every message has (Received, From, To, Subject, Date, Message-ID,
    Return-Path), so that prose is not taken for a header.
    """
    lines = text.replace("\r\n", "\n").split("\n")[:_MAX_SCAN_LINES]
    index = 0
    while index < len(lines):
        if _HEADER_START.match(lines[index]):
            found = original_from_text("\n".join(lines[index:]))
            if found is not None:
                names = {name.lower() for name, _ in found.headers}
                if len(found.headers) >= 3 and len(names & _TELLING) >= 2:
                    return found
            # Skip the rest of this block before looking again.
            while index < len(lines) and lines[index].strip():
                index += 1
        index += 1
    return None
