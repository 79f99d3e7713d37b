"""Who can be talked to: the users the NSC store has issued credentials for."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod

from labkit.nsc.errors import InvalidName, NotFound
from labkit.nsc.names import validate_name
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
    """The users of the NSC store: listed at most once a second, and one user looked up
    by its own file in between, so a user registered a moment ago is known at once."""

    def __init__(self, nsc: Nsc, refresh_seconds: float = 1.0) -> None:
        self._nsc = nsc
        self._refresh = refresh_seconds
        self._users: set[str] = set()
        self._read_at = float("-inf")

    def knows(self, user: str) -> bool:
        if user in self._users:
            return True
        try:
            name = validate_name(user, "user name")
        except InvalidName:
            return False
        if time.monotonic() - self._read_at > self._refresh:
            self._users = set(self._nsc.users())
            self._read_at = time.monotonic()
            return name in self._users
        try:  # one file, not a listing: cheap even for a flood of unknown names
            self._nsc.read_user_jwt(name)
        except NotFound:
            return False
        self._users.add(name)
        return True


register_dependency(UserDirectory)
