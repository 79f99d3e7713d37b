"""The server's connection (labkit.server.wire) against a real nats-server.

Route messages take the lane (straight from nats-py's parser to the scheduler),
with their headers and reply subject intact; and the connection tells how many
bytes wait unread on its socket, which the scheduler reads to put reading first.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from nats.aio.client import RawCredentials
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from labkit.client import connect_as
from labkit.discovery import nats_urls
from labkit.nsc.claims import permissions_from_templates
from labkit.nsc.creds import user_of
from labkit.nsc.wrapper import Nsc
from labkit.protocol import EchoRequest, EchoResponse
from labkit.server import Router, Server
from labkit.server.injection import register_dependency
from labkit.server.wire import Lane, LaneClient
from labkit.stack import Stack
from tests.conftest import make_settings
from tests.nats_helpers import wait_until

USER = "wire-admin"  # may publish anywhere, to fill another connection's socket


@dataclass
class SeenHeaders:
    """The headers a request arrived with, as the handler's dependencies see them."""

    headers: dict[str, str] | None


register_dependency(SeenHeaders, lambda delivery: SeenHeaders(delivery.headers))


@pytest.mark.parametrize("readers", [0, 2], ids=["one connection", "reader connections"])
def test_a_route_message_takes_the_lane_with_its_headers(
    running_stack: Stack, monkeypatch: pytest.MonkeyPatch, readers: int
) -> None:
    settings = make_settings(running_stack.settings.home, server={"readers": readers})
    creds = Nsc.from_settings(settings).create_user("wire-bob").creds
    by_lane: list[bytes] = []
    add_lane, subscribe_lane = LaneClient.add_lane, LaneClient.subscribe_lane

    def counting(lane: Lane) -> Lane:
        def through(subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
            by_lane.append(subject)
            lane(subject, reply, data, headers)

        return through

    # The route's catch-all (one connection), or the user's own subject on a reader.
    def counted(self: LaneClient, subscription: Subscription, lane: Lane) -> None:
        add_lane(self, subscription, counting(lane))

    async def counted_reader(
        self: LaneClient, subject: str, queue: str, lane: Lane
    ) -> Subscription:
        return await subscribe_lane(self, subject, queue, counting(lane))

    monkeypatch.setattr(LaneClient, "add_lane", counted)
    monkeypatch.setattr(LaneClient, "subscribe_lane", counted_reader)
    router = Router("wire")

    @router.subscribe("*.echo.wire-headers")
    async def headers(request: EchoRequest, seen: SeenHeaders) -> EchoResponse:
        return EchoResponse(message=f"{request.message} {(seen.headers or {}).get('X-Tag')}")

    async def scenario() -> tuple[list[str], list[str]]:
        server = Server(router, settings=settings, queue="wire-test")
        await server.start()
        nc = await connect_as(creds, settings=settings)
        try:
            answers = []
            for n, tag in enumerate(["one", None]):
                reply = await nc.request(
                    "wire-bob.echo.wire-headers",
                    EchoRequest(message=str(n)).SerializeToString(),
                    timeout=10,
                    headers={"X-Tag": tag} if tag else None,
                )
                assert not (reply.headers or {}).get("Nats-Service-Error")
                answers.append(EchoResponse.FromString(reply.data).message)
            return answers, [subject.decode() for subject in by_lane]
        finally:
            await nc.close()
            await server.stop()

    answers, lane_subjects = asyncio.run(scenario())
    assert answers == ["0 one", "1 None"]  # headers parsed when served; none: None
    assert lane_subjects == ["wire-bob.echo.wire-headers"] * 2


def test_unread_bytes_counts_what_waits_on_the_socket(running_stack: Stack) -> None:
    settings = make_settings(running_stack.settings.home)
    permissions = permissions_from_templates(USER, [">"], [">"])
    creds = Nsc.from_settings(settings).create_user(USER, permissions=permissions).creds
    payload = b"x" * 1000
    count = 32  # 32 KB: within any socket's receive buffer

    async def scenario() -> tuple[int, int, int, int]:
        reader = LaneClient()
        idle_before_connect = reader.unread_bytes()  # no connection: unknown, 0
        await reader.connect(
            nats_urls(settings),
            user_credentials=RawCredentials(creds),
            inbox_prefix=f"_INBOX.{user_of(creds)}",
        )
        sender = await connect_as(creds, settings=settings)
        received: list[Msg] = []

        async def on_message(msg: Msg) -> None:
            received.append(msg)

        try:
            await reader.subscribe(f"{USER}.wire.fill", cb=on_message)
            await reader.flush()
            idle = reader.unread_bytes()
            transport = reader._transport._io_writer.transport  # type: ignore[union-attr]
            transport.pause_reading()  # as if the reader were busy with a burst
            for _ in range(count):
                await sender.publish(f"{USER}.wire.fill", payload)
            await sender.flush()
            # nats-server writes to the reader from a goroutine of its own: the sender's
            # PONG may come first, so wait for the bytes rather than read them once.
            expected = count * len(payload)
            await wait_until(lambda: reader.unread_bytes() >= expected, "the burst waiting")
            waiting = reader.unread_bytes()
            transport.resume_reading()
            await wait_until(lambda: len(received) == count, "every message read")
            await wait_until(lambda: reader.unread_bytes() == 0, "the socket emptied")
            return idle_before_connect, idle, waiting, len(received)
        finally:
            await sender.close()
            await reader.close()

    before_connect, idle, waiting, received = asyncio.run(scenario())
    assert before_connect == 0
    assert idle == 0
    assert waiting >= count * len(payload)
    assert received == count
