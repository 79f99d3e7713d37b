"""Each user's requests read on a NATS connection of their own among a few ("readers").

nats-server writes what a connection subscribed to into one outbound buffer, in the
order it routed it. With one connection for every route, a request bob sends just
after alice published 20,000 reaches the server behind all of hers, and no
scheduling after reading can put him first (README, "Fair share on the application
server"). So, with `LABKIT_SERVER_READERS=K`, the server opens K more connections
and subscribes each user's own route subjects (`alice.echo`, `alice.echo.cached`,
... for the route `*.echo`, `*.echo.cached`, ...) on one of them, the least loaded:
alice's burst waits in another socket than bob's request, the event loop reads the
sockets in turn (nats-py reads a buffer's worth per turn) and bob's request is read
within a turn or two.

Who the users are comes from the NSC store (the users that exist, looked at
periodically and when the stack announces a learner it created:
labkit.server.announcements), never from what arrives: a name a learner makes up
never gets a subscription, and past `reader_max_users` users the server goes back to
the route catch-alls. Every subscription, per user or catch-all, is in the route's
one queue group, so each request goes to exactly one subscriber, whatever replicas
exist and whatever each has subscribed so far: a change (a user added, moved,
removed, the switch to and from the catch-alls) subscribes the new path first and
drains the old one, so a request is never lost and never served twice. Why not learn
users from a catch-all instead: nats-server joins queue members by queue name across
subject patterns and picks one at random, so a catch-all in the same group takes its
share of everyone's burst; in another group it receives a copy of every request
(read twice, and with replicas no server can tell whether another one served the
copy).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field

from nats.aio.subscription import Subscription

from labkit.server.wire import Lane, LaneClient

log = logging.getLogger("labkit.server")

# How long a drained subscription's lane still serves what NATS delivers late (drain).
LANE_GRACE = 10.0
# How long the old way in (catch-alls, or a user's subscriptions) stays subscribed
# next to the new one, both in the queue group, before it is drained. nats-server
# confirms a subscription (the PONG of a flush) before every part of it routes to it:
# a request of 2,000 got "no responders" when the old way was drained right after
# the flush (and in a cluster, other nodes learn of it later still).
SWITCH_GRACE = 1.0


@dataclass(frozen=True)
class UserRoute:
    """A route whose first token is the user: `suffix` is its pattern after `*`."""

    suffix: str
    lane: Lane

    def subject(self, user: str) -> str:
        return f"{user}{self.suffix}"


@dataclass
class Reader:
    """One reader connection and the users subscribed on it."""

    nc: LaneClient
    routes: list[UserRoute]  # receivers that answer on `nc`
    users: dict[str, list[Subscription]] = field(default_factory=dict)


def per_user_suffix(pattern: str) -> str | None:
    """`pattern` after its user token (`*.echo` -> `.echo`), or None: not per user."""
    head, dot, rest = pattern.partition(".")
    return f".{rest}" if head == "*" and dot else None


class UserReaders:
    """K reader connections; each known user's route subjects subscribed on one of them."""

    def __init__(
        self,
        routes: Callable[[LaneClient], list[UserRoute]],
        queue: str,
    ) -> None:
        self._routes = routes
        self._queue = queue
        self._readers: list[Reader] = []
        self._where: dict[str, Reader] = {}

    async def connect(self, count: int, connect: Callable[[int], Awaitable[LaneClient]]) -> None:
        for number in range(count):
            nc = await connect(number)
            self._readers.append(Reader(nc, self._routes(nc)))

    @property
    def users(self) -> frozenset[str]:
        return frozenset(self._where)

    @property
    def subscriptions(self) -> int:
        return sum(len(subs) for reader in self._readers for subs in reader.users.values())

    def connections(self) -> list[LaneClient]:
        return [reader.nc for reader in self._readers]

    def reader_of(self, user: str) -> int | None:
        """Which reader connection reads `user` (its index), or None."""
        reader = self._where.get(user)
        return None if reader is None else self._readers.index(reader)

    async def update(self, users: Collection[str]) -> None:
        """Subscribe the users new in `users`, then release the ones no longer in it.

        New subscriptions are confirmed by the NATS server (a flush) before anything is
        released, so at every moment some subscriber in the queue group takes each request.
        """
        wanted = set(users)
        added = [user for user in sorted(wanted) if user not in self._where]
        for user in added:
            reader = min(self._readers, key=lambda reader: len(reader.users))
            reader.users[user] = [
                await self._subscribe(reader.nc, route, user) for route in reader.routes
            ]
            self._where[user] = reader
        if added:
            await asyncio.gather(*(reader.nc.flush() for reader in self._readers))
        for user in [user for user in self._where if user not in wanted]:
            await self.release(user)

    async def release(self, user: str) -> None:
        """Stop reading `user`'s subjects; what NATS sent for them already is still served."""
        reader = self._where.pop(user)
        await asyncio.gather(*(drain(reader.nc, sub) for sub in reader.users.pop(user)))

    async def _subscribe(self, nc: LaneClient, route: UserRoute, user: str) -> Subscription:
        return await nc.subscribe_lane(route.subject(user), self._queue, route.lane)

    def unread_bytes(self) -> int:
        return sum(reader.nc.unread_bytes() for reader in self._readers)

    async def drain(self) -> None:
        """Drain every reader connection: no new requests, the ones read are served."""
        for user in list(self._where):
            await self.release(user)

    async def close(self, timeout: float) -> None:
        """Close every reader connection, each within `timeout`, whatever NATS does."""
        for reader in self._readers:
            if not reader.nc.is_closed:
                try:
                    await asyncio.wait_for(reader.nc.close(), timeout)
                except Exception as exc:
                    log.warning("closing a reader connection: %s: %s", type(exc).__name__, exc)


async def drain(nc: LaneClient, sub: Subscription) -> None:
    """Unsubscribe, serving what NATS sent before it took the unsubscription.

    The lane stays LANE_GRACE seconds more: nats-server can still deliver a message
    it routed (matched) just before the unsubscription after the PONG that closes
    nats-py's drain (measured here: two requests of 2,000, during a switch), and
    nats-py would drop it, unanswered, as the subscription is gone. No other
    subscriber got it, so serving it is serving it once.
    """
    try:
        await sub.drain()  # type: ignore[no-untyped-call]
    except Exception as exc:  # a connection lost meanwhile: what it held is gone with it
        log.warning("draining %s: %s: %s", sub.subject, type(exc).__name__, exc)
    finally:
        asyncio.get_running_loop().call_later(LANE_GRACE, nc.remove_lane, sub)
