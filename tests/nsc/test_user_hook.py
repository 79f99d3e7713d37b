"""The hook `Nsc.create_user` runs once a learner's creds are stored (pure logic, no NATS).

`Nsc.from_settings` wires in the announcer (labkit.nsc.announce; against real
servers in tests/server/test_announcements.py); the wrapper itself only stores.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from labkit.nsc.announce import UserAnnouncer
from labkit.nsc.issued import IssuedUser
from labkit.nsc.wrapper import Nsc
from labkit.settings import Settings
from tests.conftest import make_settings


def test_the_hook_runs_for_learners_once_their_creds_are_stored(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []
    nsc = Nsc(tmp_path / "nsc")

    def hook(issued: IssuedUser) -> None:
        seen.append((issued.name, nsc.user_creds(issued.name).strip()))  # already stored

    nsc.on_user_created = hook
    nsc.setup()
    issued = nsc.create_user("hooked")
    assert seen == [("hooked", issued.creds.strip())]
    nsc.issue_server_user()  # the stack's own users are not announced
    nsc.edit_user("hooked", expires_in=None)  # nor an existing user's new JWT
    assert seen == [("hooked", issued.creds.strip())]


def test_from_settings_wires_the_announcer_and_plain_construction_does_not(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path / "home")
    assert isinstance(Nsc.from_settings(settings).on_user_created, UserAnnouncer)
    assert Nsc(settings.paths.nsc_store, settings.nsc).on_user_created is None


def test_the_announcer_never_raises_into_the_creation(tmp_path: Path) -> None:
    settings: Settings = make_settings(tmp_path / "home", nats={"url": "nats://127.0.0.1:1"})
    nsc = Nsc(settings.paths.nsc_store, settings.nsc)

    def broken_creds() -> str:
        raise RuntimeError("the keystore went away")

    nsc.on_user_created = UserAnnouncer(settings, broken_creds)
    nsc.setup()
    assert nsc.create_user("still-created").name in nsc.users()
    # No stack at all (no state file, no URL): nobody to tell, nothing tried.
    alone = make_settings(tmp_path / "alone")
    lonely = Nsc.from_settings(alone)
    lonely.setup()
    created = lonely.create_user("alone-user")
    assert created.name in lonely.users()
    # Another account than the servers read: not announced (the creds not even read).
    assert UserAnnouncer(alone, broken_creds)(replace(created, account="other")) is None
