"""``python app.py report [--week 2026-W48] [--format html|csv|json] [--output PATH] [--mail]``.

docs/reports.md describes it.

``--mail`` sends the report at once, as the weekly job does (reports/mail.py), and says who did
not get it; it does not queue a retry: the operator who asked sees the error and can ask again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import click
from sqlalchemy.exc import DBAPIError

from config import Settings
from reports.build import Report, build_report, last_week, parse_week
from reports.mail import NotMailed, ReportMailer, ReportTexts
from reports.render import render_csv, render_html, render_json
from storage.engine import make_engine, session_factory

__all__ = ["report_command"]

SettingsOf = Callable[[click.Context], Settings]
_RENDERERS = {"html": render_html, "csv": render_csv, "json": render_json}


def report_command(settings_of: SettingsOf) -> click.Command:
    """The ``report`` command, reading its settings with ``settings_of(ctx)``."""

    @click.command("report")
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
        """Build the weekly reputation report of any week from the database."""
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

    return report


def _build(ctx: click.Context, settings: Settings, week: str) -> Report:
    """The report of ``week``; exits with a sentence when the database cannot be read."""
    engine = make_engine(settings.database.url)
    try:
        with session_factory(engine)() as session:
            return build_report(session, week, settings.reputation.rules)
    except DBAPIError as error:
        first = (str(error.orig).strip().splitlines() or [""])[0]
        click.echo(f"Error: cannot read the database ({first}); a new one needs "
                   "`python app.py db upgrade`", err=True)
        ctx.exit(2)
    finally:
        engine.dispose()


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
