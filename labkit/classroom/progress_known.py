"""What one application server remembers of learners' progress records: pure bookkeeping.

Per learner, the exercise ids this process has seen stored in the bucket, with the
record's revision (its stream sequence) when known. The progress store uses it to
write a known record with one conditional put (labkit.classroom.progress_store);
nothing here is trusted for the per-learner bound without the bucket's say.

Memory is bounded: at most `max_ids` remembered ids (plus one per learner) in all;
past it, the learners least recently reported for are forgotten first (they cost a
listing of the bucket again on their next new exercise, nothing more). 100,000 ids
is ~10 MB, 500 learners at the default bound of 200 exercises each.

UserLocks serialises one learner's reports in this process; a learner's lock lives
only while a report of theirs is stored or waiting, so it costs no memory after.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

REMEMBERED_IDS = 100_000


@dataclass
class UserRecords:
    """One learner's records as this process last saw them."""

    # exercise id -> its record's last revision we know, None when only listed
    revisions: dict[str, int | None] = field(default_factory=dict)
    # True once `revisions` holds every id of a listing of the bucket (and ours since)
    listed: bool = False

    def replace_listing(self, exercise_ids: set[str]) -> None:
        """The bucket's listing now: ids absent from it are forgotten, revisions kept."""
        self.revisions = {ex: self.revisions.get(ex) for ex in sorted(exercise_ids)}
        self.listed = True

    def known_full(self, max_per_user: int) -> bool:
        """True when the last listing (and our writes since) reach `max_per_user`."""
        return self.listed and len(self.revisions) >= max_per_user


class KnownRecords:
    """UserRecords per learner, least recently used forgotten past `max_ids` ids."""

    def __init__(self, max_ids: int = REMEMBERED_IDS) -> None:
        if max_ids < 1:
            raise ValueError(f"max_ids must be 1 or more, not {max_ids}")
        self.max_ids = max_ids
        self._users: OrderedDict[str, UserRecords] = OrderedDict()
        self._sizes: dict[str, int] = {}
        self._total = 0

    def of(self, user: str) -> UserRecords:
        """`user`'s records (empty the first time), now the most recently used."""
        records = self._users.get(user)
        if records is None:
            records = self._users[user] = UserRecords()
            self._sizes[user] = 0
        self._users.move_to_end(user)
        return records

    def settle(self, user: str) -> None:
        """Count `user`'s records again after a change; forget others past the bound."""
        records = self._users.get(user)
        if records is None:
            return  # forgotten meanwhile: nothing to count
        size = len(records.revisions) + 1
        self._total += size - self._sizes[user]
        self._sizes[user] = size
        while self._total > self.max_ids and len(self._users) > 1:
            oldest = next(iter(self._users))
            if oldest == user:
                self._users.move_to_end(user)
                continue
            self.forget(oldest)

    def forget(self, user: str) -> None:
        if self._users.pop(user, None) is not None:
            self._total -= self._sizes.pop(user)

    def __contains__(self, user: object) -> bool:
        return user in self._users

    @property
    def remembered_ids(self) -> int:
        """Ids remembered in all (plus one per learner)."""
        return self._total


class UserLocks:
    """One asyncio lock per learner, dropped when no report of theirs holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, user: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(user, (asyncio.Lock(), 0))
        self._locks[user] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[user]
            if users == 1:
                del self._locks[user]
            else:
                self._locks[user] = (lock, users - 1)

    def __len__(self) -> int:
        """Learners with a report held or waiting."""
        return len(self._locks)
