"""The stdlib's MIME tree of a raw message, built without reading the body line by line.

``parse_bytes(raw)`` returns exactly what ``email.parser.BytesParser(policy=compat32)
.parsebytes(raw)`` returns: the same ``email.message.Message`` tree, headers, payloads,
preambles, epilogues and defects. It follows ``email.feedparser.FeedParser._parsegen`` step
by step, with one difference in method: the feed parser hands every body line to Python code
to see whether it ends the part (a boundary, or the blank line that ends a delivery-status
block), while here ``str.find`` finds the next such line in the whole text, and a part's body
is one slice. A plain header block is split into fields with one regular expression, giving
what ``policy.header_source_parse`` gives; a block with the feed parser's special cases (a
first line that is a continuation, envelope "From " lines, a line starting with ":") goes
through a copy of ``FeedParser._parse_headers``. The objects are the email package's own
``Message``, and parameters (``get_boundary``) and all decoding later on are left to it.

Why: the feed parser was a third of the time ``ingest.classify`` spends on a message (issue 2
asks for 1.5 times Sisimai's speed), most of it spent walking base64 lines of attachments.

Only text whose lines all end in LF or CRLF takes this path; a lone CR (which the feed parser
also treats as a line end), an envelope ``From `` line that ends a header block (which it
moves into the body), or any error falls back to the feed parser itself, so the result is the
same in every case. ``tests/test_rfc822_tree.py`` compares both on the corpus and on generated
messages.
"""

from __future__ import annotations

import re
from email import errors
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from typing import Any

__all__ = ["header_items", "parse_bytes", "parse_tree"]

_PARSER = BytesParser(policy=compat32)
# email.feedparser's headerRE: what may start a header line; here, a run of such lines.
_HEADER_LINES = re.compile(r"(?:(?:From |[\041-\071\073-\176]*:|[\t ])[^\n]*(?:\n|\Z))*")
# One header field: its name, and its value from the first line on with its continuation lines.
_FIELD = re.compile(r"^([^:\n]*):[ \t]*([^\n]*(?:\n[ \t][^\n]*)*)", re.M)


class _Fallback(Exception):
    """The input needs the feed parser's own handling."""


def parse_bytes(raw: bytes) -> Message:
    """``BytesParser(policy=compat32).parsebytes(raw)``, computed faster (see the module docstring).

    Raises what the feed parser raises, since it is the one that parses unusual input.
    """
    return parse_tree(raw)[0]


def parse_tree(raw: bytes) -> tuple[Message, dict[int, str]]:
    """``parse_bytes(raw)``, and the content type of every part found on the way, by ``id(part)``.

    The types are those ``part.get_content_type()`` gives; the dictionary is empty when the
    feed parser had to do the work.
    """
    text = raw.decode("ascii", "surrogateescape")
    if "\r" not in text or text.count("\r") == text.count("\r\n"):
        try:
            builder = _TreeBuilder(text)
            return builder.root(), builder.types
        except Exception:  # noqa: BLE001 - whatever the reason, the feed parser decides
            pass
    return _PARSER.parsebytes(raw), {}


def header_items(message: Message) -> list[tuple[str, Any]]:
    """``message.items()`` without a policy call per header: compat32 hands out plain-ASCII values
    as they are, and only a value with 8-bit bytes in it comes back as an ``email.header.Header``."""
    fetch = message.policy.header_fetch_parse
    return [(name, value if isinstance(value, str) and value.isascii() else fetch(name, value))
            for name, value in message._headers]  # type: ignore[attr-defined]


class _EndOfPart:
    """A line that ends a part (FeedParser's "eof matchers"), and where it next occurs."""

    __slots__ = ("found", "searched")

    def __init__(self) -> None:
        # The next match is at ``found`` for any position in [searched, found]: the parts of
        # one multipart do not search the same stretch of text again.
        self.searched, self.found = -1, -1

    def next(self, text: str, pos: int) -> int:
        """The start of the first matching line at or after ``pos`` (a line start), or len(text)."""
        if not self.searched <= pos <= self.found:
            self.searched, self.found = pos, self.search(text, pos)
        return self.found

    def search(self, text: str, pos: int) -> int:
        raise NotImplementedError


class _BlankLine(_EndOfPart):
    """The blank line after each field block of a message/delivery-status part (NLCRE.match)."""

    __slots__ = ("crlf",)

    def __init__(self, crlf: bool) -> None:
        super().__init__()
        self.crlf = crlf

    def search(self, text: str, pos: int) -> int:
        found = _blank_line(text, pos, len(text), self.crlf)
        return len(text) if found < 0 else found


class _Boundary(_EndOfPart):
    """A multipart boundary line: email.feedparser's boundaryre, for text whose lines end in LF."""

    __slots__ = ("separator",)

    def __init__(self, boundary: str) -> None:
        super().__init__()
        self.separator = "--" + boundary

    def search(self, text: str, pos: int) -> int:
        separator = self.separator
        if "\n" in separator or "\r" in separator:
            return len(text)  # a folded boundary parameter matches no single line
        at = text.find(separator, pos)
        while at >= 0:
            if (at == 0 or text[at - 1] == "\n") and self.match(text, at) is not None:
                return at
            at = text.find(separator, at + 1)
        return len(text)

    def match(self, text: str, at: int) -> bool | None:
        """None when the line at ``at`` is not this boundary, else whether it is the closing one."""
        if not text.startswith(self.separator, at):
            return None
        for closing in (True, False):
            end = at + len(self.separator)
            if closing:
                if not text.startswith("--", end):
                    continue
                end += 2
            while end < len(text) and text[end] in " \t":
                end += 1
            if end == len(text) or text[end] == "\n" or text.startswith("\r\n", end):
                return closing
        return None


class _TreeBuilder:
    """One message's parse: FeedParser._parsegen over line offsets instead of a line queue."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.policy = compat32
        self.last: Message | None = None  # FeedParser._last: the message created or finished last
        self.types: dict[int, str] = {}  # id(part) -> part.get_content_type()
        self.crlf = "\r" in text  # then every line ends in CRLF (parse_tree checks)

    def root(self) -> Message:
        """The message tree (FeedParser.close)."""
        root = self.message(0, (), None, "")
        if self.types[id(root)].startswith("multipart/") and not root.is_multipart():
            self.policy.handle_defect(root, errors.MultipartInvariantViolationDefect())
        return root

    def end_of(self, pos: int, matchers: tuple[_EndOfPart, ...]) -> int:
        """Where the first line at or after ``pos`` that one of ``matchers`` matches starts.

        That line is the false end of file of FeedParser's BufferedSubFile: every read stops there.
        """
        end = len(self.text)
        for matcher in matchers:
            end = min(end, matcher.next(self.text, pos))
        return end

    def line_end(self, pos: int, end: int) -> int:
        """The start of the line after the one at ``pos``, at most ``end``."""
        cut = self.text.find("\n", pos, end)
        return end if cut < 0 else cut + 1

    def message(self, pos: int, matchers: tuple[_EndOfPart, ...], parent: Message | None,
                parent_type: str) -> Message:
        """Parse one message or part starting at ``pos``; it runs to the next matched line."""
        msg = Message(policy=self.policy)
        if parent_type == "multipart/digest":
            msg.set_default_type("message/rfc822")
        if parent is not None:
            parent.attach(msg)
        self.last = msg
        end = self.end_of(pos, matchers)
        pos = self.headers(msg, pos, end)
        ctype = self.types[id(msg)] = _content_type(msg)
        if ctype == "message/delivery-status":
            self.delivery_status(msg, pos, end, matchers)
        elif ctype.startswith("message/"):
            self.message(pos, matchers, msg, ctype)
        elif ctype.startswith("multipart/"):
            self.multipart(msg, ctype, pos, end, matchers)
        else:
            msg.set_payload(self.text[pos:end])
        return msg

    def headers(self, msg: Message, pos: int, end: int) -> int:
        """Read the header block at ``pos`` into ``msg``; returns where the body starts."""
        text = self.text
        blank = _blank_line(text, pos, end, self.crlf)
        stop = end if blank < 0 else blank
        run = _HEADER_LINES.match(text, pos, stop)
        if run is not None and run.end() < stop:
            # Neither a header nor a blank line: the headers end, and the line is the body's first.
            self.policy.handle_defect(msg, errors.MissingHeaderBodySeparatorDefect())
            stop = body = run.end()
        else:
            body = end if blank < 0 else self.line_end(blank, end)
        block = text[pos:stop]
        if block.startswith((" ", "\t", "From ", ":")) or "\nFrom " in block or "\n:" in block:
            lines = block.split("\n")
            lines = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
            self.header_fields(msg, lines)
        else:
            # Every line starts a field or continues one: FeedParser._parse_headers has no
            # special case to make, and policy.header_source_parse's value is the field's text
            # after the colon, left-stripped, without its final line end.
            # (Message.set_raw appends to _headers; one extend is cheaper than a call per field.)
            fields = [(name, value.rstrip("\r\n")) for name, value in _FIELD.findall(block)]
            msg._headers.extend(fields)  # type: ignore[attr-defined]
        return body
    def header_fields(self, msg: Message, lines: list[str]) -> None:
        """FeedParser._parse_headers."""
        last_name = ""
        last_value: list[str] = []
        for number, line in enumerate(lines):
            if line[0] in " \t":
                if not last_name:
                    self.policy.handle_defect(msg, errors.FirstHeaderLineIsContinuationDefect(line))
                    continue
                last_value.append(line)
                continue
            if last_name:
                msg.set_raw(*self.policy.header_source_parse(last_value))
                last_name, last_value = "", []
            if line.startswith("From "):
                if number == 0:
                    msg.set_unixfrom(_strip_eol(line))
                    continue
                if number == len(lines) - 1:
                    raise _Fallback("an envelope line ends the header block")
                msg.defects.append(errors.MisplacedEnvelopeHeaderDefect(line))
                continue
            colon = line.find(":")
            if colon == 0:
                msg.defects.append(errors.InvalidHeaderDefect("Missing header name."))
                continue
            last_name, last_value = line[:colon], [line]
        if last_name:
            msg.set_raw(*self.policy.header_source_parse(last_value))

    def delivery_status(self, msg: Message, pos: int, end: int, matchers: tuple[_EndOfPart, ...]) -> None:
        """A message/delivery-status body: one header-only sub-message per blank-line-separated block."""
        inner = (*matchers, _BlankLine(self.crlf))
        while True:
            self.message(pos, inner, msg, "message/delivery-status")
            pos = self.end_of(pos, inner)
            # The blank line (or nothing, at the end), then a look at the next line.
            pos = self.line_end(pos, end) if pos < end else pos
            if pos >= end:
                return

    def multipart(self, msg: Message, ctype: str, pos: int, end: int,
                  matchers: tuple[_EndOfPart, ...]) -> None:
        """A multipart body: preamble, the parts between boundaries, epilogue."""
        text = self.text
        boundary = msg.get_boundary()
        if boundary is None:
            self.policy.handle_defect(msg, errors.NoBoundaryInMultipartDefect())
            msg.set_payload(text[pos:end])
            return
        if str(msg.get("content-transfer-encoding", "8bit")).lower() not in ("7bit", "8bit", "binary"):
            self.policy.handle_defect(msg, errors.InvalidMultipartContentTransferEncodingDefect())
        own = _Boundary(boundary)
        first = own.next(text, pos)
        if first >= end or own.match(text, first):
            # No opening boundary: everything up to the end (or a closing boundary) is the payload.
            self.policy.handle_defect(msg, errors.StartBoundaryNotFoundDefect())
            msg.set_payload(text[pos: min(first, end)])
            msg.epilogue = ""
            return
        if first > pos:
            msg.preamble = _strip_eol(text[pos:first])
        pos = first
        inner = (*matchers, own)
        while True:
            # The boundary line, and any boundary lines straight after it, open the next part.
            pos = self.line_end(pos, end)
            while pos < end and own.match(text, pos) is not None:
                pos = self.line_end(pos, end)
            self.message(pos, inner, msg, ctype)
            self.trim_last()
            self.last = msg
            pos = self.end_of(pos, inner)
            if pos >= end:
                self.policy.handle_defect(msg, errors.CloseBoundaryNotFoundDefect())
                return
            closing = own.match(text, pos)
            if closing is None:
                raise _Fallback("a part ended on a line that is not its boundary")
            if closing:
                break
        after = self.line_end(pos, end)
        msg.epilogue = text[after:end] if text[after - 1: after] == "\n" else ""

    def trim_last(self) -> None:
        """The line end before a boundary belongs to the boundary (RFC 2046 section 5.1.1)."""
        last = self.last
        if last is None:
            return
        if self.types[id(last)].startswith("multipart/"):
            epilogue = last.epilogue
            if epilogue == "":
                last.epilogue = None
            elif epilogue is not None:
                last.epilogue = _strip_eol(epilogue)
        else:
            # The raw payload, as email.feedparser reads it (get_payload would decode 8-bit text).
            payload = last._payload  # type: ignore[attr-defined]
            if isinstance(payload, str):
                last.set_payload(_strip_eol(payload))


def _content_type(msg: Message) -> str:
    """``msg.get_content_type()``, read straight from the header list when the value is plain ASCII."""
    for name, value in msg._headers:  # type: ignore[attr-defined]
        if name.lower() == "content-type":  # the first one, as Message.get finds it
            if not (isinstance(value, str) and value.isascii()):
                break  # compat32 hands out a Header object for 8-bit values: let the method do it
            ctype = value.partition(";")[0].strip().lower()  # email.message._splitparam
            return ctype if ctype.count("/") == 1 else "text/plain"
    else:
        return msg.get_default_type()
    return msg.get_content_type()


def _blank_line(text: str, pos: int, end: int, crlf: bool) -> int:
    """The start of the first blank line at or after the line start ``pos`` and before ``end``, or -1.

    ``crlf`` says whether the text has CRs at all (then its line ends are CRLF).
    """
    if text.startswith(("\n", "\r\n"), pos, end):
        return pos
    found = text.find("\n\n", pos, end)
    if crlf:
        # A CRLF blank line before that one: it starts at most one character before it ends.
        earlier = text.find("\n\r\n", pos, end if found < 0 else min(end, found + 2))
        found = earlier if earlier >= 0 else found
    return found + 1 if found >= 0 else -1


def _strip_eol(text: str) -> str:
    """The text without one final line end (email.feedparser's NLCRE_eol)."""
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith(("\r", "\n")) else text
