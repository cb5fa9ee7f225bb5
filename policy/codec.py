"""The wire formats of MTA policy lookups: pure, no I/O, bounded (STYLE.md habit 8).

Two dialects share one decoder:

- **Postfix policy delegation** (https://www.postfix.org/SMTPD_POLICY_README.html): a request is
  ``name=value`` lines ending at an empty line; the first attribute Postfix sends is always
  ``request=smtpd_access_policy``. The answer is ``action=...`` followed by an empty line. A
  connection carries any number of requests (Postfix keeps it open and reuses it).
- **Exim ``${readsocket}``**: one request per line, ``name=value`` tokens separated by spaces or
  tabs, for example ``sasl_username=alice@example.com sender=a@example.com recipient_count=3``.
  Values cannot contain whitespace (SMTP envelope addresses never do: RFC 5321 section 4.1.2
  excludes spaces from an unquoted local part, and the ACL in docs/mta.md sends nothing else
  that could). The answer is the same ``action=...`` text on one line; ``${readsocket}`` reads
  it until the server closes the connection, which the server does after answering.

The dialect is chosen by the first line of a connection: ``request=...`` means Postfix, anything
else a one-line Exim request. Every limit (line length, attributes per request, bytes per request)
raises a subclass of :class:`ProtocolError`; nothing else is ever raised for any input bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "AttributeLimit",
    "Decoder",
    "Dialect",
    "Limits",
    "LineTooLong",
    "MalformedRequest",
    "ProtocolError",
    "Request",
    "RequestTooLarge",
    "encode_answer",
    "encode_request",
]

# Longest reply text put on the wire: an SMTP reply line is at most 512 octets with its code
# (RFC 5321 section 4.5.3.1.5), and Postfix adds "<rcpt>: Recipient address rejected: " to it.
MAX_ANSWER_TEXT = 400


class Dialect(StrEnum):
    """Which wire format a request came in, and so how its answer is framed."""

    POSTFIX = "postfix"
    EXIM = "exim"


class ProtocolError(Exception):
    """The peer sent something the protocol does not allow; the connection should be closed."""


class LineTooLong(ProtocolError):
    """A line is longer than ``Limits.max_line_bytes``."""


class AttributeLimit(ProtocolError):
    """A request has more attributes than ``Limits.max_attributes``."""


class RequestTooLarge(ProtocolError):
    """A request is larger than ``Limits.max_request_bytes``."""


class MalformedRequest(ProtocolError):
    """A line is not ``name=value``, or a request is empty."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one connection may send.

    Postfix 3.7 sends about 35 attributes; its longest values (TLS certificate subjects, the
    SMTPUTF8 sender) stay well under a kilobyte.
    """

    max_line_bytes: int = 4096
    max_attributes: int = 128
    max_request_bytes: int = 32768


@dataclass(frozen=True, slots=True)
class Request:
    """One policy lookup: its attributes (Postfix names) and the dialect to answer in."""

    attributes: Mapping[str, str]
    dialect: Dialect


class Decoder:
    """Streaming decoder for one connection: feed it bytes as they arrive, get whole requests.

    ``dialect`` forces a dialect (a listener dedicated to one MTA); ``None`` detects it from the
    first line. After a :class:`ProtocolError` the decoder is unusable: close the connection.
    """

    __slots__ = ("_attrs", "_buffer", "_dialect", "_limits", "_request_bytes")

    def __init__(self, limits: Limits | None = None, dialect: Dialect | None = None) -> None:
        self._limits = limits or Limits()
        self._dialect = dialect
        self._buffer = b""
        self._attrs: dict[str, str] = {}
        self._request_bytes = 0

    @property
    def dialect(self) -> Dialect | None:
        """The connection's dialect, once known."""
        return self._dialect

    def feed(self, data: bytes) -> list[Request]:
        """Add ``data`` and return the requests it completes (possibly none)."""
        buffer = self._buffer + data if self._buffer else data
        limits = self._limits
        requests: list[Request] = []
        start = 0
        while True:
            if not self._attrs and self._dialect is not Dialect.EXIM:
                # Postfix writes a whole request at once: take it in one piece when it is valid.
                request, start = self._whole_request(buffer, start)
                if request is not None:
                    requests.append(request)
                    continue
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            if end - start > limits.max_line_bytes:
                raise LineTooLong(f"a line is longer than {limits.max_line_bytes} bytes")
            line = buffer[start:end]
            start = end + 1
            request = self._line(line[:-1] if line.endswith(b"\r") else line)
            if request is not None:
                requests.append(request)
        rest = buffer[start:]
        if len(rest) > limits.max_line_bytes:
            raise LineTooLong(f"a line is longer than {limits.max_line_bytes} bytes")
        self._buffer = rest
        return requests

    def _whole_request(self, buffer: bytes, start: int) -> tuple[Request | None, int]:
        """The Postfix request at ``start`` if it is complete and within every limit, else None.

        Anything unusual (CR, a limit, a bad line) is left to the line-by-line path, which
        raises the precise error: this is only a faster way to the same result.
        """
        limits = self._limits
        end = buffer.find(b"\n\n", start, start + limits.max_request_bytes + 2)
        if end < 0:
            return None, start
        block = buffer[start:end]
        if self._dialect is None:
            if not block.startswith(b"request="):
                return None, start
            self._dialect = Dialect.POSTFIX
        if b"\r" in block:
            return None, start
        text = block.decode("utf-8", "replace")
        pairs = _PAIR.findall(text)
        # Each line matches at most once, so all of them are name=value when the counts agree.
        if (len(pairs) != text.count("\n") + 1 or len(pairs) > limits.max_attributes
                or len(block) + 1 > limits.max_request_bytes
                or (len(block) > limits.max_line_bytes
                    and max(map(len, block.split(b"\n"))) > limits.max_line_bytes)):
            return None, start
        attrs = dict(pairs)
        if len(attrs) != len(pairs):
            return None, start  # a name twice
        return Request(attrs, Dialect.POSTFIX), end + 2

    def _line(self, line: bytes) -> Request | None:
        if self._dialect is None:
            self._dialect = Dialect.POSTFIX if line.startswith(b"request=") else Dialect.EXIM
        if self._dialect is Dialect.EXIM:
            return self._exim_line(line)
        if not line:
            if not self._attrs:
                raise MalformedRequest("an empty line with no attributes before it")
            request = Request(self._attrs, Dialect.POSTFIX)
            self._attrs = {}
            self._request_bytes = 0
            return request
        self._request_bytes += len(line) + 1
        if self._request_bytes > self._limits.max_request_bytes:
            raise RequestTooLarge(f"a request is larger than {self._limits.max_request_bytes} bytes")
        # Count lines, not distinct names: a million copies of one name must hit the limit too.
        if len(self._attrs) >= self._limits.max_attributes:
            raise AttributeLimit(f"a request has more than {self._limits.max_attributes} attributes")
        name, value = _attribute(line)
        if name in self._attrs:
            raise MalformedRequest(f"attribute {name!r} appears twice in one request")
        self._attrs[name] = value
        return None

    def _exim_line(self, line: bytes) -> Request | None:
        tokens = line.split()
        if not tokens:
            raise MalformedRequest("an empty line where a one-line request was expected")
        if len(tokens) > self._limits.max_attributes:
            raise AttributeLimit(f"a request has more than {self._limits.max_attributes} attributes")
        attrs: dict[str, str] = {}
        for token in tokens:
            name, value = _attribute(token)
            attrs[name] = value
        return Request(attrs, Dialect.EXIM)


# One name=value line, names as _attribute accepts them (MULTILINE: ^ and $ at each newline).
_PAIR = re.compile(r"^([A-Za-z0-9_]+)=(.*)$", re.MULTILINE)


def _attribute(line: bytes) -> tuple[str, str]:
    """Split ``name=value``; names are ASCII, values UTF-8 (SMTPUTF8 senders), undecodable -> U+FFFD."""
    name, sep, value = line.partition(b"=")
    if not sep or not name:
        raise MalformedRequest(f"not a name=value line: {line[:60]!r}")
    if not name.isascii() or not name.replace(b"_", b"").isalnum():
        raise MalformedRequest(f"not an attribute name: {name[:60]!r}")
    return name.decode("ascii"), value.decode("utf-8", "replace")


def encode_answer(action: str, dialect: Dialect) -> bytes:
    """Frame an answer, e.g. ``DUNNO`` or ``DEFER_IF_PERMIT 4.7.1 text``, for ``dialect``.

    The text is made safe for an SMTP reply: one line, ASCII, at most ``MAX_ANSWER_TEXT`` long.
    """
    safe = " ".join(action.split())[:MAX_ANSWER_TEXT].encode("ascii", "replace")
    if dialect is Dialect.POSTFIX:
        return b"action=" + safe + b"\n\n"
    return b"action=" + safe + b"\n"


# What bytes.split() separates on (ASCII whitespace), so an Exim value must not contain it.
_EXIM_FORBIDDEN = " \t\r\n\x0b\x0c"


def encode_request(attributes: Mapping[str, str], dialect: Dialect) -> bytes:
    """Frame a request (for clients: tests, the load generator, a health check).

    Raises ``ValueError`` for what the dialect cannot carry: a newline in a value (both dialects)
    or whitespace in an Exim value, or a name that is not an attribute name.
    """
    parts: list[bytes] = []
    for name, value in attributes.items():
        if not name or not name.isascii() or not name.replace("_", "").isalnum():
            raise ValueError(f"not an attribute name: {name!r}")
        forbidden = _EXIM_FORBIDDEN if dialect is Dialect.EXIM else "\r\n"
        if any(c in forbidden for c in value):
            raise ValueError(f"the {dialect} dialect cannot carry the value {value!r} of {name}")
        parts.append(f"{name}={value}".encode())
    if dialect is Dialect.POSTFIX:
        return b"".join(part + b"\n" for part in parts) + b"\n"
    return b" ".join(parts) + b"\n"
