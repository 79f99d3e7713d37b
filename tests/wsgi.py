"""Serve a WSGI app over real HTTP (waitress) in a thread, for tests that need a tweak."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from waitress.server import create_server


@contextmanager
def serve_in_thread(app: Any, threads: int = 8) -> Iterator[str]:
    """Yield the base URL of `app` served by waitress on a free loopback port."""
    server: Any = create_server(app, host="127.0.0.1", port=0, threads=threads)
    thread = threading.Thread(target=server.run, name="waitress-test", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        # Close the sockets inside the server's own loop: closed from this thread, they
        # could vanish under its select() ("Bad file descriptor" in the server thread).
        # With its map empty, the loop returns.
        server.trigger.pull_trigger(lambda: close_every_channel(server))
        thread.join(timeout=5)
        server.task_dispatcher.shutdown()
        if thread.is_alive():  # the loop is stuck: close from here after all
            close_every_channel(server)
            thread.join(timeout=5)


def close_every_channel(server: Any) -> None:
    """Close the listener, every connection and the trigger: all that waitress's loop polls."""
    for channel in list(server._map.values()):
        channel.close()
