"""What a running Ricochet process holds: its settings, database engine, sessions, pipeline, policy node.

Built once by the entry point (``Runtime.from_settings``) and handed to whoever needs it (the web
app, the IMAP collector, the CLI commands): no module-level globals (STYLE.md, habit 10). The
entry point closes it at the end. The policy node (policy/node.py) is built here but its refresh
and flush loops run only once someone starts them (the web app, ``policyd``); ``close`` stops them.
The webhook's committer (ingest/committer.py) starts with the first message posted; ``close``
commits and answers what it holds, then stops it.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from config import Settings
from ingest.committer import Committer
from ingest.pipeline import Pipeline
from policy.node import PolicyNode
from storage import make_engine, session_factory

__all__ = ["Runtime"]


@dataclass(frozen=True)
class Runtime:
    """The process's shared, thread-safe parts: engine and sessionmaker are safe to share."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    pipeline: Pipeline
    policy: PolicyNode  # the policy engine of this process and its database loops (not started)
    committer: Committer  # the webhook's group commit (started by the first message)

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        """An engine on ``[database].url``, its sessions, and the pipeline built from ``settings``.

        Connects lazily: nothing is opened until the first session is used.
        """
        engine = make_engine(settings.database.url)
        sessions = session_factory(engine)
        pipeline = Pipeline.from_settings(settings)
        return cls(settings=settings, engine=engine, sessions=sessions, pipeline=pipeline,
                   policy=PolicyNode.from_settings(settings, engine, sessions),
                   committer=Committer(sessions, pipeline))

    def close(self) -> None:
        """Stop the committer and the policy node's loops (flushing), close the database connections."""
        self.committer.stop()
        self.policy.stop()
        self.engine.dispose()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
