"""The ``policyd`` command: the Postfix/Exim policy socket server (the lead registers it in app.py).

``policyd_command(open_engine)`` builds the click command around a factory that yields the engine
for the run (a context manager, so that whoever wires the database can start the decision
refresher and the send flusher before serving and stop them after). ``policyd`` is the same
command with an in-memory engine and nothing else: no decisions until something loads them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace

import click

from policy.cache import DecisionCache
from policy.engine import MemorySendSink, PolicyEngine
from policy.server import DEFAULT_LISTEN, ServerOptions, parse_listen, serve
from policy.texts import PolicyConfig

__all__ = ["EngineFactory", "ServerDefaults", "memory_engine", "policyd", "policyd_command"]

EngineFactory = Callable[[click.Context], AbstractContextManager[PolicyEngine]]
# Where to listen and the server's bounds when the command line does not say ([policy] settings).
ServerDefaults = Callable[[click.Context], tuple[Sequence[str], ServerOptions]]


@contextlib.contextmanager
def memory_engine(ctx: click.Context) -> Iterator[PolicyEngine]:
    """An engine with an empty decision cache and an in-memory send sink (development, benchmarks)."""
    yield PolicyEngine(DecisionCache(), MemorySendSink(), PolicyConfig())


def _check_listen(ctx: click.Context, param: click.Parameter, value: Sequence[str]) -> Sequence[str]:
    for spec in value:
        try:
            parse_listen(spec)
        except ValueError as error:
            raise click.BadParameter(str(error).removeprefix(f"--listen {spec!r}: ")) from None
    return value


def _builtin_defaults(ctx: click.Context) -> tuple[Sequence[str], ServerOptions]:
    return [DEFAULT_LISTEN], ServerOptions()


def policyd_command(open_engine: EngineFactory,
                    defaults: ServerDefaults = _builtin_defaults) -> click.Command:
    """The ``policyd`` click command serving the engine ``open_engine`` yields.

    What the command line leaves out comes from ``defaults(ctx)`` (app.py: the [policy] settings).
    """

    @click.command("policyd")
    @click.option("--listen", "listen", multiple=True, callback=_check_listen, metavar="HOST:PORT|unix:PATH",
                  help="Where to listen; repeat for several (TCP and a unix socket). "
                       f"[default: [policy].listen, else {DEFAULT_LISTEN}]")
    @click.option("--idle-timeout", type=click.FloatRange(min=1), default=None,
                  help="Seconds after which an idle connection is closed (Postfix closes its own at 300). "
                       "[default: [policy].idle_timeout, else 600]")
    @click.option("--max-connections", type=click.IntRange(min=1), default=None,
                  help="Open connections beyond which a new one is closed at once. "
                       "[default: [policy].max_connections, else 1000]")
    @click.pass_context
    def policyd(ctx: click.Context, listen: tuple[str, ...], idle_timeout: float | None,
                max_connections: int | None) -> None:
        """Answer Postfix policy delegation and Exim ${readsocket} lookups (docs/mta.md)."""
        default_listen, options = defaults(ctx)
        if idle_timeout is not None:
            options = replace(options, idle_timeout=idle_timeout)
        if max_connections is not None:
            options = replace(options, max_connections=max_connections)
        with open_engine(ctx) as engine:
            serve(engine, listen or default_listen, options)

    return policyd


policyd = policyd_command(memory_engine)
