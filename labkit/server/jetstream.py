"""JetStream calls that wait out a NATS cluster settling.

Right after a cluster starts, or while it elects a new leader after losing a node,
JetStream answers "temporarily unavailable" (503) or not at all for a moment. Its
meta leader may also not have heard from every peer yet: it then refuses to place a
replicated stream with "no suitable peers for placement, peer offline" (400, error
10005; seen once in CI, on `labkit up --cluster 3` under load). The server's
start-up calls (create a stream, a consumer, a KV bucket) are idempotent, so they
are simply tried again for a bounded time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import APIError, ServiceUnavailableError

log = logging.getLogger("labkit.server")

T = TypeVar("T")

# What a settling cluster answers; anything else (a bad config, a permission) is final.
UNAVAILABLE: tuple[type[Exception], ...] = (
    ServiceUnavailableError,
    NoRespondersError,
    NatsTimeoutError,
    TimeoutError,
)

# JetStream's error code for "no suitable peers for placement"; of its reasons only
# "peer offline" passes on its own (other reasons, such as too few nodes or no storage,
# stay until someone changes the config).
NO_SUITABLE_PEERS = 10005


def is_settling(exc: Exception) -> bool:
    """True for the answers of a cluster that is still settling, worth trying again."""
    if isinstance(exc, UNAVAILABLE):
        return True
    return (
        isinstance(exc, APIError)
        and exc.err_code == NO_SUITABLE_PEERS
        and "offline" in (exc.description or "")
    )


async def when_available(
    call: Callable[[], Awaitable[T]], what: str, *, timeout: float = 15.0
) -> T:
    """Await `call()`, again while JetStream is unavailable, for at most `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.05
    while True:
        try:
            return await call()
        except Exception as exc:
            if not is_settling(exc) or loop.time() + delay > deadline:
                raise
            log.info("%s: JetStream not available yet (%s); trying again", what, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
