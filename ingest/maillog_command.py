"""``python app.py maillog PATH...``: fill the Message-ID ledger from Postfix or Exim logs, and record
the delivery failures they log as bounces.

The reading is ``maillog`` (pure), the writing ``ingest.maillog``; this module is the command line
around them. ``app.py`` registers it like the other commands.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType

import click

from ingest.commands import SettingsOf, require_schema
from ingest.maillog import LedgerFill, fill_ledger, log_lines
from ingest.runtime import Runtime

__all__ = ["maillog_command"]


def maillog_command(settings_of: SettingsOf) -> click.Command:
    """The ``maillog`` command, reading its settings with ``settings_of(ctx)``."""

    @click.command("maillog")
    @click.option("--batch-size", type=click.IntRange(1, 100_000), default=500, show_default=True,
                  help="Facts per commit.")
    @click.option("--commit-seconds", type=click.FloatRange(0.05, 60), default=1.0, show_default=True,
                  help="Commit facts that waited this long, even when the batch is not full.")
    @click.option("--authenticated-only", is_flag=True,
                  help="Only messages submitted with SMTP AUTH or by a local user (no inbound mail).")
    @click.option("--no-bounces", is_flag=True,
                  help="Fill the ledger only; do not record the delivery failures the log shows.")
    @click.argument("paths", nargs=-1, required=True, metavar="PATH...")
    @click.pass_context
    def maillog(ctx: click.Context, batch_size: int, commit_seconds: float, authenticated_only: bool,
                no_bounces: bool, paths: tuple[str, ...]) -> None:
        """Record who sent each message of the Postfix or Exim logs PATH... in the Message-ID ledger,
        and each delivery failure (bounced or deferred recipient) they log as a bounce.

        PATH is a log file (plain or gzip, rotated logs too: give them oldest first) or - for
        standard input, read until it ends: `tail -F /var/log/mail.log | python app.py maillog -`
        keeps the ledger filled, committing at least every --commit-seconds. A Message-ID already
        in the ledger keeps its first entry; a failure is stored as a DSN made of its log lines
        (source maillog), once however often the log is read. Prints a summary at the end; exits with status 1
        when a file could not be read to its end, 2 when a path does not exist.
        """
        missing = [path for path in paths if path != "-" and not Path(path).is_file()]
        if missing:
            click.echo(f"Error: no such file: {', '.join(missing)}", err=True)
            ctx.exit(2)
        settings = settings_of(ctx)
        require_schema(ctx, settings.database.url)
        fill = LedgerFill()
        previous = signal.signal(signal.SIGTERM, _stop)  # systemd's stop: commit what was read, summarise
        try:
            with Runtime.from_settings(settings) as runtime:
                fill_ledger(runtime.sessions, log_lines(paths, sys.stdin.buffer, fill), batch_size=batch_size,
                            commit_seconds=commit_seconds, authenticated_only=authenticated_only, fill=fill,
                            pipeline=None if no_bounces else runtime.pipeline)
        except KeyboardInterrupt:
            pass  # fill_ledger committed what it had read
        finally:
            signal.signal(signal.SIGTERM, previous)
        for line in fill.lines():
            click.echo(line)
        if fill.unreadable or fill.not_stored:
            ctx.exit(1)

    return maillog


def _stop(_signal: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt
