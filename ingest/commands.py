"""The command line of the storage and ingest side: ``db``, ``import``, ``reprocess``, ``token``.

``app.py`` registers them (``cli_commands(settings_of)``) and hands over how to get the settings,
so that every command loads them the same way (``--config``, ``RICOCHET_*``).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import Any

import click
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from config import Settings
from ingest.importer import import_paths
from ingest.pipeline import IngestResult
from ingest.reprocess import quarantined_ids, reprocess_ids
from ingest.runtime import Runtime
from ingest.sources import SourceError, SourceMessage
from storage import ApiToken, TokenRole, create_token, revoke_token

__all__ = ["SettingsOf", "cli_commands", "require_schema"]

SettingsOf = Callable[[click.Context], Settings]


def cli_commands(settings_of: SettingsOf) -> list[click.Command]:
    """The commands, reading their settings with ``settings_of(ctx)``."""
    return [_db(settings_of), _import(settings_of), _reprocess(settings_of), _token(settings_of)]


def _where(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _db(settings_of: SettingsOf) -> click.Group:
    @click.group("db")
    def db() -> None:
        """The database: create or migrate its tables."""

    @db.command()
    @click.pass_context
    def upgrade(ctx: click.Context) -> None:
        """Create the tables, or migrate them to the newest revision ([database].url)."""
        from storage import migrate  # Alembic is loaded only for this command

        settings = settings_of(ctx)
        migrate.upgrade(settings.database.url)
        click.echo(f"{_where(settings.database.url)} is at revision {migrate.current(settings.database.url)}")

    return db


def require_schema(ctx: click.Context, url: str) -> None:
    """Stop with a sentence when the database's tables are missing or older than this code."""
    # Reading the revision is not news: keep Alembic's INFO lines (it logs even on import) for
    # `db upgrade`.
    alembic_log = logging.getLogger("alembic")
    level = alembic_log.level
    alembic_log.setLevel(max(level, logging.WARNING))
    try:
        from storage import migrate

        at, wanted = migrate.current(url), migrate.head()
    except SQLAlchemyError as error:
        click.echo(f"Error: cannot open the database {_where(url)} ({str(error).splitlines()[0]}); "
                   "check [database].url", err=True)
        ctx.exit(2)
    finally:
        alembic_log.setLevel(level)
    if at != wanted:
        state = "has no tables yet" if at is None else f"is at revision {at}, not {wanted}"
        click.echo(f"Error: the database {_where(url)} {state}; run: python app.py db upgrade", err=True)
        ctx.exit(2)


def _runtime(ctx: click.Context, settings_of: SettingsOf) -> Runtime:
    settings = settings_of(ctx)
    require_schema(ctx, settings.database.url)
    return Runtime.from_settings(settings)


def _progress_bar(quiet: bool) -> Any:
    from tqdm import tqdm  # type: ignore[import-untyped]

    # On standard error, and only for a person watching: no bar in logs, pipes or cron mail.
    return tqdm(unit=" msg", file=sys.stderr, disable=quiet or not sys.stderr.isatty(), dynamic_ncols=True)


def _import(settings_of: SettingsOf) -> click.Command:
    @click.command("import")
    @click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
    @click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
    @click.option("--batch-size", type=click.IntRange(1, 100_000), default=None,
                  help="Messages per commit (default: [ingest].import_batch_size).")
    @click.argument("paths", nargs=-1, required=True, metavar="PATH...")
    @click.pass_context
    def import_(ctx: click.Context, quiet: bool, as_json: bool, batch_size: int | None,
                paths: tuple[str, ...]) -> None:
        """Store and process every message in PATH... (maildirs, mbox files, directories of .eml).

        Already stored messages count as duplicates, so an import can be run again safely.
        Prints a summary at the end; exits with status 1 when a message could not be stored.
        """
        settings = settings_of(ctx)
        require_schema(ctx, settings.database.url)
        with Runtime.from_settings(settings) as runtime, _progress_bar(quiet) as bar:
            def progress(message: SourceMessage, result: IngestResult | None, error: str | None) -> None:
                bar.update(1)
                if error is not None:
                    bar.write(f"{message.path}: {error}", file=sys.stderr)

            try:
                summary = import_paths(runtime.sessions, runtime.pipeline, paths,
                                       batch_size=batch_size or settings.ingest.import_batch_size,
                                       progress=progress)
            except SourceError as error:
                click.echo(f"Error: {error}", err=True)
                ctx.exit(2)
        if as_json:
            click.echo(json.dumps(summary.as_dict(), ensure_ascii=False))
        else:
            for line in summary.lines():
                click.echo(line)
        if summary.failed:
            ctx.exit(1)

    return import_


def _reprocess(settings_of: SettingsOf) -> click.Command:
    @click.command("reprocess")
    @click.option("--all-quarantined", is_flag=True, help="Every quarantined message.")
    @click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
    @click.argument("ids", nargs=-1, type=int, metavar="[ID...]")
    @click.pass_context
    def reprocess(ctx: click.Context, all_quarantined: bool, quiet: bool, ids: tuple[int, ...]) -> None:
        """Run the pipeline again on stored messages (after a fix), replacing their events.

        Give message ids, or --all-quarantined. Exits with status 1 when an id is unknown or a
        message could not be written.
        """
        if all_quarantined == bool(ids):
            raise click.UsageError("give message IDs or --all-quarantined (one of the two)")
        settings = settings_of(ctx)
        require_schema(ctx, settings.database.url)
        with Runtime.from_settings(settings) as runtime, _progress_bar(quiet) as bar:
            if all_quarantined:
                with runtime.sessions() as session:
                    ids = tuple(quarantined_ids(session))
            bar.total = len(ids)
            summary = reprocess_ids(runtime.sessions, runtime.pipeline, ids,
                                    batch_size=settings.ingest.import_batch_size,
                                    progress=lambda *_: bar.update(1))
        for line in summary.lines():
            click.echo(line)
        if summary.missing or summary.failed:
            ctx.exit(1)

    return reprocess


def _token(settings_of: SettingsOf) -> click.Group:
    @click.group("token")
    def token() -> None:
        """API bearer tokens: create, list, revoke."""

    @token.command()
    @click.argument("name")
    @click.option("--role", required=True, type=click.Choice([role.value for role in TokenRole]),
                  help="ingest: POST /v1/ingest; viewer: read the API; admin: everything; "
                       "mta: policy queries.")
    @click.pass_context
    def create(ctx: click.Context, name: str, role: str) -> None:
        """Create a token NAME and print it: it is shown this once, and stored only hashed."""
        if not name.strip() or len(name) > 100:
            raise click.BadParameter("must be 1 to 100 characters", param_hint="NAME")
        with _runtime(ctx, settings_of) as runtime, runtime.sessions() as session:
            try:
                with session.begin():
                    _, secret = create_token(session, name.strip(), role)
            except IntegrityError:
                # Revoked tokens keep their name, so that the audit trail stays unambiguous.
                click.echo(f"Error: a token named {name.strip()!r} exists already "
                           "(python app.py token list); choose another name", err=True)
                ctx.exit(1)
        click.echo(secret)
        click.echo(f"token {name.strip()!r} ({role}) created; it is shown only now, keep it safe.", err=True)

    @token.command("list")
    @click.pass_context
    def list_(ctx: click.Context) -> None:
        """List the tokens: name, role, created, revoked (never the token itself)."""
        with _runtime(ctx, settings_of) as runtime, runtime.sessions() as session:
            rows = session.scalars(select(ApiToken).order_by(ApiToken.name)).all()
        if not rows:
            click.echo("no token yet: python app.py token create NAME --role ingest|viewer|admin|mta")
            return
        width = max(len(row.name) for row in rows)
        for row in rows:
            revoked = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}Z" if row.revoked_at else "active"
            created = f"created {row.created_at:%Y-%m-%d %H:%M}Z"
            click.echo(f"{row.name:<{width}}  {row.role:<7}  {created}  {revoked}")

    @token.command()
    @click.argument("name")
    @click.pass_context
    def revoke(ctx: click.Context, name: str) -> None:
        """Revoke the token NAME: requests with it are refused from now on."""
        with _runtime(ctx, settings_of) as runtime, runtime.sessions() as session:
            done = _revoke(session, name)
        if not done:
            click.echo(f"Error: no active token named {name!r} (python app.py token list shows them)",
                       err=True)
            ctx.exit(1)
        click.echo(f"token {name!r} revoked")

    return token


def _revoke(session: Session, name: str) -> bool:
    with session.begin():
        return revoke_token(session, name)
