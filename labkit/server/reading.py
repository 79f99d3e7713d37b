"""Keeps the reader connections (labkit.server.readers) matching the users that exist.

Every LABKIT_SERVER_READER_REFRESH the users are listed (the NSC store's learners, or
a source the caller gives): new ones are subscribed on a reader, gone ones
released. Past LABKIT_SERVER_READER_MAX_USERS, or when the users cannot be listed,
the route catch-alls on the server's main connection read everyone instead, and
the readers give way; under the bound again, the other way round. Always the new
way in first, kept next to the old one for SWITCH_GRACE, then the old one drained:
every subscription is in the same queue group, so each request reaches exactly one
of them meanwhile. A learner the stack has just created is announced
(labkit.server.announcements): `learn` looks at the users at once, the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection

from nats.aio.subscription import Subscription

from labkit.server.readers import SWITCH_GRACE, UserReaders, drain
from labkit.server.wire import LaneClient
from labkit.settings import Settings

log = logging.getLogger("labkit.server")

# The users that exist (each one's route subjects get a reader subscription).
Users = Callable[[], Collection[str]]
# Subscribes the route catch-alls on the main connection (the server's own way in).
CatchAlls = Callable[[], Awaitable[list[Subscription]]]


class ReaderSwitch:
    """Subscribes and releases users on the readers; catch-alls past the user bound."""

    def __init__(
        self,
        readers: UserReaders,
        users: Users,
        main: LaneClient,
        catch_alls: CatchAlls,
        *,
        max_users: int,
        refresh_seconds: float,
    ) -> None:
        self.readers = readers
        self._users = users
        self._main = main
        self._subscribe_catch_alls = catch_alls
        self._max_users = max_users
        self._period = refresh_seconds
        self._catch_alls: list[Subscription] = []
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        # The last listing: when it began, and who it found (None: could not list).
        self._listed_at = float("-inf")
        self._listed: frozenset[str] | None = None

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._keep_current())

    async def refresh(self) -> None:
        """Bring the subscriptions to the users listed now; one refresh at a time."""
        async with self._lock:
            await self._refresh()

    async def learn(self, user: str) -> bool:
        """Read `user` now, if the users listed now include them (a new user's announcement).

        A refresh like any other (under the lock, within the user bound), unless one
        began after this was asked: it saw the store as it is now. True when the
        user's requests are read: on a reader of their own, or by the catch-alls.
        """
        asked = time.monotonic()
        async with self._lock:
            if self._listed_at < asked:
                await self._refresh()
            if user in self.readers.users:
                return True
            listed = self._listed
            return bool(self._catch_alls) and (listed is None or user in listed)

    async def drain(self) -> None:
        """Stop refreshing; drain the catch-alls and every user's subscriptions."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        catch_alls, self._catch_alls = self._catch_alls, []
        for sub in catch_alls:
            await drain(self._main, sub)
        await self.readers.drain()

    async def _keep_current(self) -> None:
        while True:
            await asyncio.sleep(self._period)
            try:
                await self.refresh()
            except Exception as exc:  # the NSC store unreadable a moment, NATS reconnecting
                log.warning("updating the reader connections: %s: %s", type(exc).__name__, exc)

    async def _refresh(self) -> None:
        users = await self._read_users()
        if users is not None and len(users) <= self._max_users:
            await self.readers.update(users)
            catch_alls, self._catch_alls = self._catch_alls, []
            if catch_alls:
                await asyncio.sleep(SWITCH_GRACE)
                log.info("%d users: each read on a reader connection again", len(users))
            for sub in catch_alls:
                await drain(self._main, sub)
            return
        if not self._catch_alls:
            if users is not None:
                log.warning(
                    "%d users, more than LABKIT_SERVER_READER_MAX_USERS (%d): "
                    "their requests are read on one connection",
                    len(users),
                    self._max_users,
                )
            self._catch_alls = await self._subscribe_catch_alls()
            await self._main.flush()
            await asyncio.sleep(SWITCH_GRACE)
        await self.readers.update(())

    async def _read_users(self) -> list[str] | None:
        """The users that exist, or None when they cannot be listed (then: catch-alls)."""
        self._listed_at = time.monotonic()
        try:
            users = list(await asyncio.to_thread(self._users))
        except Exception as exc:
            log.warning("listing the users: %s: %s", type(exc).__name__, exc)
            self._listed = None
            return None
        self._listed = frozenset(users)
        return users


def nsc_users(settings: Settings) -> Users:
    """The learners of the NSC store (not the stack's own users), listed anew each call."""
    from labkit.nsc.wrapper import Nsc

    nsc = Nsc.from_settings(settings)
    stack = nsc.stack_users

    def users() -> list[str]:
        return [user for user in nsc.users() if user not in stack]

    return users
