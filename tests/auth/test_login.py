"""POST /login: tokens plus NATS creds that open only the user's own subjects."""

from __future__ import annotations

import time

import requests

from labkit.nsc import jwt
from labkit.nsc.creds import parse_creds
from tests.auth.conftest import PASSWORD, AuthServer, ServeAuth
from tests.permissions import user_publish_permissions


def test_login_returns_tokens_and_nats_creds(auth: AuthServer, email: str) -> None:
    user_id = auth.client.register(email, PASSWORD)["id"]
    response = requests.post(
        f"{auth.url}/login", json={"email": email, "password": PASSWORD}, timeout=10
    )
    assert response.status_code == 200
    body = response.json()
    assert body["user_id"] == user_id
    assert body["access_token"] and body["refresh_token"]
    nats = body["nats"]
    assert nats["servers"] == [_nats_url(auth)]
    assert nats["publish"] == user_publish_permissions(user_id)
    assert nats["subscribe"] == [f"{user_id}.>", f"_INBOX.{user_id}.>"]
    claims = jwt.verify(parse_creds(nats["creds"])[0])
    assert claims["name"] == user_id
    assert claims["nats"]["pub"]["allow"] == user_publish_permissions(user_id)
    assert "_INBOX.>" not in claims["nats"]["sub"]["allow"]
    assert ">" not in claims["nats"]["sub"]["allow"]
    # Six months (183 days) by default.
    assert abs(claims["exp"] - (time.time() + 183 * 86400)) < 60


def _nats_url(auth: AuthServer) -> str:
    from labkit.discovery import nats_url

    return nats_url(auth.settings)


def test_unknown_email_and_wrong_password_get_the_same_answer(auth: AuthServer, email: str) -> None:
    auth.client.register(email, PASSWORD)
    before = auth.rows()
    answers = [
        requests.post(f"{auth.url}/login", json=body, timeout=10)
        for body in (
            {"email": email, "password": "wrong password"},
            {"email": "nobody-" + email, "password": PASSWORD},
        )
    ]
    assert [a.status_code for a in answers] == [401, 401]
    assert answers[0].json() == answers[1].json()
    assert answers[0].json()["detail"] == "invalid email or password"
    assert auth.rows() == before


def test_a_malformed_login_is_400(auth: AuthServer) -> None:
    response = requests.post(f"{auth.url}/login", json={"email": "a@example.com"}, timeout=10)
    assert response.status_code == 400


def test_a_burst_of_wrong_passwords_gets_429(serve_auth: ServeAuth, email: str) -> None:
    with serve_auth(login_attempts_per_email=3) as auth:
        auth.client.register(email, PASSWORD)
        wrong = {"email": email, "password": "not the password"}
        codes = [
            requests.post(f"{auth.url}/login", json=wrong, timeout=10).status_code for _ in range(4)
        ]
        assert codes == [401, 401, 401, 429]
        # Even the right password waits: the lock is per email.
        locked = requests.post(
            f"{auth.url}/login", json={"email": email, "password": PASSWORD}, timeout=10
        )
        assert locked.status_code == 429
        assert int(locked.headers["Retry-After"]) >= 1
        assert "try again in" in locked.json()["detail"]


def test_failures_are_also_limited_per_client_address(serve_auth: ServeAuth, email: str) -> None:
    with serve_auth(login_attempts_per_address=2) as auth:
        codes = [
            requests.post(
                f"{auth.url}/login",
                json={"email": f"{n}-{email}", "password": "whatever1"},
                timeout=10,
            ).status_code
            for n in range(3)
        ]
        assert codes == [401, 401, 429]
