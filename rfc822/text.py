"""Small text helpers for header values and addresses."""

from __future__ import annotations

import re
from email.errors import HeaderParseError
from email.header import decode_header

__all__ = ["bare_message_id", "decode_header_value", "find_addresses", "first_address", "header_fields"]

# An addr-spec good enough to find addresses in diagnostic prose: local@domain,
# optionally inside <...>. Quoted local parts are rare in bounces.
_ADDRESS = re.compile(
    r"<?([A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?"
    r"|[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@\[[0-9.:a-fA-F]+\])>?"
)
_FIELD = re.compile(r"^([!-9;-~]+):[ \t]*(.*)$")
_FOLDING = re.compile(r"[\r\n\t]+\s*")


def decode_header_value(value: object) -> str:
    """Return a header value as text: RFC 2047 words decoded, folding removed."""
    if value is None:
        return ""
    text = str(value)
    if "=?" in text:
        try:
            parts = []
            for chunk, charset in decode_header(text):
                if isinstance(chunk, bytes):
                    parts.append(_decode_bytes(chunk, charset))
                else:
                    parts.append(chunk)
            text = "".join(parts)
        except (ValueError, LookupError, AssertionError, HeaderParseError):
            pass
    if "\n" in text or "\r" in text or "\t" in text:
        text = _FOLDING.sub(" ", text)
    return text.strip()


def _decode_bytes(data: bytes, charset: str | None) -> str:
    for name in (charset, "utf-8", "latin-1"):
        if not name:
            continue
        try:
            return data.decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")


def find_addresses(text: str) -> list[str]:
    """Every e-mail address in ``text``, in order, without angle brackets, deduplicated."""
    seen: list[str] = []
    for match in _ADDRESS.finditer(text):
        address = match.group(1).strip(".")
        if "@" in address and address not in seen:
            seen.append(address)
    return seen


def first_address(text: str) -> str:
    """The first e-mail address in ``text``, or ''."""
    match = _ADDRESS.search(text)
    return match.group(1).strip(".") if match else ""


def header_fields(block: str) -> list[tuple[str, str]]:
    """Parse a block of ``Name: value`` lines (folded lines joined) into pairs.

    Lines that are neither a field nor a continuation are skipped, so a
    quoted header block with stray prose still yields its fields.
    """
    fields: list[tuple[str, str]] = []
    for line in block.split("\n"):
        if not line.strip():
            continue
        if line[0] in " \t":
            if fields:
                name, value = fields[-1]
                fields[-1] = (name, (value + " " + line.strip()).strip())
            continue
        match = _FIELD.match(line)
        if match:
            fields.append((match.group(1), match.group(2).strip()))
    return fields


_BRACKETED_ID = re.compile(r"<([^<>\s]+)>")


def bare_message_id(value: str) -> str:
    """A Message-ID without its angle brackets: the first ``<...>``, else the trimmed text.

    RFC 5322 (section 3.6.4) writes it ``<left@right>``; reports and logs quote it with or without
    the brackets, folded, or followed by a comment. The message ledger is keyed this way.
    """
    found = _BRACKETED_ID.search(value)
    return found.group(1) if found else value.strip().strip("<>").strip()
