"""A poison request is answered once with an error, never redelivered forever.

A request whose reply can never be stored (larger than the bus or the stream takes)
used to be nak'ed every second, with no end, a traceback each time. Now a reply too
large becomes one `too_large` error reply; and a request whose answer failed to be
stored `max_deliveries` times gets one `undeliverable` error reply and is settled.
"""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client

from labkit.labs.stream_echo import SERVER_CONSUMER, publish_request, request_subject
from labkit.protocol import EchoRequest
from labkit.settings import Settings
from labkit.stack import Stack
from labkit.subjects import ECHO_STREAM_NAME
from tests.security.helpers import (
    Stored,
    connect_admin,
    connect_user,
    describe,
    replies_by_slot,
    serving,
    slot_of,
    unique_user,
    wait_for_slot,
)

MAX_DELIVERIES = 2


@pytest.fixture(scope="module")
def settings(own_stack: Stack) -> Settings:
    settings = own_stack.settings.model_copy(deep=True)
    settings.stream.max_deliveries = MAX_DELIVERIES
    return settings


def request_of_size(size: int) -> bytes:
    """An EchoRequest exactly `size` bytes long on the wire."""
    text = "x" * (size - 5)
    data = EchoRequest(message=text).SerializeToString()
    return EchoRequest(message=text + "x" * (size - len(data))).SerializeToString()


async def largest_request(admin: Client, nc: Client) -> int:
    """The largest request the stream takes: its max_msg_size, else NATS's max_payload."""
    config = (await admin.jetstream().stream_info(ECHO_STREAM_NAME)).config
    per_message = config.max_msg_size or -1
    return per_message if 0 < per_message < nc.max_payload else nc.max_payload


async def settled(admin: Client) -> int:
    info = await admin.jetstream().consumer_info(ECHO_STREAM_NAME, SERVER_CONSUMER)
    return int(info.num_ack_pending)


def test_a_reply_too_large_to_store_is_one_too_large_error(settings: Settings) -> None:
    user = unique_user("poison")

    async def scenario() -> tuple[Stored, dict[str, list[Stored]], int, int, str]:
        nc = await connect_user(settings, user)
        admin = await connect_admin(settings)
        try:
            async with serving(settings) as server:
                size = await largest_request(admin, nc)
                ack = await nc.jetstream().publish(request_subject(user), request_of_size(size))
                reply = await wait_for_slot(admin, user, slot_of(ack.seq))
                # A sentinel behind it: once it is answered, the poison was settled too.
                after = await publish_request(nc, user, "after")
                await wait_for_slot(admin, user, slot_of(after))
                pending = await settled(admin)
                served = server.stats["stream_echo"].num_requests
                return reply, await replies_by_slot(admin, user), pending, served, slot_of(ack.seq)
        finally:
            await nc.close()
            await admin.close()

    reply, slots, pending, served, slot = asyncio.run(scenario())
    assert describe(reply).startswith("error too_large:"), describe(reply)
    assert len(slots[slot]) == 1
    assert pending == 0  # acknowledged: nothing waits to be delivered again
    assert served == 2  # the poison was handled once, the sentinel once


def test_a_request_that_failed_max_deliveries_times_gets_one_undeliverable_reply(
    settings: Settings,
) -> None:
    user = unique_user("undeliverable")

    async def scenario() -> tuple[Stored, dict[str, list[Stored]], int, str, int]:
        nc = await connect_user(settings, user)
        admin = await connect_admin(settings)
        try:
            async with serving(settings):
                pass  # the stream and the server's consumer exist from now on
            sequence = await publish_request(nc, user, "unlucky")
            # Stand in for a server that failed to store its answer MAX_DELIVERIES times:
            # take the request from the server's consumer and nak it, each time.
            taken = await admin.jetstream().pull_subscribe_bind(
                durable=SERVER_CONSUMER, stream=ECHO_STREAM_NAME
            )
            deliveries = 0
            for _ in range(MAX_DELIVERIES):
                (message,) = await taken.fetch(1, timeout=5)
                assert message.metadata.sequence.stream == sequence
                deliveries = message.metadata.num_delivered
                await message.nak()
            await taken.unsubscribe()
            async with serving(settings) as server:
                reply = await wait_for_slot(admin, user, slot_of(sequence))
                after = await publish_request(nc, user, "after")
                await wait_for_slot(admin, user, slot_of(after))
                pending = await settled(admin)
                assert server.stats["stream_echo"].num_requests == 2
            return reply, await replies_by_slot(admin, user), pending, slot_of(sequence), deliveries
        finally:
            await nc.close()
            await admin.close()

    reply, slots, pending, slot, deliveries = asyncio.run(scenario())
    assert deliveries == MAX_DELIVERIES
    assert describe(reply).startswith("error undeliverable:"), describe(reply)
    assert len(slots[slot]) == 1
    assert pending == 0
