"""A reply that could not be stored is retried, never replaced by an error reply.

During a leader election (a NATS node lost) the server's JetStream publish of a reply
fails. That used to count as a handler failure: an ErrorReply{internal_error} went
into the request's reply slot (its Nats-Msg-Id) and the correct reply, stored on the
redelivery, was dropped as a duplicate. Here the election's failure (JetStream's 503)
is injected into the in-process server's publish of one reply, on the real
nats-server; tests/security/test_stream_node_loss.py kills real nodes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from nats.js.client import JetStreamContext
from nats.js.errors import ServiceUnavailableError

from labkit.labs.stream_echo import SERVER_CONSUMER, publish_request, reply_subject, request_subject
from labkit.settings import Settings
from labkit.stack import Stack
from labkit.subjects import ECHO_STREAM_NAME, stored
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


@pytest.fixture(scope="module")
def settings(own_stack: Stack) -> Settings:
    return own_stack.settings


def fail_first_stores(monkeypatch: pytest.MonkeyPatch, subject: str, failures: int) -> list[str]:
    """Make the first `failures` JetStream publishes under `subject` fail as in an election."""
    real = JetStreamContext.publish
    failed: list[str] = []

    async def publish(self: JetStreamContext, to: str, *args: Any, **kwargs: Any) -> Any:
        if to.startswith(f"{subject}.") and len(failed) < failures:
            failed.append(to)
            raise ServiceUnavailableError(
                code=503, description="JetStream system temporarily unavailable"
            )
        return await real(self, to, *args, **kwargs)

    monkeypatch.setattr(JetStreamContext, "publish", publish)
    return failed


@pytest.mark.parametrize("failures", [1, 3])
def test_a_failed_store_is_retried_and_the_echo_takes_the_slot(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, failures: int
) -> None:
    user = unique_user("store")
    failed = fail_first_stores(monkeypatch, stored(reply_subject(user)), failures)

    async def scenario() -> tuple[Stored, dict[str, list[Stored]], str]:
        nc = await connect_user(settings, user)
        admin = await connect_admin(settings)
        try:
            async with serving(settings):
                sequence = await publish_request(nc, user, "hello", msg_id=f"{user}-1")
                reply = await wait_for_slot(admin, user, slot_of(sequence))
                return reply, await replies_by_slot(admin, user), slot_of(sequence)
        finally:
            await nc.close()
            await admin.close()

    reply, slots, slot = asyncio.run(scenario())
    assert len(failed) == failures  # the store did fail, as in an election
    assert describe(reply) == f"echo hello from {user}"
    assert slots == {slot: [reply]}


def test_a_handler_error_is_one_error_reply_and_the_request_is_acked(settings: Settings) -> None:
    user = unique_user("refused")

    async def scenario() -> tuple[Stored, dict[str, list[Stored]], int, str]:
        nc = await connect_user(settings, user)
        admin = await connect_admin(settings)
        try:
            async with serving(settings) as server:
                js = nc.jetstream()
                bad = (await js.publish(request_subject(user), b"\xff\xff\xff")).seq
                reply = await wait_for_slot(admin, user, slot_of(bad))
                # A sentinel request after it: once answered, the first was settled too.
                good = await publish_request(nc, user, "after")
                await wait_for_slot(admin, user, slot_of(good))
                info = await admin.jetstream().consumer_info(ECHO_STREAM_NAME, SERVER_CONSUMER)
                served = server.stats["stream_echo"].num_requests
                assert info.num_ack_pending == 0, info
                return reply, await replies_by_slot(admin, user), served, slot_of(bad)
        finally:
            await nc.close()
            await admin.close()

    reply, slots, served, slot = asyncio.run(scenario())
    assert describe(reply).startswith("error invalid_payload:")
    assert len(slots[slot]) == 1 and len(slots) == 2
    assert served == 2  # each request handled once: the refused one was acked
