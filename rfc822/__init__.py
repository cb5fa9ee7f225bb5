"""Lenient reading of raw RFC 5322 / MIME messages, shared by the pure parsers.

Pure: bytes in, plain values out. Nothing here raises on bad input; what
could not be read is reported in ``Mail.errors``.
"""

from rfc822.mail import Mail, load
from rfc822.original import OriginalMessage, original_from_message, original_from_text
from rfc822.text import bare_message_id, decode_header_value, find_addresses, first_address, header_fields

__all__ = [
    "Mail",
    "OriginalMessage",
    "bare_message_id",
    "decode_header_value",
    "find_addresses",
    "first_address",
    "header_fields",
    "load",
    "original_from_message",
    "original_from_text",
]
