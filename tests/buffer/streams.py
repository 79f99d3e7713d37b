"""JetStream helpers for the buffer tests: a test user, a stream, reading a subject back."""

from __future__ import annotations

from datetime import timedelta

import nats.errors
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.client import JetStreamContext

from labkit.nsc.claims import Permissions
from labkit.nsc.wrapper import Nsc

USER = "buffer-test"
STREAM = "BUFFERTEST"
DUPLICATE_WINDOW = timedelta(seconds=120)
# What the test user may do: its own subjects, and JetStream (to create and read streams).
PERMISSIONS = Permissions(
    publish=(f"{USER}.>", "$JS.API.>", "$JS.ACK.>"),
    subscribe=(f"{USER}.>", f"_INBOX.{USER}.>"),
)


def issue_test_user(nsc: Nsc) -> str:
    """The creds of the buffer tests' user."""
    return nsc.create_user(USER, permissions=PERMISSIONS).creds


async def create_test_stream(js: JetStreamContext) -> None:
    """The stream every buffer test publishes to (kept: a test run's stack is thrown away)."""
    await js.add_stream(
        StreamConfig(
            name=STREAM,
            subjects=[f"{USER}.>"],
            duplicate_window=DUPLICATE_WINDOW.total_seconds(),
        )
    )


async def stored_messages(js: JetStreamContext, subject: str) -> list[Msg]:
    """Every message the stream holds on `subject`, in stream order."""
    info = await js.stream_info(STREAM, subjects_filter=subject)
    expected = (info.state.subjects or {}).get(subject, 0)
    if expected == 0:
        return []
    sub = await js.pull_subscribe(
        subject,
        stream=STREAM,
        config=ConsumerConfig(
            ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.ALL,
            inactive_threshold=30.0,
        ),
    )
    messages: list[Msg] = []
    try:
        while len(messages) < expected:
            try:
                messages.extend(await sub.fetch(batch=expected - len(messages), timeout=2))
            except nats.errors.TimeoutError:
                break
    finally:
        await sub.unsubscribe()
    return messages
