"""Finding 7 (NSC side): a revocation the NATS server missed is pushed until it has it.

The NSC service keeps every revocation in its store with an "unpushed" mark; when
the NATS server is down the push fails, the answer says so, and the service pushes
again in the background and at its own start. The NATS server here is restarted
from its own config and resolver directory, which still hold the account JWT from
before the revocation: only the push can cut the user off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
import requests
from nats.aio.client import RawCredentials
from nats.errors import Error as NatsError

from labkit.settings import Settings
from tests.conftest import make_settings
from tests.security.identity_processes import (
    Process,
    free_port,
    nats_config,
    service_env,
    start_nats,
    start_service,
    wait_until,
)


def can_connect(url: str, creds: str) -> bool:
    """True when the server lets `creds` in, False on "Authorization Violation"."""

    async def attempt() -> bool:
        try:
            nc = await nats.connect(
                url,
                user_credentials=RawCredentials(creds),
                allow_reconnect=False,
                max_reconnect_attempts=0,
                connect_timeout=5,
            )
        except NatsError as exc:
            if "authorization violation" in str(exc).lower():
                return False
            raise
        await nc.close()
        return True

    return asyncio.run(attempt())


@dataclass
class Rig:
    settings: Settings
    config: Path
    nats_url: str
    nats: Process
    nsc: Process
    nsc_port: int
    logs: Path

    def call(self, method: str, path: str, body: Any = None) -> requests.Response:
        token = self.settings.paths.nsc_token_file.read_text().strip()
        return requests.request(
            method,
            f"http://127.0.0.1:{self.nsc_port}{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )

    def start_nats(self) -> None:
        self.nats = start_nats(self.config, self.nats_url, self.logs / "nats.log")

    def start_nsc(self) -> None:
        env = service_env(self.settings, nats_url=self.nats_url, nsc_push_retry_interval="0.2")
        self.nsc = start_service("labkit.nsc.service", self.nsc_port, env, self.logs / "nsc.log")


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    settings = make_settings(tmp_path / "home")
    config, url = nats_config(settings)
    logs = tmp_path / "logs"
    rig = Rig(
        settings, config, url, Process([], logs / "none"), Process([], logs / "none"), 0, logs
    )
    rig.start_nats()
    rig.nsc_port = free_port()
    try:
        rig.start_nsc()
        yield rig
    finally:
        rig.nsc.stop()
        rig.nats.stop()


def _issue(rig: Rig, name: str) -> str:
    response = rig.call("POST", "/new-user", {"name": name})
    assert response.status_code == 201, response.text
    creds: str = response.json()["creds"]
    assert can_connect(rig.nats_url, creds)
    return creds


def test_a_revocation_made_while_nats_is_down_reaches_it_when_it_is_back(rig: Rig) -> None:
    creds = _issue(rig, "push-alice")
    rig.nats.stop()
    answer = rig.call("POST", "/revoke", {"name": "push-alice"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["pushed"] is False
    assert rig.call("GET", "/info").json()["pending_pushes"] == ["labkit"]
    rig.start_nats()
    wait_until(lambda: not can_connect(rig.nats_url, creds), "the revoked user is refused")
    wait_until(lambda: rig.call("GET", "/info").json()["pending_pushes"] == [], "queue empty")


def test_the_nsc_service_pushes_what_is_pending_when_it_starts(rig: Rig) -> None:
    creds = _issue(rig, "push-bob")
    rig.nats.stop()
    assert rig.call("POST", "/revoke", {"name": "push-bob"}).json()["pushed"] is False
    rig.nsc.stop()
    rig.start_nats()
    # The server came back from its old resolver: it does not know of the revocation.
    assert can_connect(rig.nats_url, creds)
    rig.start_nsc()
    wait_until(lambda: not can_connect(rig.nats_url, creds), "the revoked user is refused")
    assert rig.call("GET", "/info").json()["pending_pushes"] == []


def test_a_pushed_revocation_leaves_nothing_pending(rig: Rig) -> None:
    creds = _issue(rig, "push-carol")
    answer = rig.call("POST", "/revoke", {"name": "push-carol"})
    assert answer.json()["pushed"] is True
    assert not can_connect(rig.nats_url, creds)
    assert rig.call("GET", "/info").json()["pending_pushes"] == []
