"""The NATS credentials' lifetime follows NscSettings, and the server refuses expired ones."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit.nsc import jwt
from labkit.nsc.creds import parse_creds
from labkit.stack import Stack
from tests.auth.conftest import PASSWORD, ServeAuth
from tests.conftest import make_settings
from tests.nats_helpers import assert_connect_refused

LIFETIME_SECONDS = 3


@pytest.fixture
def short_lived_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    # The NSC service is its own process: it reads the expiry from its environment.
    monkeypatch.setenv("LABKIT_NSC_CREDENTIAL_EXPIRY", str(LIFETIME_SECONDS))
    stack = Stack(make_settings(tmp_path / "home"))
    stack.ensure("nats", "nsc")
    yield stack
    stack.down()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_expiry_follows_settings_and_an_expired_jwt_is_refused(
    short_lived_stack: Stack, serve_auth: ServeAuth, email: str
) -> None:
    with serve_auth(short_lived_stack.settings) as auth:
        auth.client.register(email, PASSWORD)
        before = int(time.time())
        login = auth.client.login(email, PASSWORD)
        after = time.time()
    exp = jwt.decode(parse_creds(login.nats.creds)[0])["exp"]
    assert before + LIFETIME_SECONDS <= exp <= after + LIFETIME_SECONDS
    assert login.nats.expires_at is not None
    assert int(login.nats.expires_at.timestamp()) == exp

    time.sleep(max(0.0, exp - time.time()) + 1.1)

    assert_connect_refused(login.nats.servers, login.nats.creds)
