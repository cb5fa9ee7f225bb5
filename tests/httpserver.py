"""The production HTTP server of ``python app.py serve`` (waitress), run in a thread for a test.

``serving(app)`` listens on 127.0.0.1 on a free port and yields it; at the end the server stops
the way ``serve`` does on SIGTERM: it stops accepting, lets its threads finish, closes its sockets.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from waitress import wasyncore
from waitress.server import BaseWSGIServer, create_server

__all__ = ["serving"]


@contextmanager
def serving(app: Flask, threads: int = 8, options: dict[str, Any] | None = None) -> Iterator[int]:
    """Serve ``app`` with waitress on 127.0.0.1 (a free port) in a thread; yields the port.

    ``options`` are more of ``create_server``'s (``app.waitress_options``: those of ``serve``).
    """
    server = create_server(app, **{**(options or {}), "host": "127.0.0.1", "port": 0, "threads": threads})
    assert isinstance(server, BaseWSGIServer)  # one address: one server, not a MultiSocketServer
    loop: Any = server  # typeshed's stubs lack effective_port, type the trigger as an int, omit the map
    thread = threading.Thread(target=server.run, name="waitress-test-server", daemon=True)
    thread.start()
    try:
        yield int(loop.effective_port)
    finally:
        # Close every channel from the server's own loop (asyncore is not thread-safe): with its
        # map empty the loop ends; then the worker threads are let go.
        try:
            loop.trigger.pull_trigger(lambda: wasyncore.close_all(loop._map))
        except OSError:
            # The loop had closed its trigger already (EBADF, seen once in CI): close its channels
            # from here; the loop then finds its map empty at its next poll (1 s at most) and ends.
            wasyncore.close_all(loop._map)
        thread.join(timeout=10)
        server.task_dispatcher.shutdown()
