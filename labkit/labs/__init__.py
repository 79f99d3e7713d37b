"""The labs: one module each, with the server's router and the client helpers."""

from __future__ import annotations

from labkit.labs import caching, echo, ping_pong
from labkit.server.router import Router


def lab_router() -> Router:
    """Every lab's routes, as the application server serves them."""
    app = Router("labkit labs")
    for lab in (echo, caching, ping_pong):
        app.include_router(lab.router)
    return app
