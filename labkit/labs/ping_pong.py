"""Ping-pong: two learners talk through the server, which vouches for the sender.

A client publishes `PingRequest{destination, message}` on `<user>.ping`; the
server relays `PingRequest{origin=<user>, destination, message}` to
`<destination>.inbox`. The origin comes from the subject, never from the payload,
so bob cannot pretend to be alice.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from labkit.client import request
from labkit.labs.directory import UserDirectory
from labkit.nsc.errors import InvalidName
from labkit.nsc.names import validate_name
from labkit.protocol import PingRequest
from labkit.server.errors import HandlerError
from labkit.server.injection import CurrentUser, Publish
from labkit.server.router import Router
from labkit.subjects import INBOX, PING, any_user, user_subject

router = Router("ping_pong")


@router.subscribe(any_user(PING))
async def relay(
    ping: PingRequest, user: CurrentUser, publish: Publish, users: UserDirectory
) -> PingRequest:
    try:
        destination = validate_name(ping.destination, "destination")
    except InvalidName as exc:
        raise HandlerError(str(exc), code="invalid_destination") from None
    if not users.knows(destination):
        raise HandlerError(
            f"nobody called {destination!r} has credentials here",
            code="unknown_destination",
            status=404,
        )
    relayed = PingRequest(origin=user, destination=destination, message=ping.message)
    await publish(user_subject(destination, INBOX), relayed)
    return relayed  # the sender's receipt, when it asked for one


@dataclass
class Conversation:
    """One user's side of a chat: send lines, collect the lines received."""

    nc: Client
    user: str
    received: list[PingRequest] = field(default_factory=list)
    _subscription: Subscription | None = None
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def is_open(self) -> bool:
        """True between `open()` and `close()`, while the connection is up."""
        return self._subscription is not None and not self.nc.is_closed

    async def open(self) -> Conversation:
        self._subscription = await self.nc.subscribe(
            user_subject(self.user, INBOX), cb=self._on_line
        )
        await self.nc.flush()
        return self

    async def send(self, destination: str, message: str, timeout: float = 2.0) -> PingRequest:
        """Send a line; returns the server's receipt (raises RemoteError if refused)."""
        ping = PingRequest(destination=destination, message=message)
        return await request(self.nc, user_subject(self.user, PING), ping, PingRequest, timeout)

    async def wait_for(self, count: int, timeout: float = 2.0) -> list[PingRequest]:
        """Wait until `count` lines have arrived; returns them all."""
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(self.received) >= count), timeout
            )
        return list(self.received)

    async def close(self) -> None:
        """Stop receiving lines; closing twice, or after the connection closed, is fine."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None and not self.nc.is_closed:
            await subscription.unsubscribe()

    async def _on_line(self, msg: Msg) -> None:
        async with self._arrived:
            self.received.append(PingRequest.FromString(msg.data))
            self._arrived.notify_all()
