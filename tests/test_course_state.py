"""The catch-up helper's reuse logic, on fakes (the real services: tests/test_catch_up.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from labkit.auth.client import AuthRequestFailed, Login, NatsGrant
from labkit.course_state import Accounts, is_open, kept
from tests.conftest import make_settings


def _login(email: str, user_id: str) -> Login:
    grant = NatsGrant(servers=[], creds="", expires_at=None, publish=[], subscribe=[])
    return Login(user_id=user_id, email=email, access_token="a", refresh_token="r", nats=grant)


class FakeAuth:
    """An auth service in memory: registered emails, and tokens it still accepts."""

    def __init__(self) -> None:
        self.users: dict[str, str] = {}
        self.revoked: set[str] = set()
        self.registered: list[str] = []

    def register(self, email: str, password: str) -> dict[str, Any]:
        self.users[email] = f"U{len(self.users)}"
        self.registered.append(email)
        return {"id": self.users[email], "email": email}

    def login(self, email: str, password: str) -> Login:
        if email not in self.users:
            raise AuthRequestFailed(401, "bad_credentials", "wrong email or password")
        return _login(email, self.users[email])

    def me(self, login: Login) -> dict[str, Any]:
        if login.email in self.revoked:
            raise AuthRequestFailed(401, "revoked", "logged out")
        return {"id": login.user_id}


class Connection:
    def __init__(self, connected: bool, closed: bool) -> None:
        self.is_connected, self.is_closed = connected, closed


def _accounts(tmp_path: Path, auth: FakeAuth, notebook: str = "03") -> Accounts:
    return Accounts(notebook, auth=auth, settings=make_settings(tmp_path))  # type: ignore[arg-type]


def test_kept_returns_only_what_exists_and_is_healthy() -> None:
    def broken(_value: object) -> bool:
        raise RuntimeError("half-built by a failed cell")

    namespace = {"nc": "there"}
    assert kept(namespace, "nc", lambda value: True) == "there"
    assert kept(namespace, "nc", lambda value: False) is None
    assert kept(namespace, "missing", lambda value: True) is None
    assert kept(namespace, "nc", broken) is None, "a health check that raises means rebuild"


@pytest.mark.parametrize(
    ("connection", "expected"),
    [
        (Connection(connected=True, closed=False), True),
        (Connection(connected=False, closed=False), False),  # reconnecting
        (Connection(connected=False, closed=True), False),
        ("not a connection", False),
    ],
)
def test_is_open(connection: object, expected: bool) -> None:
    assert is_open(connection) is expected


def test_accounts_register_once_then_log_the_same_learner_in(tmp_path: Path) -> None:
    auth = FakeAuth()
    first = _accounts(tmp_path, auth).login("alice", "pw")
    again = _accounts(tmp_path, auth).login("alice", "pw")  # a new kernel
    assert again.user_id == first.user_id and len(auth.registered) == 1
    assert _accounts(tmp_path, auth).remembered() == {"alice": first.email}
    _accounts(tmp_path, auth, "05").login("alice", "pw")
    assert len(auth.registered) == 2, "another notebook has learners of its own"


def test_an_account_the_service_forgot_is_replaced(tmp_path: Path) -> None:
    auth = FakeAuth()
    first = _accounts(tmp_path, auth).login("alice", "pw")
    del auth.users[first.email]  # a reset database
    replaced = _accounts(tmp_path, auth).login("alice", "pw")
    assert replaced.email != first.email
    assert _accounts(tmp_path, auth).remembered() == {"alice": replaced.email}


def test_an_unreachable_service_is_an_error_not_a_new_account(tmp_path: Path) -> None:
    auth = FakeAuth()
    _accounts(tmp_path, auth).login("alice", "pw")

    def unreachable(email: str, password: str) -> Login:
        raise AuthRequestFailed(0, "unreachable", "connection refused")

    auth.login = unreachable  # type: ignore[method-assign]
    with pytest.raises(AuthRequestFailed, match="unreachable"):
        _accounts(tmp_path, auth).login("alice", "pw")
    assert len(auth.registered) == 1


def test_a_damaged_memory_file_starts_over(tmp_path: Path) -> None:
    auth = FakeAuth()
    accounts = _accounts(tmp_path, auth)
    accounts.file.parent.mkdir(parents=True)
    accounts.file.write_text("{not json")
    assert accounts.remembered() == {}
    accounts.login("alice", "pw")
    assert set(accounts.remembered()) == {"alice"}


def test_reuse_or_login_keeps_a_live_login_and_replaces_a_revoked_one(tmp_path: Path) -> None:
    auth = FakeAuth()
    accounts = _accounts(tmp_path, auth)
    auth.register("mine@example.com", "pw")
    mine = auth.login("mine@example.com", "pw")
    assert accounts.reuse_or_login({"login": mine}, "login", "alice", "pw") is mine
    auth.revoked.add(mine.email)  # logged out by hand
    fresh = accounts.reuse_or_login({"login": mine}, "login", "alice", "pw")
    assert fresh is not mine and fresh.email == accounts.remembered()["alice"]
    assert accounts.reuse_or_login({"login": "junk"}, "login", "alice", "pw").email == fresh.email
