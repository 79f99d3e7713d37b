"""Helpers for tests that talk to a real nats-server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import nats
import pytest
from nats.aio.client import Client, RawCredentials
from nats.errors import Error as NatsError

from labkit.client import connect_as


@dataclass
class Observed:
    """What a connection's callbacks reported."""

    errors: list[str] = field(default_factory=list)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)


async def observed_connection(creds: str, servers: str, **options: Any) -> tuple[Client, Observed]:
    """Connect with callbacks that record errors, disconnects and close."""
    seen = Observed()

    async def on_error(exc: Exception) -> None:
        seen.errors.append(str(exc))

    async def on_disconnect() -> None:
        seen.disconnected.set()

    async def on_close() -> None:
        seen.closed.set()

    options.setdefault("allow_reconnect", False)
    nc = await connect_as(
        creds,
        servers=servers,
        error_cb=on_error,
        disconnected_cb=on_disconnect,
        closed_cb=on_close,
        **options,
    )
    return nc, seen


def assert_connect_refused(servers: str | list[str], creds: str) -> None:
    """Connecting with `creds` must fail with the server's "Authorization Violation"."""

    async def connect() -> None:
        await nats.connect(
            servers,
            user_credentials=RawCredentials(creds),
            allow_reconnect=False,
            max_reconnect_attempts=0,
            connect_timeout=2,
        )

    with pytest.raises(NatsError, match="(?i)authorization violation"):
        asyncio.run(connect())


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll until `condition()` holds; fail saying `what` did not happen within `timeout`.

    The timeout is a generous bound for a stuck test, never a measurement: on a busy
    machine the condition may take a while, and that is fine.
    """
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"{what} did not happen within {timeout} s") from None


async def sentinel_through(
    nc: Client,
    subject: str,
    *,
    sender: Client | None = None,
    after: Sequence[Client] = (),
    timeout: float = 10.0,
) -> None:
    """Return once a sentinel sent now on `subject` has reached `nc` through the server.

    The "nothing arrived" check without a fixed sleep: first each connection in
    `after` (the ones that sent the forbidden messages) is flushed, so the server has
    handled what they sent; then `sender` (default `nc`) publishes the sentinel. The
    server delivers to `nc` in order, so once the sentinel is here, anything it
    delivered to `nc` before has been read off the socket too: a subscription without
    a callback shows it in `pending_msgs`. `nc` must be allowed to subscribe to
    `subject`, and `sender` to publish on it.
    """
    sentinel = await nc.subscribe(subject)
    await nc.flush()
    for connection in after:
        await connection.flush()
    token = f"sentinel-{uuid.uuid4().hex}".encode()
    await (sender or nc).publish(subject, token)
    msg = await sentinel.next_msg(timeout=timeout)
    assert msg.data == token, f"expected the sentinel on {subject}, got {msg.data!r}"
    await sentinel.unsubscribe()
