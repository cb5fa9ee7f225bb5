"""Query helpers on SQLite and PostgreSQL, including two writers racing for the same row."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
import sqlalchemy.event
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from ingest.ledger import PrefetchedLedger
from storage.engine import session_factory
from storage.models import ApiToken, Identity, LedgerEntry, RawMessage, TokenRole
from storage.queries import (
    IN_CHUNK,
    add_ledger_entry,
    claim_dedup_key,
    complaint_dedup_key,
    dedup_key_holders,
    find_by_dedup_key,
    find_raw_message,
    get_or_create_identity,
    identity_id,
    imap_state,
    ledger_entry,
    live_token_hashes,
    normalize_message_id,
    preload_identities,
    sha256_hex,
    store_raw_message,
    stored_messages,
)
from storage.recipients import hash_recipient, recipient_domain
from storage.tokens import create_token, find_token, hash_token, revoke_token, token_by_hash
from tests import db

# The two-backend fixtures (tests/db.py), used by name below.
database_url, db_engine, db_session = db.database_url, db.db_engine, db.db_session

WHEN = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
T = TypeVar("T")


def count(session: Session, model: type[object]) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def race(engine: Engine, write: Callable[[Session], T]) -> tuple[T, T]:
    """Run ``write`` in two sessions: the second starts while the first has not committed yet.

    The second one must wait for the first (PostgreSQL's unique index, SQLite's write lock) and
    then see its row instead of failing or writing another.
    """
    factory = session_factory(engine)
    results: dict[str, T] = {}
    errors: list[Exception] = []
    with factory() as first:
        results["first"] = write(first)

        def second_writer() -> None:
            try:
                with factory() as second:
                    results["second"] = write(second)
                    second.commit()
            except Exception as error:  # noqa: BLE001  (any failure is the test's to report)
                errors.append(error)

        thread = threading.Thread(target=second_writer)
        thread.start()
        thread.join(0.5)  # it is blocked on the first transaction's lock by now
        assert thread.is_alive(), "the second writer did not wait for the first one"
        first.commit()
    thread.join(10)
    assert not errors, errors
    return results["first"], results["second"]


def test_find_raw_message_by_sha256(db_session: Session) -> None:
    message, _ = store_raw_message(db_session, b"abc", "webhook")
    # SHA-256("abc"), FIPS 180-2 appendix B.1.
    digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert message.sha256 == digest
    assert find_raw_message(db_session, digest.upper()) is message
    assert find_raw_message(db_session, "0" * 64) is None


def test_two_writers_storing_the_same_bytes_store_them_once(db_engine: Engine, db_session: Session) -> None:
    first, second = race(db_engine, lambda session: store_raw_message(session, b"raced", "webhook")[0].id)
    assert first == second
    assert count(db_session, RawMessage) == 1


def test_identity_get_or_create_twice_gives_one_row(db_session: Session) -> None:
    first = get_or_create_identity(db_session, "account", "alice@customer.example", WHEN)
    again = get_or_create_identity(db_session, "account", "alice@customer.example", WHEN + timedelta(hours=1))
    other_kind = get_or_create_identity(db_session, "domain", "alice@customer.example", WHEN)
    db_session.commit()
    assert again.id == first.id
    assert other_kind.id != first.id
    assert count(db_session, Identity) == 2


def test_identity_times_grow_both_ways(db_engine: Engine, db_session: Session) -> None:
    identity = get_or_create_identity(db_session, "script", "/home/a/x.php", WHEN)
    get_or_create_identity(db_session, "script", "/home/a/x.php", WHEN + timedelta(days=1))
    get_or_create_identity(db_session, "script", "/home/a/x.php", WHEN - timedelta(days=1))
    get_or_create_identity(db_session, "script", "/home/a/x.php", WHEN)
    db_session.commit()
    with session_factory(db_engine)() as other:
        stored = other.get_one(Identity, identity.id)
        assert (stored.first_seen, stored.last_seen) == (WHEN - timedelta(days=1), WHEN + timedelta(days=1))


def test_preloaded_identities_keep_their_times_unless_an_event_widens_them(db_engine: Engine,
                                                                          db_session: Session) -> None:
    widened = get_or_create_identity(db_session, "account", "alice", WHEN)
    kept = get_or_create_identity(db_session, "account", "bob", WHEN)
    db_session.commit()
    preload_identities(db_session, [("account", "alice"), ("account", "bob"), ("script", "never stored")])
    statements: list[str] = []

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    sqlalchemy.event.listen(db_engine, "before_cursor_execute", record)
    try:
        assert identity_id(db_session, "account", "alice", WHEN + timedelta(hours=2)) == widened.id
        assert identity_id(db_session, "account", "alice", WHEN - timedelta(hours=1)) == widened.id
        assert identity_id(db_session, "account", "bob", WHEN) == kept.id
    finally:
        sqlalchemy.event.remove(db_engine, "before_cursor_execute", record)
    assert statements == []  # found in what was preloaded: no read
    db_session.commit()
    with session_factory(db_engine)() as other:
        alice, bob = other.get_one(Identity, widened.id), other.get_one(Identity, kept.id)
        assert (alice.first_seen, alice.last_seen) == (WHEN - timedelta(hours=1), WHEN + timedelta(hours=2))
        assert (bob.first_seen, bob.last_seen) == (WHEN, WHEN)
        assert other.scalar(select(func.count()).select_from(Identity)) == 2


# More values than one statement may bind on PostgreSQL (65535 parameters): what a batch of a few
# ten thousand messages asks (import --batch-size 100000 is allowed).
MANY = 70_000


def test_batch_reads_of_more_values_than_a_statement_binds(db_engine: Engine, db_session: Session) -> None:
    first, _ = store_raw_message(db_session, b"a message stored before", "import")
    last, _ = store_raw_message(db_session, b"another message stored before", "import")
    key = complaint_dedup_key("aol.com", "<1@mail.hoster.example>", "someone@aol.com")
    assert key is not None and claim_dedup_key(db_session, first, key) is None
    alice = get_or_create_identity(db_session, "account", "alice", WHEN)
    add_ledger_entry(db_session, "<1@mail.hoster.example>", account="alice")
    token = create_token(db_session, "relay", TokenRole.INGEST)[1]
    db_session.commit()
    unknown = [sha256_hex(b"%d" % number) for number in range(MANY)]
    assert len(unknown) > 2 * IN_CHUNK  # several chunks

    found = stored_messages(db_session, [*unknown, first.sha256, last.sha256])
    assert {digest: stored.id for digest, stored in found.items()} == {first.sha256: first.id,
                                                                       last.sha256: last.id}
    assert dedup_key_holders(db_session, [*unknown, key]) == {key: first.id}
    assert live_token_hashes(db_session, [*unknown, hash_token(token)]) == {hash_token(token)}
    ledger = PrefetchedLedger(db_session, [f"<{digest}@mail.hoster.example>" for digest in unknown]
                              + ["<1@mail.hoster.example>"])
    statements: list[str] = []

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    preload_identities(db_session, [("account", digest) for digest in unknown[:MANY // 2]]
                       + [("account", "alice")])
    sqlalchemy.event.listen(db_engine, "before_cursor_execute", record)
    try:  # found in what was read before: no query
        entry = ledger("<1@mail.hoster.example>")
        assert entry is not None and entry.account == "alice"
        assert ledger(f"<{unknown[-1]}@mail.hoster.example>") is None
        assert identity_id(db_session, "account", "alice", WHEN) == alice.id
    finally:
        sqlalchemy.event.remove(db_engine, "before_cursor_execute", record)
    assert statements == []


def test_identity_kind_is_checked(db_session: Session) -> None:
    with pytest.raises(ValueError, match="'mailbox' is not a valid IdentityKind"):
        get_or_create_identity(db_session, "mailbox", "x")


def test_two_writers_creating_one_identity_make_one_row(db_engine: Engine, db_session: Session) -> None:
    def create(session: Session) -> int:
        return get_or_create_identity(session, "ip", "192.0.2.7", WHEN).id

    first, second = race(db_engine, create)
    assert first == second
    assert count(db_session, Identity) == 1


def test_complaint_dedup_key_ignores_spelling() -> None:
    key = complaint_dedup_key("aol.com", "<20261130.42@mail.hoster.example>", "Someone@AOL.com")
    assert key is not None and len(key) == 64
    assert complaint_dedup_key("AOL.com ", "20261130.42@mail.hoster.example", "someone@aol.com") == key
    assert complaint_dedup_key("aol.com", "<20261130.43@mail.hoster.example>", "someone@aol.com") != key
    assert complaint_dedup_key("aol.com", "<20261130.42@mail.hoster.example>", "other@aol.com") != key
    assert complaint_dedup_key("yahoo.com", "<20261130.42@mail.hoster.example>", "someone@aol.com") != key
    assert complaint_dedup_key("aol.com", "<20261130.42@mail.hoster.example>", "someone@aol.com", "s") != key


@pytest.mark.parametrize(("message_id", "recipient"), [("", "a@aol.com"), ("<x@y>", ""), ("<>", "a@aol.com")])
def test_no_dedup_key_without_message_id_or_recipient(message_id: str, recipient: str) -> None:
    assert complaint_dedup_key("aol.com", message_id, recipient) is None


def test_the_same_complaint_is_claimed_once(db_session: Session) -> None:
    key = complaint_dedup_key("aol.com", "<1@mail.hoster.example>", "someone@aol.com")
    assert key is not None
    first, _ = store_raw_message(db_session, b"complaint, as sent the first time", "imap:fbl")
    second, _ = store_raw_message(db_session, b"complaint, sent again with another date", "imap:fbl")
    assert claim_dedup_key(db_session, first, key) is None
    assert claim_dedup_key(db_session, first, key) is None  # claiming again is harmless
    assert claim_dedup_key(db_session, second, key) is first
    db_session.commit()
    assert find_by_dedup_key(db_session, key) is first
    assert second.dedup_key is None


def test_messages_without_dedup_key_do_not_collide(db_session: Session) -> None:
    # Unique when present: many NULLs are allowed on both backends.
    for n in range(3):
        store_raw_message(db_session, f"bounce {n}".encode(), "import")
    db_session.commit()
    assert count(db_session, RawMessage) == 3


def test_a_racing_claim_gets_the_first_holder(db_engine: Engine, db_session: Session) -> None:
    key = "k" * 64

    def claim(session: Session) -> int:
        raw = b"raced complaint " + threading.current_thread().name.encode()
        message, _ = store_raw_message(session, raw, "webhook")
        holder = claim_dedup_key(session, message, key)
        return message.id if holder is None else -holder.id

    first, second = race(db_engine, claim)
    assert first > 0
    assert second == -first


@pytest.mark.parametrize(("header", "expected"), [
    ("<20261130.42@mail.hoster.example>", "20261130.42@mail.hoster.example"),
    ("  20261130.42@mail.hoster.example\r\n", "20261130.42@mail.hoster.example"),
    ("\r\n <20261130.42@mail.hoster.example> (added by the MTA)", "20261130.42@mail.hoster.example"),
    ("", ""),
])
def test_message_ids_are_stored_without_brackets(header: str, expected: str) -> None:
    # RFC 5322, section 3.6.4: msg-id = [CFWS] "<" id-left "@" id-right ">" [CFWS]
    assert normalize_message_id(header) == expected


def test_ledger_lookup_by_message_id(db_session: Session) -> None:
    entry = add_ledger_entry(db_session, "<1.abc@mail.hoster.example>", account="alice",
                             customer="C-1001", script="/home/alice/form.php", client="198.51.100.4",
                             sender="alice@shop.example")
    later = add_ledger_entry(db_session, "1.abc@mail.hoster.example", account="mallory")
    db_session.commit()
    assert later is entry
    found = ledger_entry(db_session, "1.abc@mail.hoster.example")
    assert found is not None
    assert (found.account, found.customer, found.client) == ("alice", "C-1001", "198.51.100.4")
    assert ledger_entry(db_session, "<unknown@mail.hoster.example>") is None
    assert ledger_entry(db_session, "") is None
    assert count(db_session, LedgerEntry) == 1


def test_tokens_are_stored_hashed(db_session: Session) -> None:
    row, token = create_token(db_session, "webhook-1", TokenRole.INGEST)
    db_session.commit()
    assert token.startswith("rct_") and len(token) > 40
    assert token not in {row.token_sha256, row.name}
    assert row.token_sha256 == hash_token(token)
    assert find_token(db_session, token) is row
    assert token_by_hash(db_session, hash_token(token)) is row
    assert find_token(db_session, token + "x") is None
    assert revoke_token(db_session, "webhook-1", at=datetime.now(UTC))
    assert not revoke_token(db_session, "webhook-1")
    assert find_token(db_session, token) is None
    assert token_by_hash(db_session, hash_token(token)) is row


def test_token_role_is_checked(db_session: Session) -> None:
    with pytest.raises(ValueError, match="'root' is not a valid TokenRole"):
        create_token(db_session, "x", "root")
    assert count(db_session, ApiToken) == 0


def test_hash_token_is_sha256() -> None:
    # SHA-256("abc"), FIPS 180-2 appendix B.1.
    assert hash_token("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_imap_state_is_created_once_and_remembered(db_engine: Engine, db_session: Session) -> None:
    state = imap_state(db_session, "fbl")
    assert (state.uidvalidity, state.last_uid) == (None, 0)
    state.uidvalidity, state.last_uid = 3_857_529_045, 4_294_967_295  # both unsigned 32-bit in IMAP
    db_session.commit()
    with session_factory(db_engine)() as other:
        again = imap_state(other, "fbl")
        assert (again.id, again.uidvalidity, again.last_uid) == (state.id, 3_857_529_045, 4_294_967_295)


def test_hash_recipient_is_hmac_sha256() -> None:
    # RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert hash_recipient("what do ya want for nothing?", "Jefe") == expected
    assert hash_recipient(" What do ya want for NOTHING?\n", b"Jefe") == expected


def test_hash_recipient_is_stable_and_salt_dependent() -> None:
    one = hash_recipient("Someone@AOL.com", "salt-1")
    assert one == hash_recipient("someone@aol.com", "salt-1")
    assert one != hash_recipient("someone@aol.com", "salt-2")
    assert one != hash_recipient("other@aol.com", "salt-1")


@pytest.mark.parametrize(("address", "domain"), [
    ("Someone@AOL.com", "aol.com"), ("<a@b.example>", "b.example"), ("no-at-sign", ""),
])
def test_recipient_domain(address: str, domain: str) -> None:
    assert recipient_domain(address) == domain
