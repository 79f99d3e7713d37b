"""Serve a Flask app with waitress until SIGTERM or SIGINT, then stop cleanly.

Waitress alone dies of SIGTERM (exit -15, no word in the log) and prints a
traceback on Ctrl-C. Here either signal ends the serving loop: open requests
finish, `on_stop` runs (the NSC service stops its push thread), a log line says
so, and the process exits 0.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

from waitress.server import create_server

# Waitress itself refuses bodies this many times over the app's limit, from the
# headers alone (413, plain text): a body that large is never spooled to disk.
WAITRESS_BODY_FACTOR = 64


def serve_until_stopped(
    app: Any,
    *,
    host: str,
    port: int,
    threads: int,
    ident: str,
    max_body_bytes: int,
    log: logging.Logger,
    on_stop: Callable[[], None] | None = None,
) -> None:
    """Serve `app` on host:port; return after SIGTERM/SIGINT once requests are done."""
    server: Any = create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        ident=ident,
        max_request_body_size=max_body_bytes * WAITRESS_BODY_FACTOR,
    )
    stop_signal: list[str] = []

    def _stop(signum: int, _frame: FrameType | None) -> None:
        stop_signal.append(signal.Signals(signum).name)
        # waitress's loop ends on SystemExit and shuts its worker threads down itself.
        raise SystemExit(0)

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    log.info("%s serving on http://%s:%s", ident, host, server.effective_port)
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.close()
        if on_stop is not None:
            on_stop()
    log.info("%s stopped (%s)", ident, stop_signal[0] if stop_signal else "loop ended")
