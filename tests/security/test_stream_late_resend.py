"""Exactly-once does not end at the duplicate window.

The stream drops a resent request only within its duplicate window. An outbox
reopened later (its message acknowledged, the crash before it was deleted) resends
it, and the stream stores it again at a new sequence: it used to be answered a
second time. The server now remembers answered request ids (a KV bucket kept as long
as the stream's messages) and answers each id once, however late the resend. The
window is shortened through settings so the test can outlast it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from nats.aio.client import Client

from labkit.labs.stream_echo import SERVER_CONSUMER, publish_request, request_subject
from labkit.protocol import EchoRequest
from labkit.settings import Settings
from labkit.stack import Stack
from labkit.subjects import ECHO_STREAM_NAME
from tests.security.helpers import (
    connect_admin,
    connect_user,
    describe,
    replies_by_slot,
    serving,
    slot_of,
    unique_user,
    wait_for_slot,
)

WINDOW = timedelta(seconds=1)


@pytest.fixture(scope="module")
def settings(own_stack: Stack) -> Settings:
    settings = own_stack.settings.model_copy(deep=True)
    settings.stream.duplicate_window = WINDOW
    return settings


async def resend_after_the_window(
    nc: Client, user: str, msg_id: str, text: str = "pay bob 10"
) -> int:
    """Publish `msg_id` again once the stream no longer recognises it; its new sequence."""
    payload = EchoRequest(message=text).SerializeToString()
    while True:
        await asyncio.sleep(WINDOW.total_seconds())
        ack = await nc.jetstream().publish(
            request_subject(user), payload, headers={"Nats-Msg-Id": msg_id}
        )
        if not ack.duplicate:
            return int(ack.seq)


async def all_settled(admin: Client) -> None:
    js = admin.jetstream()
    async with asyncio.timeout(30):
        while True:
            info = await js.consumer_info(ECHO_STREAM_NAME, SERVER_CONSUMER)
            if info.num_ack_pending == 0 and info.num_pending == 0:
                return
            await asyncio.sleep(0.05)


def test_a_request_resent_after_the_window_is_not_answered_twice(settings: Settings) -> None:
    user = unique_user("late")
    msg_id = f"{user}-outbox-1"

    async def scenario() -> tuple[dict[str, list[str]], int, int, int]:
        nc = await connect_user(settings, user)
        admin = await connect_admin(settings)
        try:
            async with serving(settings) as server:
                first = await publish_request(nc, user, "pay bob 10", msg_id=msg_id)
                await wait_for_slot(admin, user, slot_of(first))
                again = await resend_after_the_window(nc, user, msg_id)
                sentinel = await publish_request(nc, user, "after", msg_id=f"{user}-outbox-2")
                await wait_for_slot(admin, user, slot_of(sentinel))
                await all_settled(admin)
                slots = await replies_by_slot(admin, user)
                served = server.stats["stream_echo"].num_requests
            return (
                {slot: [describe(reply) for reply in replies] for slot, replies in slots.items()},
                first,
                again,
                served,
            )
        finally:
            await nc.close()
            await admin.close()

    slots, first, again, served = asyncio.run(scenario())
    assert again != first  # the stream stored the resend: the window had passed
    assert slot_of(again) not in slots  # ... and the server did not answer it
    assert slots[slot_of(first)] == [f"echo pay bob 10 from {user}"]
    assert len(slots) == 2  # the first request and the sentinel
    assert served == 3  # the resend was looked at, and settled without an answer


def test_the_same_id_from_another_user_is_answered(settings: Settings) -> None:
    """Claims are per user: alice cannot pre-empt bob's ids (once the stream's own
    duplicate window, which is stream-wide, has passed)."""
    alice, bob = unique_user("alice"), unique_user("bob")
    msg_id = "shared-id-1"

    async def scenario() -> tuple[str, str]:
        a = await connect_user(settings, alice)
        b = await connect_user(settings, bob)
        admin = await connect_admin(settings)
        try:
            async with serving(settings):
                hers = await publish_request(a, alice, "mine", msg_id=msg_id)
                await wait_for_slot(admin, alice, slot_of(hers))
                his = await resend_after_the_window(b, bob, msg_id, "mine too")
                return (
                    describe(await wait_for_slot(admin, alice, slot_of(hers))),
                    describe(await wait_for_slot(admin, bob, slot_of(his))),
                )
        finally:
            for nc in (a, b, admin):
                await nc.close()

    assert asyncio.run(scenario()) == (f"echo mine from {alice}", f"echo mine too from {bob}")
