"""Who is online in a class: learners announce themselves, the server answers the roster.

A learner sends `EchoRequest(message=<display name>)` on `<user>.roster`. The server
records the sender, read from the *subject* (NATS lets a user publish under its own
id only, so nobody can announce someone else), and answers
`EchoResponse(message=<JSON list of {"id", "name", "ago"}>)`: everyone who announced
themselves in the last `ONLINE_SECONDS`, the sender included, with the seconds since.
The display name is whatever the learner typed (shortened); the id is the identity.

Each learner has one entry (a new announcement replaces it), so the roster grows
with the class, never with one learner's messages. With several application server
replicas, each keeps the announcements it answered: a learner's own kernel keeps
announcing while it looks (`find_classmate`), so every replica soon knows them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from nats.aio.client import Client

from labkit.client import request
from labkit.protocol import EchoRequest, EchoResponse
from labkit.server.injection import CurrentUser, register_dependency
from labkit.server.router import Router
from labkit.subjects import any_user, user_subject

ROSTER = "roster"
ONLINE_SECONDS = 120.0  # an announcement keeps a learner on the roster this long
MAX_NAME = 40
MAX_ENTRIES = 10_000  # learners, not messages: one entry each
ANNOUNCE_EVERY = 0.5  # seconds between announcements while waiting for a classmate
# Partners are picked among the learners waiting right now (they announce every
# ANNOUNCE_EVERY s), not everyone seen in the last ONLINE_SECONDS.
WAITING_SECONDS = 5.0

router = Router("roster")


@dataclass(frozen=True)
class Classmate:
    """A learner on the roster: the id NATS vouches for, and the name they gave."""

    id: str
    name: str
    ago: float = field(default=0.0, compare=False)  # seconds since their last announcement


class Roster:
    """Who announced themselves lately: one entry per user id, newest last."""

    def __init__(
        self,
        online_seconds: float = ONLINE_SECONDS,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.online_seconds = online_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._seen: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def announce(self, user: str, name: str) -> None:
        self._seen.pop(user, None)
        self._seen[user] = (clean_name(name) or user, self._clock())
        while len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)  # the one silent longest

    def online(self) -> list[Classmate]:
        horizon = self._clock() - self.online_seconds
        for user in [user for user, (_, at) in self._seen.items() if at < horizon]:
            del self._seen[user]
        now = self._clock()
        return [Classmate(user, name, now - at) for user, (name, at) in self._seen.items()]


register_dependency(Roster)


def clean_name(name: str) -> str:
    """A display name as the roster shows it: printable, one line, at most MAX_NAME."""
    printable = "".join(char if char.isprintable() else " " for char in name)
    return " ".join(printable.split())[:MAX_NAME]


@router.subscribe(any_user(ROSTER))
async def roster(announcement: EchoRequest, user: CurrentUser, seen: Roster) -> EchoResponse:
    seen.announce(user, announcement.message)
    online = [{"id": mate.id, "name": mate.name, "ago": mate.ago} for mate in seen.online()]
    return EchoResponse(message=json.dumps(online))


async def announce(nc: Client, user: str, name: str, timeout: float = 2.0) -> list[Classmate]:
    """Say `user` is here (as `name`); returns who is online, `user` included."""
    answer = await request(
        nc, user_subject(user, ROSTER), EchoRequest(message=name), EchoResponse, timeout
    )
    return [
        Classmate(str(entry["id"]), str(entry["name"]), float(entry.get("ago", 0.0)))
        for entry in json.loads(answer.message)
    ]


async def find_classmate(
    nc: Client,
    user: str,
    name: str,
    *,
    prefer: str | None = None,
    mutual: bool = True,
    timeout: float = 120.0,
) -> Classmate:
    """A classmate on the roster, announcing meanwhile: `prefer` (an id or a name), else
    the partner `partner_of` gives, so that two learners pick each other (`mutual`), else
    anyone else online.

    Raises TimeoutError, saying what to do, when nobody else shows within `timeout`.
    """
    deadline = time.monotonic() + timeout
    while True:
        online = await announce(nc, user, name)
        if prefer:
            chosen = [mate for mate in online if mate.id != user and prefer in (mate.id, mate.name)]
        elif mutual:
            waiting = [mate for mate in online if mate.ago <= WAITING_SECONDS]
            chosen = [mate for mate in [partner_of(user, waiting)] if mate is not None]
        else:
            chosen = [mate for mate in online if mate.id != user]
        if chosen:
            return chosen[0]
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"no classmate{f' called {prefer!r}' if prefer else ''} came online within "
                f"{timeout:g} s: ask one to run this notebook's roster cell too, then run it again"
            )
        await asyncio.sleep(ANNOUNCE_EVERY)


def partner_of(user: str, online: list[Classmate]) -> Classmate | None:
    """`user`'s partner: the online learners sorted by id, paired first with second,
    third with fourth, ...; None while `user` is last of an odd count (or not online)."""
    ordered = sorted(online, key=lambda mate: mate.id)
    ids = [mate.id for mate in ordered]
    if user not in ids:
        return None
    partner = ids.index(user) ^ 1
    return ordered[partner] if partner < len(ordered) else None
