"""Recipient addresses kept as keyed hashes, for providers that must not store complainants' addresses.

A plain SHA-256 of an address can be reversed by hashing a list of known addresses; an HMAC with
a secret salt cannot, yet the same address still gives the same value, so repeated complaints
from one recipient can be counted together (RFC 2104; HMAC-SHA256 as in RFC 4231).
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["hash_recipient", "recipient_domain"]


def hash_recipient(address: str, salt: str | bytes) -> str:
    """The HMAC-SHA256 (hex) of ``address``, trimmed and lower-cased, keyed with ``salt``.

    Lower-casing makes ``Bob@Example.COM`` and ``bob@example.com`` one recipient: receivers treat
    local parts case-insensitively in practice, although RFC 5321 (section 2.4) allows otherwise.
    """
    key = salt.encode("utf-8") if isinstance(salt, str) else salt
    return hmac.new(key, address.strip().lower().encode("utf-8"), hashlib.sha256).hexdigest()


def recipient_domain(address: str) -> str:
    """The domain of ``address``, lower-cased ("" when there is no ``@``); kept even when hashed."""
    _, at, domain = address.strip().rpartition("@")
    return domain.strip().rstrip(">").lower() if at else ""
