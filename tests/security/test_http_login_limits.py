"""The login limiter and the /register limit, on a real waitress-served auth process.

Before: 16 parallel wrong passwords had 12 checked (limit 5), any caller could lock
any email (the right password got 429), and /register had no limit at all. Client
addresses differ by binding the client socket to 127.0.0.x (all loopback).
"""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from labkit.stack import Stack
from tests.security.identity_processes import Process, free_port, service_env, start_service

PASSWORD = "correct horse battery"


class AuthProcess:
    def __init__(self, process: Process, port: int) -> None:
        self.process = process
        self.port = port

    def post(self, path: str, body: Any, source: str = "127.0.0.1") -> tuple[int, dict[str, Any]]:
        """POST JSON from the client address `source` (any 127.x.y.z)."""
        connection = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=60, source_address=(source, 0)
        )
        try:
            connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer: dict[str, Any] = json.loads(response.read() or b"{}")
            if response.status == 429:
                assert int(response.getheader("Retry-After") or 0) >= 1
            return response.status, answer
        finally:
            connection.close()

    def login(self, email: str, password: str, source: str = "127.0.0.1") -> int:
        return self.post("/login", {"email": email, "password": password}, source)[0]


StartAuth = Callable[..., AbstractContextManager[AuthProcess]]


@pytest.fixture
def start_auth(running_stack: Stack, tmp_path: Path) -> StartAuth:
    @contextmanager
    def start(**limits: int) -> Iterator[AuthProcess]:
        env = service_env(
            running_stack.settings,
            database_url=f"sqlite:///{tmp_path / 'auth.db'}",
            nsc_service_url=running_stack.url("nsc"),
            **{f"auth_{name}": str(value) for name, value in limits.items()},
        )
        port = free_port()
        process = start_service("labkit.auth.app", port, env, tmp_path / "auth.log")
        try:
            yield AuthProcess(process, port)
        finally:
            process.stop()

    return start


def _email() -> str:
    return f"limit-{uuid.uuid4().hex[:10]}@example.com"


def test_parallel_wrong_passwords_are_counted_before_hashing(start_auth: StartAuth) -> None:
    with start_auth(login_attempts_per_email=5, login_attempts_per_address=1000) as auth:
        email = _email()
        assert auth.post("/register", {"email": email, "password": PASSWORD})[0] == 201
        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(lambda _: auth.login(email, "wrong password"), range(16)))
        assert codes.count(401) == 5, codes
        assert codes.count(429) == 11, codes


def test_a_third_party_cannot_lock_a_learner_out(start_auth: StartAuth) -> None:
    with start_auth(
        login_attempts_per_email=3,
        login_attempts_per_address=1000,
        login_attempts_per_email_everywhere=4,
    ) as auth:
        victim = _email()
        assert auth.post("/register", {"email": victim, "password": PASSWORD})[0] == 201
        # One attacker address alone: held back by its own per-email limit.
        codes = [auth.login(victim, "wrong password", "127.0.0.2") for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        # More addresses: once the email has failed 4 times in all, an address that has
        # failed for it waits (its own limit of 3 not reached yet).
        assert auth.login(victim, "wrong password", "127.0.0.3") == 401
        assert auth.login(victim, "wrong password", "127.0.0.3") == 429
        # Even with the right password, from an address that failed for this email.
        assert auth.login(victim, PASSWORD, "127.0.0.3") == 429
        # The learner, from an address that has not failed, gets in: no lockout.
        assert auth.login(victim, PASSWORD, "127.0.0.50") == 200
        assert auth.login(victim, PASSWORD, "127.0.0.50") == 200


def test_a_correct_password_does_not_count_as_a_failure(start_auth: StartAuth) -> None:
    with start_auth(login_attempts_per_email=2, login_attempts_per_address=1000) as auth:
        email = _email()
        assert auth.post("/register", {"email": email, "password": PASSWORD})[0] == 201
        for _ in range(4):
            assert auth.login(email, PASSWORD) == 200


def test_register_is_limited_per_client_address(start_auth: StartAuth) -> None:
    with start_auth(registrations_per_address=3) as auth:
        emails = [_email() for _ in range(5)]
        codes = [
            auth.post("/register", {"email": email, "password": PASSWORD}, "127.0.0.7")[0]
            for email in emails
        ]
        assert codes == [201, 201, 201, 429, 429]
        status, answer = auth.post(
            "/register", {"email": _email(), "password": PASSWORD}, "127.0.0.7"
        )
        assert status == 429
        assert "too many registrations" in answer["detail"]
        # Another address registers, and the limited one still logs in.
        other = {"email": _email(), "password": PASSWORD}
        assert auth.post("/register", other, "127.0.0.8")[0] == 201
        assert auth.login(emails[0], PASSWORD, "127.0.0.7") == 200
