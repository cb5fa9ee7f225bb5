"""The pipeline's reads and writes of ``raw_messages``: store the bytes, write the outcome.

Same rules as ``storage.store_raw_message`` (SHA-256 unique, ``INSERT ... ON CONFLICT DO NOTHING``
then read the row that won, so that two writers of the same bytes never fail), with statements
built once and run on the session's connection: the ORM's INSERT ... RETURNING of a whole entity
cost more than a quarter of an import's time (benchmarks/ingest.py). The pipeline needs only the
new row's id and receive time, and writes the outcome with one UPDATE.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from storage import MessageKind, MessageStatus, RawMessage, sha256_hex, utcnow

__all__ = ["Stored", "store", "write_outcome"]

_TABLE = cast(Table, RawMessage.__table__)
_COLUMNS = ("sha256", "source", "source_ref", "received_at", "size", "kind", "status", "compressed")
_OUTCOME = ("status", "kind", "error", "duplicate_of_id", "summary", "processed_at")


def _insert(dialect: Any) -> Any:
    return (dialect.insert(_TABLE)
            .values({name: bindparam(f"new_{name}", type_=_TABLE.c[name].type) for name in _COLUMNS})
            .on_conflict_do_nothing(index_elements=[_TABLE.c.sha256])
            .returning(_TABLE.c.id, _TABLE.c.received_at))


_INSERTS = {"sqlite": _insert(sqlite), "postgresql": _insert(postgresql)}
_BY_SHA256 = (select(_TABLE.c.id, _TABLE.c.received_at, _TABLE.c.kind, _TABLE.c.duplicate_of_id)
              .where(_TABLE.c.sha256 == bindparam("sha256")))
_UPDATE = (update(_TABLE).where(_TABLE.c.id == bindparam("message"))
           .values({name: bindparam(f"new_{name}", type_=_TABLE.c[name].type) for name in _OUTCOME}))


@dataclass(frozen=True)
class Stored:
    """A raw message's row: ``created`` False when the same bytes were stored before."""

    id: int
    received_at: datetime
    kind: str
    created: bool
    duplicate_of: int | None = None


def store(session: Session, raw: bytes, source: str, source_ref: str | None,
          received_at: datetime | None) -> Stored:
    """Store ``raw`` (compressed, status received) unless the same bytes are stored already."""
    connection = session.connection()
    digest = sha256_hex(raw)
    values = {"sha256": digest, "source": source, "source_ref": source_ref,
              "received_at": received_at or utcnow(), "size": len(raw), "kind": MessageKind.OTHER.value,
              "status": MessageStatus.RECEIVED.value, "compressed": RawMessage.compress(raw)}
    statement = _INSERTS.get(connection.dialect.name)
    if statement is None:
        raise ValueError(f"unsupported database backend {connection.dialect.name!r}")
    row = connection.execute(statement, {f"new_{name}": value for name, value in values.items()}).first()
    if row is not None:
        return Stored(row.id, row.received_at, MessageKind.OTHER.value, True)
    # The same bytes were stored before, or by another writer a moment ago: theirs is the one.
    found = connection.execute(_BY_SHA256, {"sha256": digest}).one()
    return Stored(found.id, found.received_at, found.kind, False, found.duplicate_of_id)


def write_outcome(session: Session, message_id: int, values: dict[str, Any]) -> None:
    """Write ``values`` (every column of ``_OUTCOME``) on the message's row, in one UPDATE.

    A RawMessage of that id already in the session (reprocess) is told the new values, without
    being marked changed (which would write them a second time).
    """
    session.connection().execute(_UPDATE, {"message": message_id,
                                           **{f"new_{name}": values[name] for name in _OUTCOME}})
    loaded = session.identity_map.get(session.identity_key(RawMessage, message_id))
    if loaded is not None:
        for name in _OUTCOME:
            set_committed_value(loaded, name, values[name])
