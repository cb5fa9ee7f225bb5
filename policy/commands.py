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

import click

from policy.cache import DecisionCache
from policy.engine import MemorySendSink, PolicyEngine
from policy.server import DEFAULT_LISTEN, ServerOptions, parse_listen, serve
from policy.texts import PolicyConfig

__all__ = ["EngineFactory", "memory_engine", "policyd", "policyd_command"]

EngineFactory = Callable[[click.Context], AbstractContextManager[PolicyEngine]]


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


def policyd_command(open_engine: EngineFactory) -> click.Command:
    """The ``policyd`` click command serving the engine ``open_engine`` yields."""

    @click.command("policyd")
    @click.option("--listen", "listen", multiple=True, default=[DEFAULT_LISTEN], show_default=True,
                  callback=_check_listen, metavar="HOST:PORT|unix:PATH",
                  help="Where to listen; repeat for several (TCP and a unix socket).")
    @click.option("--idle-timeout", type=click.FloatRange(min=1), default=600.0, show_default=True,
                  help="Seconds after which an idle connection is closed (Postfix closes its own at 300).")
    @click.option("--max-connections", type=click.IntRange(min=1), default=1000, show_default=True,
                  help="Open connections beyond which a new one is closed at once.")
    @click.pass_context
    def policyd(ctx: click.Context, listen: tuple[str, ...], idle_timeout: float,
                max_connections: int) -> None:
        """Answer Postfix policy delegation and Exim ${readsocket} lookups (docs/mta.md)."""
        options = ServerOptions(idle_timeout=idle_timeout, max_connections=max_connections)
        with open_engine(ctx) as engine:
            serve(engine, listen, options)

    return policyd


policyd = policyd_command(memory_engine)
