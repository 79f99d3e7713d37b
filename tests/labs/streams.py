"""Helpers for the stream echo tests: users, a learner's client, the server's view of the stream."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nats.aio.client import Client

from labkit.buffer import Buffer
from labkit.client import connect_as
from labkit.labs import lab_server
from labkit.labs.stream_echo import (
    StreamEchoClient,
    reply_consumer,
    request_subject,
    stream_state,
)
from labkit.nsc.wrapper import Nsc
from labkit.server.runner import Server
from labkit.settings import Settings
from labkit.subjects import ECHO_STREAM_NAME


def unique_user(role: str) -> str:
    """A user of its own for one test module (the NSC store and the stream outlive tests)."""
    return f"se-{role}-{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def running_lab_server(settings: Settings) -> AsyncIterator[Server]:
    """The lab server in this process (it creates the stream and its durable consumer)."""
    server = lab_server(settings)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def user_connection(settings: Settings, user: str, **options: Any) -> Client:
    # Off this loop: a lab server in it must answer the announcement.
    creds = (await Nsc.from_settings(settings).create_user_in_thread(user)).creds
    return await connect_as(creds, settings=settings, **options)


async def open_client(nc: Client, user: str, outbox: Path) -> StreamEchoClient:
    """A learner's stream echo client with its outbox in `outbox`."""
    return await StreamEchoClient(nc, user, Buffer(outbox, request_subject(user))).open()


async def server_connection(settings: Settings) -> Client:
    """A connection with the application server's creds: it may inspect the stream."""
    return await connect_as(Nsc.from_settings(settings).server_creds(), settings=settings)


@dataclass(frozen=True)
class Stored:
    """What the stream holds for one user."""

    requests: int
    replies: int


async def stored_for(server_nc: Client, user: str) -> Stored:
    state = await stream_state(server_nc.jetstream(), user)
    return Stored(state.requests, state.replies)


async def read_replies(client: StreamEchoClient, count: int, timeout: float = 10.0) -> list[str]:
    """Exactly `count` replies, failing if they do not come within `timeout` seconds."""
    replies: list[str] = []
    async with asyncio.timeout(timeout):
        while len(replies) < count:
            replies.extend(await client.read_replies(most=count - len(replies), timeout=1.0))
    return replies


async def no_more_replies(client: StreamEchoClient, wait: float = 0.5) -> list[str]:
    """Whatever else arrives within `wait` seconds (a test expects nothing)."""
    return await client.read_replies(most=100, timeout=wait)


async def replies_left(nc: Client, user: str) -> int:
    """Replies stored for `user` that its consumer has not handed out yet.

    A question to the server, not a wait: when no application server runs, nothing
    else can be stored, so 0 means no reply is, or will be, waiting. (Replies handed
    out are not counted: their acknowledgement may still be on its way.)
    """
    info = await nc.jetstream().consumer_info(ECHO_STREAM_NAME, reply_consumer(user))
    return int(info.num_pending or 0)


async def replies_before_a_sentinel(client: StreamEchoClient, user: str) -> list[str]:
    """Send one more request; the replies read before its own (a test expects none).

    Replies are stored in order, so once the sentinel's reply is read, any extra reply
    stored before it (a second copy, say) has been read too.
    """
    await client.send("sentinel")
    expected = f"echo sentinel from {user}"
    before: list[str] = []
    async with asyncio.timeout(10):
        while True:
            for reply in await client.read_replies(most=1, timeout=1.0):
                if reply == expected:
                    return before
                before.append(reply)
