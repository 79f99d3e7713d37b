"""Confused deputy: the server answers only inside the requester's own inbox.

A request's reply subject is chosen by whoever sends it. If the server published
there with its own rights, alice could make it write where she may not: a ping
receipt on `carol.ping` (which the server then heard as carol's line to bob), an
echo on `bob.echo.stream.reply` (stored as a reply bob never asked for). The server
now answers only on `_INBOX.<user>.>`, user being the request subject's first token;
any other reply subject gets nothing, a log line and a count in `$SRV.STATS`. Its
connection sets no_echo, so it never hears what it published itself.

Real nats-server, the real lab server (in this process), real users.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from nats.aio.client import Client

from labkit.buffer import Buffer
from labkit.labs.ping_pong import Conversation
from labkit.labs.stream_echo import StreamEchoClient, reply_subject, request_subject
from labkit.protocol import EchoRequest, PingRequest
from labkit.server.runner import Server
from labkit.settings import Settings
from labkit.stack import Stack
from labkit.subjects import stored
from tests.security.helpers import (
    connect_admin,
    connect_user,
    serving,
    stored_replies,
    unique_user,
    wait_until,
)


@pytest.fixture(scope="module")
def settings(running_stack: Stack) -> Settings:
    return running_stack.settings


def handled(server: Server, route: str) -> int:
    return server.stats[route].num_requests


async def refused_on_the_wire(admin: Client, route: str) -> int:
    """The refusals counted for `route`, as `$SRV.STATS` reports them."""
    reply = await admin.request("$SRV.STATS.labkit", b"", timeout=2)
    endpoints = json.loads(reply.data)["endpoints"]
    (endpoint,) = [e for e in endpoints if e["name"] == route]
    return int((endpoint.get("data") or {}).get("refused_replies", 0))


def test_a_ping_receipt_never_goes_to_a_subject_alice_chose(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    alice, bob, carol = unique_user("alice"), unique_user("bob"), unique_user("carol")
    caplog.set_level(logging.INFO, logger="labkit.server")

    async def scenario() -> tuple[list[bytes], list[PingRequest], int]:
        async with serving(settings) as server:
            a, b, c = [await connect_user(settings, u) for u in (alice, bob, carol)]
            admin = await connect_admin(settings)
            try:
                to_bob = await Conversation(b, bob).open()
                carol_pings = await c.subscribe(f"{carol}.ping")
                await c.flush()
                forged = PingRequest(destination=bob, message="meet me at noon")
                await a.publish(f"{alice}.ping", forged.SerializeToString(), reply=f"{carol}.ping")
                await wait_until(lambda: handled(server, "relay") >= 1, "the forged ping handled")
                # Sentinels through the server's own connection, after the forged request:
                # carol's echo reply (anything the server sent her before has arrived),
                # then alice's real line to bob (any line the server relayed before it too).
                carol_nc_echo = await c.request(
                    f"{carol}.echo", EchoRequest(message="sentinel").SerializeToString()
                )
                assert carol_nc_echo.data
                receipt = await Conversation(a, alice).send(bob, "sentinel")
                assert receipt.origin == alice
                await to_bob.wait_for(1)
                await asyncio.sleep(0)  # let bob's callback take anything queued with it
                at_carol = []
                while carol_pings.pending_msgs:
                    at_carol.append(bytes((await carol_pings.next_msg(timeout=0.1)).data))
                return at_carol, list(to_bob.received), await refused_on_the_wire(admin, "relay")
            finally:
                for nc in (a, b, c, admin):
                    await nc.close()

    at_carol, at_bob, reported = asyncio.run(scenario())
    assert at_carol == []  # the server wrote nothing on carol's subject
    assert [(line.origin, line.message) for line in at_bob] == [(alice, "sentinel")]
    assert reported == 1
    assert any(
        "refused" in record.getMessage() and f"{carol}.ping" in record.getMessage()
        for record in caplog.records
    )


def test_an_echo_reply_is_never_stored_as_someone_elses_persisted_reply(
    settings: Settings, tmp_path: Path
) -> None:
    alice, bob = unique_user("alice"), unique_user("bob")

    async def scenario() -> tuple[list[bytes], list[str]]:
        async with serving(settings) as server:
            a, b = [await connect_user(settings, u) for u in (alice, bob)]
            admin = await connect_admin(settings)
            try:
                bobs = await StreamEchoClient(
                    b, bob, Buffer(tmp_path / "bob.db", request_subject(bob))
                ).open()
                forged = EchoRequest(message="you owe alice 100").SerializeToString()
                await a.publish(f"{alice}.echo", forged, reply=reply_subject(bob))
                await a.publish(f"{alice}.echo", forged, reply=stored(reply_subject(bob)))
                await wait_until(lambda: handled(server, "echo") >= 2, "the forged echoes handled")
                # Bob's own request is answered through the same server connection, after
                # the forged ones: once his reply is stored, a forged one would be too.
                await bobs.send("hello")
                replies = await bobs.read_replies(most=10, timeout=5)
                while not replies:
                    replies = await bobs.read_replies(most=10, timeout=5)
                stored_now = [data for _, data in await stored_replies(admin, bob)]
                await bobs.close()
                return stored_now, replies
            finally:
                for nc in (a, b, admin):
                    await nc.close()

    stored_now, replies = asyncio.run(scenario())
    assert replies == [f"echo hello from {bob}"]
    assert len(stored_now) == 1


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param("{bob}.ping", id="another-users-subject"),
        pytest.param("_INBOX.{bob}.stolen", id="another-users-inbox"),
        pytest.param("_INBOX.{alice}", id="her-inbox-prefix-itself"),
        pytest.param("_INBOX.{alice}x.1", id="a-longer-name"),
        pytest.param("{bob}.echo.stream.reply", id="another-users-persisted-reply"),
    ],
)
def test_error_replies_obey_the_same_rule(settings: Settings, reply: str) -> None:
    alice, bob = unique_user("alice"), unique_user("bob")
    target = reply.format(alice=alice, bob=bob)

    async def scenario() -> tuple[list[bytes], int, bytes]:
        async with serving(settings) as server:
            a = await connect_user(settings, alice)
            admin = await connect_admin(settings)
            try:
                seen = await admin.subscribe(target)
                await admin.flush()
                # Not a valid EchoRequest: it would get an invalid_payload error reply.
                await a.publish(f"{alice}.echo", b"\xff\xff\xff", reply=target)
                await wait_until(lambda: handled(server, "echo") >= 1, "the request handled")
                # A sentinel through the server's connection to the same subscriber.
                sentinel = await admin.request("$SRV.PING.labkit", b"", timeout=2)
                got = []
                while seen.pending_msgs:
                    got.append(bytes((await seen.next_msg(timeout=0.1)).data))
                return got, await refused_on_the_wire(admin, "echo"), bytes(sentinel.data)
            finally:
                await a.close()
                await admin.close()

    got, refused, sentinel = asyncio.run(scenario())
    assert sentinel
    assert got == []
    assert refused == 1


def test_a_reply_in_her_own_inbox_is_answered(settings: Settings) -> None:
    alice = unique_user("alice")

    async def scenario() -> tuple[bytes, int]:
        async with serving(settings):
            a = await connect_user(settings, alice)
            admin = await connect_admin(settings)
            try:
                answer = await a.request(
                    f"{alice}.echo", EchoRequest(message="hi").SerializeToString(), timeout=2
                )
                return bytes(answer.data), await refused_on_the_wire(admin, "echo")
            finally:
                await a.close()
                await admin.close()

    data, refused = asyncio.run(scenario())
    assert data and refused == 0


def test_the_server_does_not_hear_what_it_publishes(settings: Settings) -> None:
    """no_echo: the server's relayed line on `<peer>.inbox` never comes back to it."""

    async def scenario() -> bool:
        async with serving(settings) as server:
            assert server.nc is not None
            return bool(server.nc.options["no_echo"])

    assert asyncio.run(scenario())
