"""The asyncio socket server for Postfix policy delegation and Exim ``${readsocket}`` lookups.

One ``PolicyProtocol`` per connection: bytes go through the connection's ``Decoder``, each
complete request is answered from the ``PolicyEngine`` (memory only, never blocks) and the answers
are written in order. Postfix keeps a connection open and reuses it for many lookups; Exim's
``${readsocket}`` sends one line and reads until the server closes, so an Exim connection is
closed after its answer.

Bad input closes that connection and nothing else: a ``ProtocolError`` (garbage, an over-long
line, a request with a million attributes) is logged at INFO and the transport is aborted. An
idle connection is closed after ``idle_timeout`` (to 2 x ``idle_timeout``: one timer per
connection, re-armed, instead of one per read). Postfix closes its own idle policy connections
after ``smtpd_policy_service_max_idle`` (300 s by default), so the default here is longer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import stat
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from policy.codec import Decoder, Dialect, Limits, ProtocolError, encode_answer
from policy.engine import PolicyEngine

__all__ = ["DEFAULT_LISTEN", "Listen", "PolicyProtocol", "RunningServer", "ServerOptions", "ServerStats",
           "parse_listen",
           "run_in_thread", "serve", "start_servers"]

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:10040"


@dataclass(frozen=True)
class Listen:
    """Where to listen: a TCP ``host``/``port`` or a unix socket ``path``."""

    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.path else f"{self.host}:{self.port}"


def parse_listen(spec: str) -> Listen:
    """``127.0.0.1:10040``, ``[::1]:10040`` or ``unix:/run/ricochet/policy.sock``; ValueError if neither."""
    if spec.startswith("unix:"):
        path = spec[5:]
        if not path:
            raise ValueError(f"--listen {spec!r}: give the socket's path after 'unix:'")
        return Listen(path=path)
    host, sep, port = spec.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen {spec!r}: write HOST:PORT (e.g. 127.0.0.1:10040) or unix:PATH")
    return Listen(host=host, port=int(port))


@dataclass(frozen=True)
class ServerOptions:
    """Bounds of the socket server."""

    limits: Limits = field(default_factory=Limits)
    idle_timeout: float = 600.0  # seconds; longer than Postfix's smtpd_policy_service_max_idle (300 s)
    max_connections: int = 1000  # beyond it a new connection is closed at once (file descriptors)
    socket_mode: int = 0o660  # of a unix socket: give the MTA's group access, not every local user


@dataclass
class ServerStats:
    """Connection counters for monitoring (``live`` holds the open transports, to close them on stop)."""

    connections: int = 0
    open: int = 0
    refused: int = 0
    protocol_errors: int = 0
    idle_closed: int = 0
    requests: int = 0
    by_error: dict[str, int] = field(default_factory=dict)
    live: set[asyncio.Transport] = field(default_factory=set, repr=False)


class PolicyProtocol(asyncio.Protocol):
    """One client connection (Postfix smtpd, or one Exim ``${readsocket}``)."""

    def __init__(self, engine: PolicyEngine, stats: ServerStats, options: ServerOptions,
                 dialect: Dialect | None = None) -> None:
        self._engine = engine
        self._stats = stats
        self._decoder = Decoder(options.limits, dialect)
        self._idle_timeout = options.idle_timeout
        self._max_connections = options.max_connections
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._active = False
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Count the connection; refuse it beyond ``max_connections``; arm the idle timer."""
        # uvloop's transports do not subclass asyncio.Transport, hence a cast and no isinstance check.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        stats = self._stats
        stats.connections += 1
        stats.open += 1
        stats.live.add(transport)
        if stats.open > self._max_connections:
            stats.refused += 1
            log.warning("policy: more than %d connections open; closing a new one", self._max_connections)
            transport.abort()
            return
        self._timer = asyncio.get_running_loop().call_later(self._idle_timeout, self._check_idle)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection."""
        self._stats.open -= 1
        if self._transport is not None:
            self._stats.live.discard(self._transport)
        if self._timer is not None:
            self._timer.cancel()
        self._transport = None

    def _check_idle(self) -> None:
        transport = self._transport
        if transport is None:
            return
        if not self._active and not self._paused:
            self._stats.idle_closed += 1
            transport.close()
            return
        self._active = False
        self._timer = asyncio.get_running_loop().call_later(self._idle_timeout, self._check_idle)

    def data_received(self, data: bytes) -> None:
        """Decode, answer every complete request, write the answers in one go."""
        transport = self._transport
        if transport is None:
            return
        self._active = True
        try:
            requests = self._decoder.feed(data)
        except ProtocolError as error:
            self._protocol_error(transport, error)
            return
        if not requests:
            return
        self._stats.requests += len(requests)
        answer = self._engine.answer
        out = [encode_answer(answer(r.attributes).postfix_action, r.dialect) for r in requests]
        transport.write(out[0] if len(out) == 1 else b"".join(out))
        if requests[-1].dialect is Dialect.EXIM:
            # ${readsocket} reads the answer until end of file (Exim spec, "Expansion items").
            transport.close()

    def _protocol_error(self, transport: asyncio.Transport, error: ProtocolError) -> None:
        stats = self._stats
        stats.protocol_errors += 1
        name = type(error).__name__
        stats.by_error[name] = stats.by_error.get(name, 0) + 1
        peer = transport.get_extra_info("peername")
        log.info("policy: closing the connection from %s: %s", peer or "a unix socket", error)
        transport.abort()

    def eof_received(self) -> bool:
        """The client half-closed (Exim after its line): answers already written, then close."""
        return False

    # Flow control: a client that does not read its answers stops being read (asyncio docs,
    # "Flow Control Callbacks"), so a flood of requests cannot queue unbounded answers.
    def pause_writing(self) -> None:
        """Stop reading while the answer buffer is full."""
        self._paused = True
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        """Read again."""
        self._paused = False
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()


async def start_servers(engine: PolicyEngine, listen: Sequence[Listen], options: ServerOptions | None = None,
                        ) -> tuple[list[asyncio.Server], ServerStats]:
    """Listen on every address of ``listen``; returns the servers (started) and their shared stats."""
    loop = asyncio.get_running_loop()
    stats = ServerStats()
    bounds = options or ServerOptions()

    def factory() -> PolicyProtocol:
        return PolicyProtocol(engine, stats, bounds)

    servers: list[asyncio.Server] = []
    try:
        for where in listen:
            if where.path:
                _remove_stale_socket(where.path)
                server = await loop.create_unix_server(factory, where.path, backlog=512)
                os.chmod(where.path, bounds.socket_mode)
            else:
                server = await loop.create_server(factory, where.host, where.port, backlog=512,
                                                  reuse_address=True)
            servers.append(server)
            log.info("policy: listening on %s", where)
    except OSError:
        for server in servers:
            server.close()
        raise
    return servers, stats


async def _close(servers: Sequence[asyncio.Server], stats: ServerStats) -> None:
    """Stop listening, then close the connections still open (Postfix keeps them for minutes)."""
    for server in servers:
        server.close()
    for transport in list(stats.live):
        transport.abort()
    for server in servers:
        await server.wait_closed()


def _remove_stale_socket(path: str) -> None:
    """Remove a unix socket left by a previous run; refuse to remove anything that is not a socket."""
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            raise OSError(f"{path} exists and is not a socket; remove it or choose another path")
        os.unlink(path)


def serve(engine: PolicyEngine, listen: Sequence[str] = (DEFAULT_LISTEN,),
          options: ServerOptions | None = None) -> None:
    """Serve until SIGINT or SIGTERM (the ``policyd`` command)."""
    addresses = [parse_listen(spec) for spec in listen]

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        servers, stats = await start_servers(engine, addresses, options)
        try:
            await stop.wait()
        finally:
            await _close(servers, stats)

    asyncio.run(main())


class RunningServer:
    """A policy server on its own event loop in a background thread (tests, benchmarks, embedding)."""

    def __init__(self, engine: PolicyEngine, listen: Sequence[str],
                 options: ServerOptions | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="policy-server", daemon=True)
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            start_servers(engine, [parse_listen(s) for s in listen], options), self._loop)
        try:
            self._servers, self.stats = future.result(timeout=10)
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            raise

    @property
    def addresses(self) -> list[str]:
        """Where it listens: ``host:port`` (the real port when 0 was asked) or ``unix:path``."""
        found: list[str] = []
        for server in self._servers:
            for sock in server.sockets:
                name = sock.getsockname()
                found.append(f"unix:{name}" if isinstance(name, str) else f"{name[0]}:{name[1]}")
        return found

    def stop(self) -> None:
        """Close the servers and their connections, and stop the loop's thread."""
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_close(self._servers, self.stats), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_in_thread(engine: PolicyEngine, listen: Sequence[str] = ("127.0.0.1:0",),
                  options: ServerOptions | None = None) -> RunningServer:
    """Start a ``RunningServer``; use it as a context manager or call ``stop()``."""
    return RunningServer(engine, listen, options)
