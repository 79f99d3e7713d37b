"""The observer the stack issues: it sees every lab message and reply, and can publish nothing."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.msg import Msg

from labkit.nsc.wrapper import Nsc
from labkit.stack import Stack
from tests.nats_helpers import observed_connection, sentinel_through, wait_until


@pytest.fixture
def nsc(running_stack: Stack) -> Nsc:
    return Nsc.from_settings(running_stack.settings)


@pytest.fixture
def nats_url(running_stack: Stack) -> str:
    return running_stack.url("nats")


def test_the_observer_sees_a_request_and_the_reply_it_never_asked_for(
    nsc: Nsc, nats_url: str
) -> None:
    # The stack issued the observer's creds when it started NATS.
    observer_creds = nsc.observer_creds()
    user = "obs-alice"
    user_creds = nsc.create_user(user).creds

    async def scenario() -> tuple[list[tuple[str, bytes]], bytes, list[str]]:
        observer, seen = await observed_connection(observer_creds, nats_url)
        tapped: list[tuple[str, bytes]] = []

        async def tap(msg: Msg) -> None:
            tapped.append((msg.subject, bytes(msg.data)))

        for pattern in ("*.echo", "_INBOX.>"):
            await observer.subscribe(pattern, cb=tap)
        # The application server's user answers through its response permission.
        server, _ = await observed_connection(nsc.server_creds(), nats_url)

        async def answer(msg: Msg) -> None:
            await msg.respond(b"echo " + msg.data)

        await server.subscribe("*.echo", cb=answer)
        await server.flush()
        await observer.flush()
        client, _ = await observed_connection(user_creds, nats_url)
        reply = await client.request(f"{user}.echo", b"hi", timeout=2)
        await wait_until(lambda: len(tapped) >= 2, "the observer tapping request and reply")
        for nc in (client, server, observer):
            await nc.close()
        return tapped, bytes(reply.data), seen.errors

    tapped, reply, errors = asyncio.run(scenario())
    assert reply == b"echo hi"
    assert errors == []
    assert tapped[0] == (f"{user}.echo", b"hi")
    reply_subject, reply_data = tapped[1]
    assert reply_subject.startswith(f"_INBOX.{user}.")
    assert reply_data == b"echo hi"


@pytest.mark.parametrize(
    "subject",
    ["labkit_observer.echo", "obs-bob.echo", "_INBOX.x", "_INBOX.obs-bob.abc", "$JS.API.INFO"],
)
def test_every_publish_by_the_observer_is_refused(nsc: Nsc, nats_url: str, subject: str) -> None:
    observer_creds = nsc.observer_creds()

    sentinel_user = "obs-sentinel"
    sentinel_creds = nsc.create_user(sentinel_user).creds

    async def scenario() -> tuple[list[str], int]:
        # A second observer connection listens: nothing the first one sends gets through.
        listener, _ = await observed_connection(observer_creds, nats_url)
        received = await listener.subscribe(subject)
        await listener.flush()
        observer, seen = await observed_connection(observer_creds, nats_url)
        await observer.publish(subject, b"forged")
        await wait_until(lambda: bool(seen.errors), "the observer's permissions violation")
        # The observer may publish nothing: a plain user sends the listener its sentinel.
        sender, _ = await observed_connection(sentinel_creds, nats_url)
        await sentinel_through(
            listener, f"{sentinel_user}.sentinel", sender=sender, after=[observer]
        )
        delivered = received.pending_msgs
        for nc in (sender, observer, listener):
            await nc.close()
        return seen.errors, delivered

    errors, delivered = asyncio.run(scenario())
    assert any(
        f'permissions violation for publish to "{subject.lower()}"' in e.lower() for e in errors
    ), errors
    assert delivered == 0
