"""Offline mode: sends while NATS is down wait in the outbox and go out on reconnect.

Uses a stack of its own (this test stops its NATS server), pinned to one port so the
restarted server is where the client reconnects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import nats.errors
import pytest

from labkit.buffer import Buffer, BufferedPublisher
from labkit.client import connect_as
from labkit.nsc.wrapper import Nsc
from labkit.stack import Stack
from labkit.stack.ports import free_port
from tests.buffer.streams import USER, create_test_stream, issue_test_user, stored_messages
from tests.conftest import make_settings

SUBJECT = f"{USER}.offline"


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[Stack]:
    port = free_port("127.0.0.1")
    stack = Stack(make_settings(tmp_path / "home", nats={"port": port, "monitor_port": 0}))
    try:
        stack.ensure("nats")
        assert stack.url("nats").endswith(f":{port}")
        yield stack
    finally:
        stack.down()


@pytest.mark.parametrize(
    "noticed", [True, False], ids=["client-noticed-the-outage", "send-races-the-outage"]
)
def test_sends_while_offline_are_flushed_once_in_order_on_reconnect(
    own_stack: Stack, tmp_path: Path, noticed: bool
) -> None:
    # Without waiting for the disconnect, the first send may still try to publish:
    # the publish times out (or nats-py replays it on reconnect and the server drops
    # the copy the flush sends next), and nothing is lost or doubled either way.
    creds = issue_test_user(Nsc.from_settings(own_stack.settings))
    url = own_stack.url("nats")

    async def scenario() -> list[bytes]:
        publisher: BufferedPublisher
        disconnected, reconnected = asyncio.Event(), asyncio.Event()
        errors: list[Exception] = []

        async def flush_on_reconnect() -> None:
            await publisher.on_reconnect()
            reconnected.set()

        async def on_disconnect() -> None:
            disconnected.set()

        async def on_error(exc: Exception) -> None:
            errors.append(exc)

        nc = await connect_as(
            creds,
            servers=[url],
            allow_reconnect=True,
            reconnect_time_wait=0.1,
            max_reconnect_attempts=-1,
            reconnected_cb=flush_on_reconnect,
            disconnected_cb=on_disconnect,
            error_cb=on_error,
        )
        try:
            await create_test_stream(nc.jetstream())
            publisher = BufferedPublisher(nc, Buffer(tmp_path / "outbox.db", SUBJECT), timeout=2)
            for n in range(5):
                await publisher.send(str(n))
            assert publisher.pending == 0

            await asyncio.to_thread(own_stack.down, "nats")
            if noticed:
                await asyncio.wait_for(disconnected.wait(), 10)
            for n in range(5, 15):
                await publisher.send(str(n))  # no exception: the outbox keeps them
            assert publisher.pending == 10
            assert publisher.last_flush is not None
            assert isinstance(publisher.last_flush.error, nats.errors.ConnectionReconnectingError)

            await asyncio.to_thread(own_stack.ensure, "nats")
            assert own_stack.url("nats") == url
            await asyncio.wait_for(reconnected.wait(), 15)
            assert publisher.pending == 0, publisher.last_flush
            assert publisher.last_flush is not None and publisher.last_flush.ok
            return [m.data for m in await stored_messages(nc.jetstream(), SUBJECT)]
        finally:
            await nc.close()

    assert asyncio.run(scenario()) == [str(n).encode() for n in range(15)]
