"""The original message that a bounce or complaint returns."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from rfc822.text import decode_header_value, header_fields
from rfc822.tree import header_items

__all__ = ["OriginalMessage", "original_from_message", "original_from_text"]

_QUOTE = re.compile(r"^(?:>+ ?)", re.M)
_FIELD_START = re.compile(r"^[A-Za-z][A-Za-z0-9-]*:")


@dataclass(frozen=True)
class OriginalMessage:
    """Header fields of the returned original, in order, values decoded."""

    headers: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str:
        """The first value of header ``name`` (case-insensitive), or ''."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return ""

    def get_all(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in order."""
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    @property
    def message_id(self) -> str:
        return self.get("Message-ID")

    @property
    def from_(self) -> str:
        return self.get("From")

    @property
    def to(self) -> str:
        return self.get("To")

    @property
    def subject(self) -> str:
        return self.get("Subject")

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form: the common fields and every header (repeated ones as lists)."""
        headers: dict[str, object] = {}
        for key, value in self.headers:
            if key in headers:
                previous = headers[key]
                headers[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
            else:
                headers[key] = value
        return {"message_id": self.message_id, "from": self.from_, "subject": self.subject,
                "headers": headers}


def original_from_message(message: Message) -> OriginalMessage:
    """Headers of an already parsed message."""
    return OriginalMessage(tuple((k, decode_header_value(v)) for k, v in header_items(message)))


def original_from_text(text: str) -> OriginalMessage | None:
    """Headers of a returned message given as text (quoted with '>' or not).

    Leading prose before the first header line is skipped; the header block
    ends at the first blank line after it. None when no header is found.
    """
    text = text.replace("\r\n", "\n")
    if ">" in text[:200]:
        text = _QUOTE.sub("", text)
    lines = text.split("\n")
    start = 0
    while start < len(lines) and not _FIELD_START.match(lines[start]):
        start += 1
        if start > 50:
            return None
    end = start
    while end < len(lines) and lines[end].strip():
        end += 1
    fields = header_fields("\n".join(lines[start:end]))
    if not fields:
        return None
    return OriginalMessage(tuple((k, decode_header_value(v)) for k, v in fields))
