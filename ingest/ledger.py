"""The Message-ID ledger seen through attribution's ``Ledger`` protocol.

``attribution`` is pure and calls a plain function; this adapter answers it from the
``message_ledger`` table in the pipeline's session. Both sides key a Message-ID without its angle
brackets (``attribution.normalize_message_id`` and ``storage.normalize_message_id`` agree on
``<id@host>`` and ``id@host``); the key is normalised again here with storage's rule, as
``storage.ledger_entry`` does.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

import attribution
from storage import LedgerEntry, normalize_message_id, recipient_domain

__all__ = ["SessionLedger"]

# storage.ledger_entry's query, built once and read as plain rows: the pipeline asks it for nearly
# every message, and building an ORM select each time cost more than the lookup itself.
_BY_MESSAGE_ID = (select(LedgerEntry.account, LedgerEntry.script, LedgerEntry.customer, LedgerEntry.client,
                         LedgerEntry.sender)
                  .where(LedgerEntry.message_id == bindparam("message_id")))


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
        if row is None:
            return None
        account, script, customer, client, sender = row
        # The ledger keeps the envelope sender; attribution wants the sending domain.
        return attribution.LedgerEntry(account=account or "", script=script or "", customer=customer or "",
                                       domain=recipient_domain(sender or ""), client=client or "")
