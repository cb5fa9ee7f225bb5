"""Ricochet's entry points: the Flask app factory and the command line. Wiring only.

    python app.py --help
    python app.py serve
    python app.py parse [--jsonl] PATH...
    python app.py collect imap --once
    tail -F /var/log/mail.log | python app.py maillog -
    python app.py scheduler
    python app.py policyd --listen 127.0.0.1:10040 --listen unix:/run/ricochet/policy.sock
    python app.py identity show account alice@example.com
    python app.py user add alice --role admin
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
from collections.abc import Iterator, Sequence
from importlib import metadata
from types import FrameType
from typing import Any

import click
from flask import Flask
from waitress.server import create_server

import web
from config import ConfigError, Settings, load_settings
from ingest import SourceError, classify_source, iter_messages
from ingest.commands import cli_commands as ingest_commands
from ingest.maillog_command import maillog_command
from ingest.runtime import Runtime
from jobs.commands import cli_commands as jobs_commands
from jobs.identity_commands import identity_command
from policy.commands import policyd_command
from policy.engine import PolicyEngine
from policy.server import ServerOptions
from reports.commands import report_command
from web.dashboard.user_commands import user_command

__all__ = ["cli", "create_app", "waitress_options"]


def create_app(settings: Settings, runtime: Runtime | None = None) -> Flask:
    """Build the HTTP application for ``settings``, serving from ``runtime`` (built from them if None).

    Whoever built the Runtime closes it when the app is done (``serve`` does, when it stops).
    """
    app = Flask("ricochet")
    app.extensions["ricochet.settings"] = settings
    web.init_app(app, runtime or Runtime.from_settings(settings))
    version = _version()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": version}

    return app


def _version() -> str:
    try:
        return metadata.version("ricochet")
    except metadata.PackageNotFoundError:  # run from a checkout that was never pip-installed
        return "0+unknown"


def _settings(ctx: click.Context) -> Settings:
    """Load the settings once per run; a bad one prints its sentence and exits with status 2."""
    root = ctx.find_root()
    settings = root.meta.get("ricochet.settings")
    if isinstance(settings, Settings):
        return settings
    try:
        settings = load_settings(root.params.get("config_path"))
    except ConfigError as error:
        click.echo(f"Error: {error}", err=True)
        ctx.exit(2)
    root.meta["ricochet.settings"] = settings
    _configure_logging(settings.log.level)
    return settings


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # flufl.bounce logs every detector it runs at INFO: keep that for DEBUG runs only.
    if level != "DEBUG":
        logging.getLogger("flufl.bounce").setLevel(logging.WARNING)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", envvar="RICOCHET_CONFIG", metavar="FILE",
              type=click.Path(dir_okay=False),
              help="A TOML file whose keys override config/default.toml [env: RICOCHET_CONFIG].")
def cli(config_path: str | None) -> None:
    """Ricochet: stops outgoing spam from bounces and complaints."""


@cli.command()
@click.pass_context
def serve(ctx: click.Context) -> None:
    """Run the HTTP service on [server].host and [server].port, [server].threads requests at once.

    Waitress serves it. SIGTERM (docker stop, systemd) stops it as Ctrl-C does: the requests in
    progress are answered, the webhook's committer commits what it holds, the policy node flushes.
    """
    settings = _settings(ctx)
    with Runtime.from_settings(settings) as runtime:
        try:
            app = create_app(settings, runtime)
        except ConfigError as error:  # e.g. an unreadable [web].secret_key_file
            click.echo(f"Error: {error}", err=True)
            ctx.exit(2)
        server = create_server(app, **waitress_options(settings))
        signal.signal(signal.SIGTERM, _stop)
        server.run()  # returns on SystemExit or KeyboardInterrupt, after its threads are done


def waitress_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of waitress's ``create_server`` for ``settings`` ([server], [api]).

    Waitress reads a whole body (into a temporary file) before the app sees it. Bodies up to four
    times [api].max_body_bytes reach the app, which refuses what is over the limit with its JSON
    413; bigger ones waitress refuses itself, unread, so no client can make it spool a gigabyte.

    With [server].trusted_proxy set, waitress believes that peer's X-Forwarded-For (the client's
    address, ``trusted_proxy_count`` entries from the end) and X-Forwarded-Proto (https); from any
    other peer, and when it is "", those headers are removed before the app sees the request, so
    a client cannot pass for another address.
    """
    server = settings.server
    options: dict[str, Any] = {"host": server.host, "port": server.port, "threads": server.threads,
                               "ident": "ricochet", "max_request_body_size": 4 * settings.api.max_body_bytes,
                               "clear_untrusted_proxy_headers": True}
    if server.trusted_proxy:
        options.update(trusted_proxy=server.trusted_proxy, trusted_proxy_count=server.trusted_proxy_count,
                       trusted_proxy_headers={"x-forwarded-for", "x-forwarded-proto"})
    return options


def _stop(_signal: int, _frame: FrameType | None) -> None:
    """SIGTERM: leave the server's loop the way Ctrl-C does (waitress catches SystemExit too)."""
    raise SystemExit(0)


@cli.command()
@click.option("--jsonl", is_flag=True, help="One JSON object per line instead of indented JSON.")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.pass_context
def parse(ctx: click.Context, jsonl: bool, paths: tuple[str, ...]) -> None:
    """Classify and parse every message in PATH... (files, directories, maildirs, mbox files).

    Prints one JSON object per message: file, kind, records, complaint, original, errors.
    """
    settings = _settings(ctx)
    try:
        messages = iter_messages(paths, settings.parse.max_message_bytes)
    except SourceError as error:
        click.echo(f"Error: {error}", err=True)
        ctx.exit(2)
    for message in messages:
        result = classify_source(message)
        text = json.dumps(result, ensure_ascii=False) if jsonl else json.dumps(result, ensure_ascii=False,
                                                                               indent=2)
        # Bytes, so that output is UTF-8 whatever the locale; unpaired surrogates become "?".
        click.echo(text.encode("utf-8", "replace"))


# db upgrade, import, reprocess, token create|list|revoke (ingest/commands.py).
for _command in ingest_commands(_settings):
    cli.add_command(_command)
cli.add_command(maillog_command(_settings))  # maillog PATH... (ingest/maillog_command.py)
# scheduler, collect imap --once (jobs/commands.py).
for _command in jobs_commands(_settings):
    cli.add_command(_command)
cli.add_command(identity_command(_settings))  # identity show|allow|... (jobs/identity_commands.py)
cli.add_command(report_command(_settings))  # report --week 2026-W48 (reports/commands.py)
cli.add_command(user_command(_settings))  # user add|list|passwd|... (web/dashboard/user_commands.py)



@contextlib.contextmanager
def _policy_engine(ctx: click.Context) -> Iterator[PolicyEngine]:
    """The policy engine of this process, its refresher and flusher running (policy/node.py)."""
    with Runtime.from_settings(_settings(ctx)) as runtime:  # closing it stops the loops and flushes
        runtime.policy.start()
        yield runtime.policy.engine


def _policy_server(ctx: click.Context) -> tuple[Sequence[str], ServerOptions]:
    policy = _settings(ctx).policy
    return policy.listen, policy.options


cli.add_command(policyd_command(_policy_engine, _policy_server))  # policyd (policy/commands.py, docs/mta.md)

if __name__ == "__main__":
    cli()
