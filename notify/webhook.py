"""Sending one signed webhook (stdlib urllib; no retries here: notify/deliver.py schedules them)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from notify.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_header

__all__ = ["DeliveryError", "post_webhook", "webhook_body"]


class DeliveryError(Exception):
    """A delivery failed; ``str(error)`` says why, for the delivery log."""


def webhook_body(payload: dict[str, Any]) -> bytes:
    """The JSON body: compact, keys sorted, UTF-8 (the bytes that are signed and sent)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def post_webhook(url: str, body: bytes, secret: bytes, timestamp: int, timeout: float) -> int:
    """POST ``body`` to ``url`` signed with ``secret``; returns the 2xx status or raises DeliveryError."""
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "Ricochet-notify",
        TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature_header(secret, timestamp, body)})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # the URLs come from [notify]
            status = int(response.status)
    except urllib.error.HTTPError as error:  # urllib raises for every status >= 400
        raise DeliveryError(f"HTTP {error.code} {error.reason} from {url}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        raise DeliveryError(f"cannot reach {url}: {reason}") from None
    if not 200 <= status < 300:
        raise DeliveryError(f"HTTP {status} from {url}")
    return status
