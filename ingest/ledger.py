"""The Message-ID ledger seen through attribution's ``Ledger`` protocol.

``attribution`` is pure and calls a plain function; this adapter answers it from the
``message_ledger`` table in the pipeline's session. Both sides key a Message-ID without its angle
brackets (``attribution.normalize_message_id`` and ``storage.normalize_message_id`` agree on
``<id@host>`` and ``id@host``); the key is normalised again here with storage's rule, as
``storage.ledger_entry`` does.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

import attribution
from storage import LedgerEntry, normalize_message_id, recipient_domain, rows_in

__all__ = ["PrefetchedLedger", "SessionLedger"]

# storage.ledger_entry's query, built once and read as plain rows: the pipeline asks it for nearly
# every message, and building an ORM select each time cost more than the lookup itself.
_COLUMNS = (LedgerEntry.account, LedgerEntry.script, LedgerEntry.customer, LedgerEntry.client,
            LedgerEntry.sender)
_BY_MESSAGE_ID = select(*_COLUMNS).where(LedgerEntry.message_id == bindparam("message_id"))
_BY_MESSAGE_IDS = (select(LedgerEntry.message_id, *_COLUMNS)
                   .where(LedgerEntry.message_id.in_(bindparam("message_ids", expanding=True))))


class SessionLedger:
    """``attribution.Ledger`` over the ``message_ledger`` table, in the caller's session."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def __call__(self, message_id: str, /) -> attribution.LedgerEntry | None:
        """What our MTA recorded for ``message_id``, or None."""
        key = normalize_message_id(message_id)
        if not key:
            return None
        row = self._session.connection().execute(_BY_MESSAGE_ID, {"message_id": key}).first()
        return None if row is None else _entry(*row)


class PrefetchedLedger(SessionLedger):
    """``SessionLedger`` that reads the entries of many Message-IDs in one query first.

    For a batch of messages: the Message-IDs their originals carry are looked up together; one
    that attribution asks for and was not among them is looked up on its own, as by SessionLedger.
    """

    def __init__(self, session: Session, message_ids: Iterable[str]) -> None:
        super().__init__(session)
        keys = {key for key in map(normalize_message_id, message_ids) if key}
        rows = rows_in(session.connection(), _BY_MESSAGE_IDS, "message_ids", keys) if keys else ()
        self._entries: dict[str, attribution.LedgerEntry | None] = dict.fromkeys(keys)
        self._entries.update({row[0]: _entry(*row[1:]) for row in rows})

    def __call__(self, message_id: str, /) -> attribution.LedgerEntry | None:
        """What our MTA recorded for ``message_id``, or None."""
        key = normalize_message_id(message_id)
        if key in self._entries:
            return self._entries[key]
        return super().__call__(message_id)


def _entry(account: str | None, script: str | None, customer: str | None, client: str | None,
           sender: str | None) -> attribution.LedgerEntry:
    # The ledger keeps the envelope sender; attribution wants the sending domain.
    return attribution.LedgerEntry(account=account or "", script=script or "", customer=customer or "",
                                   domain=recipient_domain(sender or ""), client=client or "")
