"""A learner's client for the auth service: register, log in, connect to NATS.

The NATS creds returned at login stay in memory (never a temp file), and the
connection uses the user's private inbox prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from nats.aio.client import Client

from labkit.auth.roles import LEARNER
from labkit.client import connect_as
from labkit.discovery import auth_url
from labkit.errors import LabkitError


class AuthRequestFailed(LabkitError):
    """The auth service refused a request; `status`, `error` and `detail` say why."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(f"{status} {error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail


@dataclass
class NatsGrant:
    """The NATS side of a login: where to connect, with what, allowed to do what."""

    servers: list[str]
    creds: str
    expires_at: datetime | None
    publish: list[str]
    subscribe: list[str]


@dataclass
class Login:
    """A logged-in user: tokens for the auth service, a grant for NATS."""

    user_id: str
    email: str
    access_token: str
    refresh_token: str
    nats: NatsGrant
    # "learner" or "instructor" (labkit.auth.roles).
    role: str = LEARNER

    async def connect(self, **options: Any) -> Client:
        """Connect to NATS as this user (creds from memory, inbox `_INBOX.<user_id>`)."""
        return await connect_as(self.nats.creds, servers=self.nats.servers, **options)


def login_from_answer(body: dict[str, Any], email: str) -> Login:
    """The Login a /login JSON answer describes (also read back from a saved answer)."""
    nats = body["nats"]
    expires = nats.get("expires_at")
    return Login(
        user_id=body["user_id"],
        email=email,
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
        nats=NatsGrant(
            servers=list(nats["servers"]),
            creds=nats["creds"],
            expires_at=datetime.fromisoformat(expires) if expires else None,
            publish=list(nats["publish"]),
            subscribe=list(nats["subscribe"]),
        ),
        # A service older than roles answers none: such an account is a learner.
        role=str(body.get("role", LEARNER)),
    )


class AuthClient:
    """HTTP client for /register, /login, /refresh, /me, /logout and the instructor's /users."""

    def __init__(self, url: str | None = None, *, timeout: float = 10.0) -> None:
        if url is None:
            url = auth_url()
        self.url = url.rstrip("/")
        self.timeout = timeout

    def register(self, email: str, password: str) -> dict[str, Any]:
        """Create an account; returns `{id, email}`."""
        return self._call("POST", "/register", {"email": email, "password": password}, 201)

    def login(self, email: str, password: str) -> Login:
        body = self._call("POST", "/login", {"email": email, "password": password}, 200)
        return login_from_answer(body, email)

    def me(self, login: Login) -> dict[str, Any]:
        return self._call("GET", "/me", None, 200, token=login.access_token)

    def refresh(self, login: Login) -> Login:
        """A new access token for `login` (updated in place and returned)."""
        body = self._call("POST", "/refresh", None, 200, token=login.refresh_token)
        login.access_token = body["access_token"]
        return login

    def logout(self, login: Login) -> dict[str, Any]:
        """Revoke the access token and the NATS credentials (a live connection is cut)."""
        return self._call("POST", "/logout", None, 200, token=login.access_token)

    def users(self, login: Login) -> list[dict[str, Any]]:
        """Every account (id, email, role, created_at); `login` must be an instructor's."""
        users: list[dict[str, Any]] = self._call(
            "GET", "/users", None, 200, token=login.access_token
        )["users"]
        return users

    def revoke_user(self, login: Login, user_id: str) -> dict[str, Any]:
        """Log `user_id` out everywhere (NATS connections cut, tokens refused); instructor."""
        return self._call("POST", f"/users/{user_id}/revoke", None, 200, token=login.access_token)

    def reset_password(self, login: Login, user_id: str) -> str:
        """A new random password for `user_id`, returned once; instructor only."""
        answer = self._call(
            "POST", f"/users/{user_id}/password", None, 200, token=login.access_token
        )
        return str(answer["password"])

    def _call(
        self, method: str, path: str, body: Any, expected: int, *, token: str | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            response = requests.request(
                method, self.url + path, json=body, headers=headers, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise AuthRequestFailed(0, "unreachable", f"{self.url}: {exc}") from exc
        try:
            answer: dict[str, Any] = response.json()
        except ValueError:
            answer = {"error": "not_json", "detail": response.text[:200]}
        if response.status_code != expected:
            raise AuthRequestFailed(
                response.status_code, answer.get("error", "error"), answer.get("detail", "")
            )
        return answer
