"""Who ping-pong may relay to: the NSC store's users, a new one known at once."""

from __future__ import annotations

from labkit.labs.directory import NscDirectory
from labkit.nsc.wrapper import Nsc
from labkit.stack import Stack
from tests.labs.streams import unique_user


def test_a_user_registered_a_moment_ago_is_known_at_once(running_stack: Stack) -> None:
    nsc = Nsc.from_settings(running_stack.settings)
    directory = NscDirectory(nsc, refresh_seconds=3600)  # the listing is never re-read
    newcomer = unique_user("directory")
    assert directory.knows(newcomer) is False  # lists the store once
    nsc.create_user(newcomer)
    assert directory.knows(newcomer) is True  # found by its own file, within the hour


def test_names_that_cannot_be_users_are_unknown(running_stack: Stack) -> None:
    directory = NscDirectory(Nsc.from_settings(running_stack.settings))
    for name in ("", "../operator", "a.b", "*", ">", "x" * 200):
        assert directory.knows(name) is False, name
