"""Who can be talked to: the users the NSC store has issued credentials for."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod

from labkit.nsc.wrapper import Nsc
from labkit.server.injection import register_dependency


class UserDirectory(ABC):
    """Answers whether a user exists (ping-pong refuses unknown destinations)."""

    @abstractmethod
    def knows(self, user: str) -> bool: ...


class StaticDirectory(UserDirectory):
    """A fixed set of users (tests, in-memory experiments)."""

    def __init__(self, *users: str) -> None:
        self.users = set(users)

    def knows(self, user: str) -> bool:
        return user in self.users


class NscDirectory(UserDirectory):
    """The users of the NSC store, re-read at most once a second."""

    def __init__(self, nsc: Nsc, refresh_seconds: float = 1.0) -> None:
        self._nsc = nsc
        self._refresh = refresh_seconds
        self._users: set[str] = set()
        self._read_at = float("-inf")

    def knows(self, user: str) -> bool:
        if user not in self._users and time.monotonic() - self._read_at > self._refresh:
            self._users = set(self._nsc.users())
            self._read_at = time.monotonic()
        return user in self._users


register_dependency(UserDirectory)
