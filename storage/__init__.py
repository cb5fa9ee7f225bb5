"""Storage: SQLAlchemy models, engine and sessions, query helpers, and the Alembic migrations.

The caller owns the engine and the sessions (``make_engine``, ``session_factory``); nothing here
keeps a connection or a configuration of its own. ``storage.migrate`` (upgrade, current,
schema_diff) is imported on its own, so that importing the models does not load Alembic.
"""

from storage.engine import DEFAULT_URL, make_engine, normalize_url, session_factory
from storage.models import (
    ApiToken,
    Base,
    BounceEvent,
    ComplaintEvent,
    Event,
    EventIdentity,
    EventKind,
    Identity,
    IdentityKind,
    ImapState,
    LedgerEntry,
    MessageKind,
    MessageStatus,
    RawMessage,
    TokenRole,
)
from storage.queries import (
    add_ledger_entry,
    claim_dedup_key,
    complaint_dedup_key,
    find_by_dedup_key,
    find_raw_message,
    get_or_create_identity,
    imap_state,
    ledger_entry,
    normalize_message_id,
    sha256_hex,
    store_raw_message,
)
from storage.recipients import hash_recipient, recipient_domain
from storage.reputation_models import (
    CounterBucket,
    DecisionHistory,
    DecisionOutcome,
    DecisionRow,
    OverrideRow,
    VerdictRow,
)
from storage.tokens import create_token, find_token, hash_token, new_token, revoke_token, token_by_hash
from storage.types import UTCDateTime, utcnow

__all__ = [
    "DEFAULT_URL",
    "ApiToken",
    "Base",
    "BounceEvent",
    "ComplaintEvent",
    "CounterBucket",
    "DecisionHistory",
    "DecisionOutcome",
    "DecisionRow",
    "Event",
    "EventIdentity",
    "EventKind",
    "Identity",
    "IdentityKind",
    "ImapState",
    "LedgerEntry",
    "MessageKind",
    "MessageStatus",
    "OverrideRow",
    "RawMessage",
    "TokenRole",
    "UTCDateTime",
    "VerdictRow",
    "add_ledger_entry",
    "claim_dedup_key",
    "complaint_dedup_key",
    "create_token",
    "find_by_dedup_key",
    "find_raw_message",
    "find_token",
    "get_or_create_identity",
    "hash_recipient",
    "hash_token",
    "imap_state",
    "ledger_entry",
    "make_engine",
    "new_token",
    "normalize_message_id",
    "normalize_url",
    "recipient_domain",
    "revoke_token",
    "session_factory",
    "sha256_hex",
    "store_raw_message",
    "token_by_hash",
    "utcnow",
]
