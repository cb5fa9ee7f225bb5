"""A raw message read once into what every parser needs.

``Mail.body`` is the message flattened to text the way bounce parsers have
always read it (Sisimai's ``Sisimai::MIME->makeflat``): text parts decoded,
HTML reduced to text when there is no plain part, and every
``message/delivery-status``, ``message/feedback-report`` and returned message
kept as text after a ``Content-Type: <type>`` marker line. The markers let a
format module find where the returned original starts without walking MIME.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from functools import cached_property

from rfc822.text import decode_header_value
from rfc822.tree import header_items, parse_tree

__all__ = ["MAX_PART_TEXT", "Mail", "content_charset", "load"]

# A returned original or a text part longer than this is cut: nothing that
# identifies a bounce or its sender lies past the first half megabyte.
MAX_PART_TEXT = 512 * 1024

_MARKER = re.compile(r"^Content-Type: message/[a-z0-9-]+\n", re.M)
_MARKER_START = "Content-Type: message/"
_TAG = re.compile(r"<[^>]*>")
_BLANKS = re.compile(r"\n\n\n+")  # = \n{3,}, written so that the engine searches for the literal
# Every byte outside the base64 alphabet (RFC 2045 section 6.8 says to ignore them), deleted
# with bytes.translate rather than a regular expression: attachments can be large.
_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_NOT_BASE64 = bytes(sorted(set(range(256)) - set(_BASE64_ALPHABET)))
_ENTITIES = {"&nbsp;": " ", "&lt;": "<", "&gt;": ">", "&amp;": "&", "&quot;": '"', "&#39;": "'"}
# Exchange sometimes writes a multipart Content-Type with its boundary parameter
# on a continuation line that is not indented (lhost-office365 samples); indent
# it so that the parameter stays part of the field.
_UNFOLDED_BOUNDARY = re.compile(rb"(?im)^(content-type:[ \t]*multipart/[^\r\n]*;[ \t]*\r?\n)(boundary=)")
_ADDRESS_FIELDS = frozenset({"final-recipient", "original-recipient", "x-actual-recipient"})
_JAPANESE = frozenset({"iso-2022-jp", "euc-jp", "shift-jis", "sjis", "cp932", "x-sjis", "windows-31j"})
_ORIGINAL_TYPES = frozenset(
    {"message/rfc822", "text/rfc822-headers", "message/rfc822-headers", "message/partial",
     "message/global", "message/global-headers", "text/rfc822"}
)
_REPORT_TYPES = frozenset(
    {"message/delivery-status", "message/global-delivery-status", "message/x-delivery-status",
     "message/feedback-report", "message/disposition-notification"}
)


@dataclass
class Mail:
    """A parsed raw message with lazily computed views."""

    raw: bytes
    message: Message
    errors: list[str] = field(default_factory=list)
    _header_cache: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    _headers_cache: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)
    _types: dict[int, str] = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def _index(self) -> dict[str, list[object]]:
        """Raw header values by lower-cased name, built in one pass: format modules
        look up dozens of headers per message, and Message.get scans them all each time."""
        index: dict[str, list[object]] = {}
        for name, value in header_items(self.message):
            index.setdefault(name.lower(), []).append(value)
        return index

    def has_header(self, name: str) -> bool:
        """Whether the message has a ``name`` header at all."""
        return name.lower() in self._index

    def header(self, name: str) -> str:
        """The first ``name`` header, decoded and unfolded, or ''."""
        cached = self._header_cache.get(name)  # by the name as asked: format modules ask dozens of times
        if cached is None:
            values = self._index.get(name.lower())
            cached = decode_header_value(values[0]) if values else ""
            self._header_cache[name] = cached
        return cached

    def headers(self, name: str) -> list[str]:
        """Every ``name`` header, decoded and unfolded."""
        key = name.lower()
        cached = self._headers_cache.get(key)
        if cached is None:
            cached = tuple(decode_header_value(v) for v in self._index.get(key, ()))
            self._headers_cache[key] = cached
        return list(cached)

    def type_of(self, part: Message) -> str:
        """``part.get_content_type()`` of a part of this message, worked out once per part."""
        key = id(part)  # the parts live as long as the message, so their ids stay theirs
        found = self._types.get(key)
        if found is None:
            found = self._types[key] = part.get_content_type()
        return found

    @cached_property
    def subject(self) -> str:
        return self.header("Subject")

    @cached_property
    def sender(self) -> str:
        """The From header, lower-cased, for format detection."""
        return self.header("From").lower()

    @cached_property
    def content_type(self) -> str:
        return self.type_of(self.message)

    @cached_property
    def body(self) -> str:
        """The flattened text of the body (see the module docstring)."""
        chunks: list[str] = []
        try:
            _flatten(self.message, chunks, self.errors, self.type_of)
        except Exception as exc:  # noqa: BLE001 - the email package raises many types on junk
            self.errors.append(f"could not read the MIME structure: {exc}")
            chunks = [_payload_text(self.message, self.errors)]
        text = "\n".join(c if c.endswith("\n") else c + "\n" for c in chunks)
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        return _BLANKS.sub("\n\n", text) if "\n\n\n" in text else text

    @cached_property
    def lines(self) -> list[str]:
        return self.body.split("\n")

    @cached_property
    def text(self) -> str:
        """The human-readable part of the body: ``body`` before the first report or original."""
        match = _next_marker(self.body, 0)
        return self.body[: match.start()] if match else self.body

    def section(self, ctype: str) -> str:
        """The flattened text of the first ``ctype`` part (as marked in ``body``), or ''.

        ``ctype`` is a report type such as ``message/delivery-status`` or
        ``message/rfc822`` (every returned original is marked so). A report
        ends at the next marker; a returned original runs to the end.
        """
        marker = f"Content-Type: {ctype}\n"
        start = self.body.find(marker)
        if start < 0 or (start and self.body[start - 1] != "\n"):
            return ""
        start += len(marker)
        if ctype == "message/rfc822":
            return self.body[start:].lstrip("\n")
        match = _next_marker(self.body, start)
        return self.body[start: match.start() if match else len(self.body)].lstrip("\n")

    def parts(self) -> Iterator[Message]:
        """Every MIME part, depth first, without descending into returned messages."""
        stack = [self.message]
        while stack:
            part = stack.pop()
            yield part
            if part.is_multipart() and not self.type_of(part).startswith("message/"):
                payload = part.get_payload()
                if isinstance(payload, list):
                    stack.extend(p for p in reversed(payload) if isinstance(p, Message))

    def find_part(self, *types: str) -> Message | None:
        """The first part whose content type is one of ``types``."""
        for part in self.parts():
            if self.type_of(part) in types:
                return part
        return None


def _next_marker(body: str, start: int) -> re.Match[str] | None:
    """``_MARKER.search(body, start)``, found with str.find: the regular expression would try every
    position of the body, and bounce format modules ask for the markers on every message."""
    at = body.find(_MARKER_START, start)
    while at >= 0:
        if at == 0 or body[at - 1] == "\n":
            match = _MARKER.match(body, at)
            if match is not None:
                return match
        at = body.find(_MARKER_START, at + 1)
    return None


def load(raw: bytes | str) -> Mail:
    """Read a raw message. Never raises: an unreadable one comes back with errors."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    errors: list[str] = []
    if not raw.strip():
        errors.append("the message is empty")
    if b"\nboundary=" in raw or b"\nBoundary=" in raw:
        raw = _UNFOLDED_BOUNDARY.sub(rb"\1 \2", raw)
    types: dict[int, str] = {}
    try:
        message, types = parse_tree(raw)
    except Exception as exc:  # noqa: BLE001
        errors.append(f"could not parse the message: {exc}")
        message = Message()
        message.set_payload(raw.decode("latin-1"))
    for defect in getattr(message, "defects", [])[:5]:
        errors.append(f"MIME defect: {type(defect).__name__}")
    return Mail(raw=raw, message=message, errors=errors, _types=types)


def _flatten(part: Message, out: list[str], errors: list[str], type_of: Callable[[Message], str]) -> None:
    ctype = type_of(part)
    if ctype in _REPORT_TYPES:
        out.append(f"Content-Type: {ctype}\n\n{report_text(part)}")
        return
    if ctype in _ORIGINAL_TYPES:
        out.append(f"Content-Type: message/rfc822\n\n{original_text(part, type_of)}")
        return
    if part.is_multipart():
        raw_payload = part.get_payload()
        if not isinstance(raw_payload, list) or not raw_payload:
            # No boundary found: the "parts" are plain text in the body.
            out.append(_payload_text(part, errors) if isinstance(raw_payload, str) else (part.preamble or ""))
            return
        payload = [p for p in raw_payload if isinstance(p, Message)]
        alternative = ctype == "multipart/alternative"
        has_plain = alternative and any(type_of(p) == "text/plain" for p in payload)
        for sub in payload:
            if has_plain and type_of(sub) == "text/html":
                continue
            _flatten(sub, out, errors, type_of)
        return
    if ctype.startswith(("text/", "multipart/")) or not part.get_content_maintype():
        # A multipart without its boundary comes here as text: read it as such.
        text = _payload_text(part, errors)
        out.append(html_to_text(text) if ctype == "text/html" else text)
    elif ctype in ("application/json",):
        out.append(_payload_text(part, errors))


def _payload_text(part: Message, errors: list[str]) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):
        return "\n".join(_payload_text(p, errors) for p in payload if isinstance(p, Message))
    data = _decoded_bytes(part, str(payload))
    charset = content_charset(part) or ""
    return decode_bytes(data[:MAX_PART_TEXT], charset)


def _decoded_bytes(part: Message, payload: str) -> bytes:
    cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    raw = payload.encode("latin-1", "replace") if payload.isascii() is False else payload.encode("ascii")
    if cte == "base64":
        try:
            return base64.b64decode(raw.translate(None, _NOT_BASE64) + b"==", validate=False)
        except (binascii.Error, ValueError):
            return raw
    if cte == "quoted-printable":
        return quopri.decodestring(raw)
    if not payload.isascii():
        # compat32 keeps 8-bit bodies as surrogate-escaped text.
        return payload.encode("utf-8", "surrogateescape")
    return raw


def content_charset(part: Message) -> str | None:
    """``part.get_content_charset()``, read directly when the Content-Type value is plain.

    Message.get_param parses every parameter, with RFC 2231 continuations, backslash escapes and
    angle brackets (email.utils.unquote), on each call. A value in ASCII without backslashes,
    asterisks, "<" or a quoted ";" has none of those: its parameters are the ";"-separated
    pieces, "name=value" stripped, and the stdlib returns the first one named charset, its
    quotes removed, lower-cased ('' for a bare "charset").
    """
    value = part.get("content-type")
    if value is None:
        return None
    if (not (isinstance(value, str) and value.isascii()) or any(char in value for char in "*\\<")
            or ('"' in value and any(";" in quoted for quoted in value.split('"')[1::2]))):
        return part.get_content_charset()
    for piece in value.split(";"):
        name, _, parameter = piece.partition("=")
        if name.strip().lower() == "charset":
            parameter = parameter.strip()
            if len(parameter) > 1 and parameter.startswith('"') and parameter.endswith('"'):
                parameter = parameter[1:-1]
            return parameter.lower()
    return None


def decode_bytes(data: bytes, charset: str) -> str:
    """Decode body bytes with the declared charset, then UTF-8, then Latin-1.

    Japanese mail is often mislabelled (EUC-JP or Shift_JIS bytes declared as
    ISO-2022-JP, as in the EZweb samples), so those encodings are tried too.
    """
    names = [charset, "utf-8"]
    if charset.lower().replace("_", "-") in _JAPANESE:
        names += ["iso-2022-jp", "euc-jp", "cp932"]
    for name in names:
        if not name:
            continue
        try:
            return data.decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode(charset if _known(charset) else "latin-1", "replace")


def _known(charset: str) -> bool:
    try:
        "".encode(charset)
    except (LookupError, TypeError):
        return False
    return bool(charset)


def report_text(part: Message) -> str:
    """The field blocks of a delivery-status or feedback-report part as text."""
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = []
        for block in payload:
            if not isinstance(block, Message):
                continue
            # RFC 2047 section 5 allows no encoded words in an address, so the
            # recipient fields stay as they are.
            lines = [f"{k}: {_field_value(k, v)}" for k, v in header_items(block)]
            body = block.get_payload()
            if isinstance(body, str) and body.strip():
                # A transfer-encoded report is not split into field blocks.
                lines.append(decode_bytes(_decoded_bytes(part, body), "utf-8"))
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks)
    return decode_bytes(_decoded_bytes(part, str(payload)), content_charset(part) or "")


def _field_value(name: str, value: object) -> str:
    if name.lower() in _ADDRESS_FIELDS:
        return " ".join(str(value).split())
    return decode_header_value(value)


def original_text(part: Message, type_of: Callable[[Message], str] = Message.get_content_type) -> str:
    """A returned message (or its headers) as text: header lines, a blank line, the body."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        inner = payload[0]
        head = "\n".join(f"{k}: {v}" for k, v in header_items(inner))
        body = inner.get_payload()
        if isinstance(body, list):
            texts: list[str] = []
            _flatten(inner, texts, [], type_of)
            return head + "\n\n" + "\n".join(texts)[:MAX_PART_TEXT]
        return head + "\n\n" + _payload_text(inner, [])
    return decode_bytes(_decoded_bytes(part, str(payload)), content_charset(part) or "")


def html_to_text(html: str) -> str:
    """Reduce HTML to its text, keeping line breaks at block ends."""
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", "", html)
    text = re.sub(r"(?i)<br\s*/?>|</(p|div|tr|li|h\d)>", "\n", text)
    text = _TAG.sub("", text)
    for entity, char in _ENTITIES.items():
        text = text.replace(entity, char)
    return text
