"""Traffic for the reputation tests: complaints and bounces about one account, and its sends.

The messages are the attribution samples (tests/data/attribution/README.md): arf-postfix-01.eml is
an ARF complaint about a message that alice@example.com sent through SMTP AUTH on our Postfix,
dsn-verp-01.eml a DSN (5.1.1, user unknown: a list-quality hard bounce) to alice's VERP return path.
Each copy gets its own recipient (so that complaints are not deduplicated) and dates at ``at`` (so
that the events fall in the windows of a test's ``now``). The provider's hosts are
*.provider.example in 198.51.100.0/24: the trust settings below make the header lines believed.
"""

from __future__ import annotations

import email.utils
import ipaddress
import re
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from attribution import AttributionRules, TrustRules
from ingest.pipeline import Pipeline
from reputation import CounterStore, Identity, IdentityKind

__all__ = ["ALICE", "RULES", "TRUST_ENV", "bounce", "complaint", "ingest", "send_deltas"]

SAMPLES = Path(__file__).resolve().parent / "data" / "attribution"
ALICE = Identity(IdentityKind.ACCOUNT, "alice@example.com")
RULES = AttributionRules(trust=TrustRules(hosts=("*.provider.example",),
                                          networks=(ipaddress.ip_network("198.51.100.0/24"),)))
TRUST_ENV = {"RICOCHET_ATTRIBUTION_TRUSTED_HOSTS": "*.provider.example",
             "RICOCHET_ATTRIBUTION_TRUSTED_NETWORKS": "198.51.100.0/24"}
_DATE = re.compile(rb"Mon, 30 Nov 2026 \d\d:\d\d:\d\d [+-]\d{4}")


def _dated(raw: bytes, at: datetime) -> bytes:
    return _DATE.sub(email.utils.format_datetime(at).encode(), raw)


def complaint(number: int, at: datetime) -> bytes:
    """An ARF complaint about alice's message to user<number>@receiver.example, dated ``at``."""
    raw = (SAMPLES / "arf-postfix-01.eml").read_bytes()
    return _dated(raw.replace(b"bob@receiver.example", f"user{number}@receiver.example".encode()), at)


def bounce(number: int, at: datetime) -> bytes:
    """A 5.1.1 DSN for alice's message to gone<number>@receiver.example, dated ``at``."""
    raw = (SAMPLES / "dsn-verp-01.eml").read_bytes()
    return _dated(raw.replace(b"nosuchuser@receiver.example", f"gone{number}@receiver.example".encode()), at)


def send_deltas(identity: Identity, sends: int, at: datetime, spread: timedelta = timedelta(minutes=30),
                node: CounterStore | None = None) -> CounterStore:
    """A policy node's store (new or ``node``) that counted ``sends`` one-recipient messages from ``at``."""
    store = node or CounterStore(track_deltas=True)
    for i in range(sends):
        store.record_send(identity, 1, at + spread * i / max(sends, 1))
    return store


def ingest(session: Session, messages: list[bytes], at: datetime) -> None:
    """Run ``messages`` through the real pipeline (received at ``at``) and commit."""
    pipeline = Pipeline(RULES)
    for raw in messages:
        result = pipeline.ingest(session, raw, source="test", received_at=at)
        assert result.status == "parsed", result
    session.commit()
