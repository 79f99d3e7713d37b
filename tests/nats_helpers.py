"""Helpers for tests that talk to a real nats-server."""

from __future__ import annotations

import asyncio
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
