"""One user cannot evict anyone's persisted messages: per-user bounds, discard new.

The labs' stream used to be one shared pool with discard-old: alice flooding it
evicted bob's unread replies and his unserved requests. Now each user's requests
(and replies) are bounded per subject with discard-new-per-subject, a full stream
refuses new messages rather than dropping old ones, and one message has a maximum
size; the publisher gets a clear error. Real nats-server, the stream as the server
configures it, small limits from settings.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from nats.js.api import DiscardPolicy, StreamConfig
from nats.js.errors import APIError

from labkit.buffer import Buffer
from labkit.labs.stream_echo import (
    RequestTooLarge,
    StreamEchoClient,
    StreamQuotaFull,
    publish_request,
    request_subject,
    stream_state,
)
from labkit.settings import Settings
from labkit.stack import Stack
from labkit.subjects import ECHO_STREAM_NAME
from tests.security.helpers import connect_admin, connect_user, serving, unique_user

PER_USER = 5
MAX_MSG_SIZE = 1024
# Small enough that alice's flood would fill it many times over with discard-old.
MAX_BYTES = 16 * 1024


@pytest.fixture(scope="module")
def settings(own_stack: Stack) -> Settings:
    settings = own_stack.settings.model_copy(deep=True)
    settings.stream.max_msgs_per_user = PER_USER
    settings.stream.max_msg_size = MAX_MSG_SIZE
    settings.stream.max_bytes = MAX_BYTES
    return settings


async def read(client: StreamEchoClient, count: int) -> list[str]:
    replies: list[str] = []
    async with asyncio.timeout(15):
        while len(replies) < count:
            replies += await client.read_replies(most=count - len(replies))
    return replies


def test_alice_flooding_removes_nothing_of_bobs(settings: Settings, tmp_path: Path) -> None:
    alice, bob = unique_user("flood"), unique_user("bob")
    filler = "x" * 600

    async def scenario() -> dict[str, object]:
        a = await connect_user(settings, alice)
        b = await connect_user(settings, bob)
        admin = await connect_admin(settings)
        outcome: dict[str, object] = {}
        try:
            async with serving(settings):
                bobs = await StreamEchoClient(
                    b, bob, Buffer(tmp_path / "bob.db", request_subject(bob))
                ).open()
                await bobs.send("read me later")  # answered now, read at the end
                async with asyncio.timeout(10):
                    while (await stream_state(admin.jetstream(), bob)).replies < 1:
                        await asyncio.sleep(0.02)
            await bobs.send("answer me later")  # no server now: stays unserved
            # Alice floods, straight through JetStream, far past the stream's bytes.
            accepted, refusals = 0, []
            for n in range(3 * MAX_BYTES // len(filler)):
                try:
                    await publish_request(a, alice, f"{filler} {n}")
                    accepted += 1
                except APIError as exc:
                    refusals.append((exc.err_code, exc.description))
            outcome["accepted"], outcome["refusals"] = accepted, refusals
            # Her learner's client says what happened, and keeps the message.
            alices = StreamEchoClient(
                a, alice, Buffer(tmp_path / "alice.db", request_subject(alice))
            )
            try:
                await alices.send("one more")
            except StreamQuotaFull as exc:
                outcome["quota"] = str(exc)
            outcome["alice_pending"] = alices.pending
            state = await stream_state(admin.jetstream(), bob)
            outcome["bob_stored"] = (state.requests, state.replies)
            async with serving(settings):
                outcome["bob_replies"] = await read(bobs, 2)
            await bobs.close()
            return outcome
        finally:
            for nc in (a, b, admin):
                await nc.close()

    outcome = asyncio.run(scenario())
    assert outcome["accepted"] == PER_USER
    refusals = outcome["refusals"]
    assert isinstance(refusals, list) and refusals
    assert all("maximum messages per subject exceeded" in str(d) for _, d in refusals), refusals
    assert "keeps a bounded number" in str(outcome.get("quota")), outcome
    assert outcome["alice_pending"] == 1  # refused, not lost: it waits in her outbox
    assert outcome["bob_stored"] == (2, 1)  # his request and his unread reply, both kept
    assert outcome["bob_replies"] == [
        f"echo read me later from {bob}",
        f"echo answer me later from {bob}",
    ]


def test_a_request_over_the_message_size_is_refused_clearly(
    settings: Settings, tmp_path: Path
) -> None:
    user = unique_user("large")

    async def scenario() -> tuple[str, int]:
        nc = await connect_user(settings, user)
        try:
            async with serving(settings):
                client = StreamEchoClient(
                    nc, user, Buffer(tmp_path / "outbox.db", request_subject(user))
                )
                with pytest.raises(RequestTooLarge) as refused:
                    await client.send("y" * (2 * MAX_MSG_SIZE))
                return str(refused.value), client.pending
        finally:
            await nc.close()

    message, pending = asyncio.run(scenario())
    assert "send something shorter" in message and "maximum" in message
    assert pending == 0  # it could never be stored: it does not block the outbox


def test_a_stream_made_by_an_earlier_version_gets_the_bounds(settings: Settings) -> None:
    """A data dir from before: the server brings its discard-old stream to the bounds."""

    async def scenario() -> tuple[object, object]:
        admin = await connect_admin(settings)
        try:
            js = admin.jetstream()
            async with serving(settings):
                pass
            config = (await js.stream_info(ECHO_STREAM_NAME)).config
            earlier = replace(
                config,
                discard=DiscardPolicy.OLD,
                discard_new_per_subject=False,
                max_msgs_per_subject=-1,
                max_msg_size=-1,
            )
            await js.update_stream(earlier)
            before = (await js.stream_info(ECHO_STREAM_NAME)).config
            async with serving(settings):
                pass
            return before, (await js.stream_info(ECHO_STREAM_NAME)).config
        finally:
            await admin.close()

    before, after = asyncio.run(scenario())
    assert isinstance(before, StreamConfig) and before.discard == DiscardPolicy.OLD
    assert isinstance(after, StreamConfig)
    assert after.discard == DiscardPolicy.NEW and after.discard_new_per_subject
    assert (after.max_msgs_per_subject, after.max_msg_size) == (PER_USER, MAX_MSG_SIZE)
