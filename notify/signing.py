"""The webhook signature: HMAC-SHA256 over the timestamp and the raw body (docs/notify.md).

Signed material: the decimal Unix time of ``X-Ricochet-Timestamp``, a full stop, then the raw
request body bytes (the scheme of Stripe's and Slack's webhooks). Putting the timestamp inside the
MAC lets a receiver refuse a replayed request: a captured body cannot be re-sent with a fresh time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "TOLERANCE_SECONDS", "sign", "signature_header",
           "verify"]

SIGNATURE_HEADER = "X-Ricochet-Signature"
TIMESTAMP_HEADER = "X-Ricochet-Timestamp"
# How far a receiver should accept the timestamp from its own clock.
TOLERANCE_SECONDS = 300


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``b"<timestamp>." + body`` under ``secret``."""
    return hmac.new(secret, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def signature_header(secret: bytes, timestamp: int, body: bytes) -> str:
    """The value of X-Ricochet-Signature: ``sha256=<hex>``."""
    return "sha256=" + sign(secret, timestamp, body)


def verify(secret: bytes, headers: Mapping[str, str], body: bytes, now: int,
           tolerance: int = TOLERANCE_SECONDS) -> bool:
    """Whether ``headers`` carry a valid signature of ``body`` made within ``tolerance`` of ``now``."""
    stamp = (headers.get(TIMESTAMP_HEADER) or "").strip()
    given = (headers.get(SIGNATURE_HEADER) or "").strip()
    if not stamp.isdigit() or not given.startswith("sha256=") or abs(now - int(stamp)) > tolerance:
        return False
    return hmac.compare_digest(given.removeprefix("sha256="), sign(secret, int(stamp), body))
