"""Many learners at once: no 500s, no "database is locked", one winner per email."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.auth.conftest import PASSWORD, AuthServer

THREADS = 20


def test_twenty_threads_register_and_log_in_at_once(auth: AuthServer) -> None:
    run = uuid.uuid4().hex[:8]

    def register_and_login(n: int) -> tuple[int, int]:
        body = {"email": f"crowd-{run}-{n}@example.com", "password": PASSWORD}
        registered = requests.post(f"{auth.url}/register", json=body, timeout=60)
        logged_in = requests.post(f"{auth.url}/login", json=body, timeout=60)
        return registered.status_code, logged_in.status_code

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(register_and_login, range(THREADS)))
    assert results == [(201, 200)] * THREADS


def test_duplicate_registrations_race_to_exactly_one_201(auth: AuthServer) -> None:
    body = {"email": f"race-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD}

    def register(_: int) -> int:
        return requests.post(f"{auth.url}/register", json=body, timeout=60).status_code

    with ThreadPoolExecutor(THREADS) as pool:
        codes = sorted(pool.map(register, range(THREADS)))
    assert codes == [201] + [409] * (THREADS - 1)
