"""Access and refresh tokens: /me, /refresh, /logout, and 401 for every bad token."""

from __future__ import annotations

import asyncio
import os
import stat
from datetime import timedelta

import pytest
import requests
from flask_jwt_extended import create_access_token

from labkit.auth.client import AuthRequestFailed
from tests.auth.conftest import PASSWORD, AuthServer
from tests.nats_helpers import Observed


def _me(auth: AuthServer, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.get(f"{auth.url}/me", headers=headers, timeout=10)


def test_me_refresh_and_the_token_types(auth: AuthServer, email: str) -> None:
    user_id = auth.client.register(email, PASSWORD)["id"]
    login = auth.client.login(email, PASSWORD)
    me = auth.client.me(login)
    assert me["id"] == user_id and me["email"] == email and me["created_at"]
    old_access = login.access_token
    auth.client.refresh(login)
    assert login.access_token != old_access
    assert auth.client.me(login)["id"] == user_id
    # A refresh token does not open /me, an access token does not refresh.
    assert _me(auth, login.refresh_token).status_code == 401
    refreshed = requests.post(
        f"{auth.url}/refresh",
        headers={"Authorization": f"Bearer {login.access_token}"},
        timeout=10,
    )
    assert refreshed.status_code == 401


@pytest.mark.parametrize(
    ("token", "error"),
    [
        (None, "missing_token"),
        ("", "invalid_token"),
        ("not-a-jwt", "invalid_token"),
        ("a.b.c", "invalid_token"),
    ],
)
def test_missing_or_malformed_tokens_get_401(
    auth: AuthServer, token: str | None, error: str
) -> None:
    response = _me(auth, token)
    assert response.status_code == 401
    assert response.json()["error"] == error
    assert response.json()["detail"]


def test_a_tampered_token_gets_401(auth: AuthServer, email: str) -> None:
    auth.client.register(email, PASSWORD)
    token = auth.client.login(email, PASSWORD).access_token
    header, payload, signature = token.split(".")
    middle = len(signature) // 2
    flipped = (
        signature[:middle] + ("A" if signature[middle] != "A" else "B") + signature[middle + 1 :]
    )
    for bad in (f"{header}.{payload}.{flipped}", f"{header}.{payload[:-4]}AAAA.{signature}"):
        response = _me(auth, bad)
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_token"


def test_an_expired_token_gets_401(auth: AuthServer, email: str) -> None:
    user_id = auth.client.register(email, PASSWORD)["id"]
    with auth.app.app_context():
        expired = create_access_token(identity=user_id, expires_delta=timedelta(seconds=-5))
    response = _me(auth, expired)
    assert response.status_code == 401
    assert response.json()["error"] == "token_expired"
    assert "POST /refresh" in response.json()["detail"]


def test_the_signing_secret_is_generated_and_private(auth: AuthServer) -> None:
    secret_file = auth.settings.paths.auth_secret_file
    assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600
    assert len(secret_file.read_text().strip()) >= 48


def test_logout_revokes_tokens_and_cuts_the_nats_connection(auth: AuthServer, email: str) -> None:
    auth.client.register(email, PASSWORD)
    login = auth.client.login(email, PASSWORD)

    async def scenario() -> Observed:
        seen = Observed()

        async def closed() -> None:
            seen.closed.set()

        nc = await login.connect(closed_cb=closed, allow_reconnect=False)
        assert nc.is_connected
        answer = await asyncio.to_thread(auth.client.logout, login)
        assert answer == {"logged_out": True, "nats_revoked": True, "nats_pushed": True}
        await asyncio.wait_for(seen.closed.wait(), timeout=1.0)
        seen.errors.append(str(nc.last_error))
        return seen

    seen = asyncio.run(scenario())
    assert "revoked" in seen.errors[-1].lower()
    after = _me(auth, login.access_token)
    assert after.status_code == 401
    assert after.json()["error"] == "token_revoked"
    with pytest.raises(AuthRequestFailed) as refused:
        auth.client.refresh(login)
    assert refused.value.status == 401
    # Logging in again works, with new credentials.
    again = auth.client.login(email, PASSWORD)
    assert auth.client.me(again)["email"] == email
