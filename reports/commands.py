"""``python app.py report [--week 2026-W48] [--format html|csv|json] [--output PATH] [--mail]`` and
``python app.py report import-files [DIR]``.

docs/reports.md describes them. ``report`` builds the report from the database and prints it; it
neither reads nor writes the archive (``weekly_reports``). ``report import-files`` stores in the
archive the reports that versions before migration 0006 kept as files (reports/files.py).

``--mail`` sends the report at once, as the weekly job does (reports/mail.py), and says who did
not get it; it does not queue a retry: the operator who asked sees the error and can ask again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import click
from sqlalchemy.exc import DBAPIError

from config import Settings
from reports.build import Report, build_report, last_week, parse_week
from reports.files import OLD_DIRECTORY, import_files
from reports.mail import NotMailed, ReportMailer, ReportTexts
from reports.render import render_csv, render_html, render_json
from storage.engine import make_engine, session_factory

__all__ = ["report_command"]

SettingsOf = Callable[[click.Context], Settings]
_RENDERERS = {"html": render_html, "csv": render_csv, "json": render_json}


def report_command(settings_of: SettingsOf) -> click.Command:
    """The ``report`` command (and its ``import-files``), reading its settings with ``settings_of(ctx)``."""

    # A group that runs on its own too, so that `report --week W` stays as it was.
    @click.group("report", invoke_without_command=True)
    @click.option("--week", metavar="YYYY-Www",
                  help="The ISO week (UTC), such as 2026-W48 [default: last week].")
    @click.option("--format", "kind", type=click.Choice(sorted(_RENDERERS)), default="html",
                  show_default=True)
    @click.option("--output", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
                  help="Write the report to PATH instead of standard output.")
    @click.option("--mail", is_flag=True,
                  help="Mail it (HTML, CSV and JSON) to [reports].mail_to, or [notify].admins, through "
                       "[notify]'s SMTP relay; prints nothing unless --output is given.")
    @click.pass_context
    def report(ctx: click.Context, week: str | None, kind: str, output: Path | None, mail: bool) -> None:
        """Build the weekly reputation report of any week from the database and print it (the archive
        is neither read nor written); `report import-files` stores the files of older versions."""
        if ctx.invoked_subcommand is not None:
            return
        settings = settings_of(ctx)
        try:
            week = parse_week(week) if week else last_week(datetime.now(UTC))
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--week") from None
        mailer = ReportMailer.from_settings(settings) if mail else None
        if mail and mailer is None:
            click.echo("Error: --mail needs [notify].smtp_host and someone to mail: [reports].mail_to or "
                       "[notify].admins (docs/reports.md)", err=True)
            ctx.exit(2)
        built = _build(ctx, settings, week)
        if mailer is not None:
            _mail(ctx, mailer, built)
            if output is None:
                return
        text = _RENDERERS[kind](built)
        if output is None:
            click.echo(text.encode("utf-8"), nl=False)
        else:
            output.write_text(text, encoding="utf-8")
            click.echo(f"wrote the {kind.upper()} report of {week} to {output}", err=True)

    report.add_command(_import_files(settings_of))
    return report


def _import_files(settings_of: SettingsOf) -> click.Command:
    @click.command("import-files")
    @click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
    @click.pass_context
    def import_files_command(ctx: click.Context, directory: Path | None) -> None:
        """Store the reports that older versions kept as files (<week>.html, .csv, .json in DIRECTORY,
        default [reports].directory, else var/reports) in the database; weeks it has are left alone."""
        settings = settings_of(ctx)
        folder = directory or Path(settings.reports.directory or OLD_DIRECTORY)
        if not folder.is_dir():
            click.echo(f"Error: {folder} is not a directory; name the folder of the old reports "
                       "(var/reports by default)", err=True)
            ctx.exit(2)
        engine = make_engine(settings.database.url)
        try:
            done = import_files(session_factory(engine), folder)
        except DBAPIError as error:
            _database_error(ctx, error)
        finally:
            engine.dispose()
        for week in done.imported:
            click.echo(f"imported the report of {week}")
        for week, why in done.skipped:
            click.echo(f"skipped {week}: {why}")
        click.echo(f"{len(done.imported)} report(s) imported from {folder}, {len(done.skipped)} skipped",
                   err=True)

    return import_files_command


def _build(ctx: click.Context, settings: Settings, week: str) -> Report:
    """The report of ``week``; exits with a sentence when the database cannot be read."""
    engine = make_engine(settings.database.url)
    try:
        with session_factory(engine)() as session:
            return build_report(session, week, settings.reputation.rules)
    except DBAPIError as error:
        _database_error(ctx, error)
    finally:
        engine.dispose()


def _database_error(ctx: click.Context, error: DBAPIError) -> NoReturn:
    """Exit 2 with the database's first line and the usual fix."""
    first = (str(error.orig).strip().splitlines() or [""])[0]
    click.echo(f"Error: cannot use the database ({first}); a new one, or one older than this version, "
               "needs `python app.py db upgrade`", err=True)
    ctx.exit(2)


def _mail(ctx: click.Context, mailer: ReportMailer, report: Report) -> None:
    """Mail ``report`` now; exits 1 naming who did not get it and why."""
    try:
        got = mailer.send(ReportTexts.rendered(report))
    except NotMailed as error:
        if error.delivered:
            click.echo(f"mailed the report of {report.week} to {', '.join(error.delivered)}", err=True)
        click.echo(f"Error: the report of {report.week} was not mailed to {error}", err=True)
        ctx.exit(1)
    click.echo(f"mailed the report of {report.week} to {', '.join(got)}", err=True)
