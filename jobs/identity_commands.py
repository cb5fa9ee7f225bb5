"""``python app.py identity show|allow|block|limit|resume|verdict KIND VALUE``: admins on the command line.

The same actions as ``POST /v1/identities/<kind>/<value>/actions`` (jobs/identity_actions.py), with
the author taken from ``--author`` or the OS user. Each action re-evaluates the identity at once
and prints the decision in force afterwards. Bad input exits with status 2 and one sentence.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable

import click

from config import Settings
from ingest.runtime import Runtime
from jobs.evaluate import Tiers
from jobs.identity_actions import (
    ActionError,
    ActionResult,
    apply_action,
    identity_report,
    parse_expiry,
    parse_identity,
)
from reputation.ruleset import parse_duration
from storage import utcnow

__all__ = ["identity_command"]

SettingsOf = Callable[[click.Context], Settings]


def _default_author() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a container)
        return "cli"


def _fail(ctx: click.Context, error: Exception) -> None:
    click.echo(f"Error: {error}", err=True)
    ctx.exit(2)


def _expiry(expires: str | None) -> tuple[str | None, str | None]:
    """--expires as (time, duration): '24h' is a duration, '2026-12-01T00:00:00Z' a time."""
    if not expires:
        return None, None
    try:
        parse_duration(expires)
    except ValueError:
        return expires, None
    return None, expires


def _print(result: ActionResult) -> None:
    decision = result.decision
    if decision is None:
        click.echo(f"{result.action} recorded (#{result.record_id}); now: ok (allow)")
        return
    click.echo(f"{result.action} recorded (#{result.record_id}); now: {decision.state.value} "
               f"({decision.action.value}): {decision.reason}")


def identity_command(settings_of: SettingsOf) -> click.Group:
    """The ``identity`` command group, reading its settings with ``settings_of(ctx)``."""

    @click.group("identity")
    def identity() -> None:
        """Show an identity's reputation, or correct it (docs/identities.md).

        KIND is account, script, customer, domain, client or ip; VALUE the identity
        (alice@example.com, /home/u/public_html/x.php, ...).
        """

    @identity.command("show")
    @click.argument("kind")
    @click.argument("value")
    @click.pass_context
    def show(ctx: click.Context, kind: str, value: str) -> None:
        """Print the state, decision, counters, overrides, history and recent events as JSON."""
        settings = settings_of(ctx)
        try:
            who = parse_identity(kind, value)
        except ActionError as error:
            _fail(ctx, error)
            return
        with Runtime.from_settings(settings) as runtime, runtime.sessions() as session:
            report = identity_report(session, who, settings.reputation.rules, utcnow())
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))

    def action(name: str, help_text: str, *, per_hour: bool = False, verdict: bool = False) -> None:
        @click.argument("kind")
        @click.argument("value")
        @click.option("--reason", required=True,
                      help="Why (shown with the decision and in the weekly report).")
        @click.option("--author", default=_default_author, show_default="the OS user", help="Who decided.")
        @click.pass_context
        def run(ctx: click.Context, kind: str, value: str, reason: str, author: str,
                expires: str | None = None, limit: int | None = None, judgement: str | None = None,
                decision: int | None = None) -> None:
            settings = settings_of(ctx)
            now = utcnow()
            try:
                who = parse_identity(kind, value)
                at, duration = _expiry(expires)
                expires_at = parse_expiry(at, duration, now)
                with Runtime.from_settings(settings) as runtime, runtime.sessions() as session:
                    result = apply_action(session, who, name, author=author, reason=reason, now=now,
                                          rules=settings.reputation.rules, limit_per_hour=limit,
                                          expires_at=expires_at, verdict=judgement, decision_id=decision,
                                          tiers=Tiers.from_settings(settings.reputation,
                                                                    settings.attribution.rules.directory))
                    session.commit()
            except (ActionError, ValueError) as error:
                _fail(ctx, error)
                return
            _print(result)

        run.__doc__ = help_text
        if verdict:
            run = click.option("--decision", type=click.IntRange(min=1), metavar="ID",
                               help="The history entry judged (default: the latest).")(run)
        else:
            run = click.option("--expires", metavar="WHEN",
                               help="A duration (24h, 7d) or a time (2026-12-01T00:00:00Z); "
                                    "default: never.")(run)
        if per_hour:
            run = click.option("--per-hour", "limit", type=click.IntRange(min=0), required=True,
                               help="Messages allowed an hour.")(run)
        command = identity.command(name)(run)
        if verdict:  # after KIND VALUE
            after = next(i for i, param in enumerate(command.params) if param.name == "value")
            command.params.insert(after + 1, click.Argument(["judgement"], metavar="false_positive|confirmed",
                                                    type=click.Choice(["false_positive", "confirmed"])))

    action("allow", "Allow KIND VALUE whatever the rules say (until --expires).")
    action("block", "Block (reject) KIND VALUE whatever the rules say (until --expires).")
    action("limit", "Throttle KIND VALUE to --per-hour messages an hour (until --expires).", per_hour=True)
    action("resume", "End the throttle, pause, hold or block of KIND VALUE now; it resumes on probation.")
    action("verdict", "Judge KIND VALUE's latest decision (or --decision ID): false_positive or confirmed.",
           verdict=True)
    return identity
