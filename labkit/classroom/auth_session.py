"""The hub's side of a learner's labkit session: log in, check it is alive, log out.

Plain HTTP against the auth service (/login, /me, /refresh, /logout), no JupyterHub:
the authenticator calls these in a thread. A session is the dict the hub keeps
encrypted in auth_state: `{"answer": <the /login JSON>, "email": ..., "auth_url": ...}`,
exactly what the learner file is made from.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import requests

from labkit.auth import roles
from labkit.errors import LabkitError

TIMEOUT_SECONDS = 10.0


class AuthServiceUnavailable(LabkitError):
    """The auth service did not answer (or answered with a server error)."""


@dataclass(frozen=True)
class LoginRefused:
    """The auth service refused the email and password (`status`: 401, 400, 429...)."""

    status: int
    error: str
    detail: str


def session_role(session: dict[str, Any]) -> str:
    """The role the auth service gave this session (learner until it says otherwise)."""
    return str(session["answer"].get("role", roles.LEARNER))


def is_instructor(session: dict[str, Any]) -> bool:
    return roles.is_instructor(session_role(session))


def log_in(auth_url: str, email: str, password: str) -> dict[str, Any] | LoginRefused:
    """A new session for `email`, or why the auth service refused it."""
    status, body = _call(auth_url, "POST", "/login", {"email": email, "password": password})
    if status != 200:
        return LoginRefused(status, str(body.get("error", "")), str(body.get("detail", "")))
    return {"answer": body, "email": email, "auth_url": auth_url}


def live_session(session: dict[str, Any]) -> dict[str, Any] | None:
    """The session, its access token renewed if it had expired; None once it is dead.

    Dead means logged out (here or anywhere: a logout ends every token the user had),
    revoked by an instructor, or the account gone. `/me`'s role, when it sends one,
    replaces the stored one, so a promotion or demotion shows at the next check.
    """
    url = session["auth_url"]
    answer = session["answer"]
    status, body = _call(url, "GET", "/me", None, token=answer["access_token"])
    if status == 401 and body.get("error") == "token_expired":
        status, renewed = _call(url, "POST", "/refresh", None, token=answer["refresh_token"])
        if status != 200:
            return None
        session = copy.deepcopy(session)
        session["answer"]["access_token"] = renewed["access_token"]
        status, body = _call(url, "GET", "/me", None, token=renewed["access_token"])
    if status != 200:
        return None
    if "role" in body and body["role"] != session["answer"].get("role"):
        session = copy.deepcopy(session)
        session["answer"]["role"] = body["role"]
    return session


def log_out(session: dict[str, Any]) -> bool:
    """End the session at the auth service (its NATS credentials are revoked, live
    connections cut). True when it was ended now, False when it was already dead."""
    alive = live_session(session)
    if alive is None:
        return False
    status, body = _call(
        alive["auth_url"], "POST", "/logout", None, token=alive["answer"]["access_token"]
    )
    if status != 200:
        raise AuthServiceUnavailable(f"logout answered {status}: {body.get('detail', body)}")
    return True


def _call(
    base_url: str, method: str, path: str, body: Any, *, token: str | None = None
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = base_url.rstrip("/") + path
    try:
        response = requests.request(
            method, url, json=body, headers=headers, timeout=TIMEOUT_SECONDS
        )
    except requests.RequestException as exc:
        raise AuthServiceUnavailable(
            f"the auth service at {base_url} does not answer: {exc}"
        ) from None
    if response.status_code >= 500:
        raise AuthServiceUnavailable(
            f"the auth service at {base_url} failed ({response.status_code}) on {path}; "
            "see its log (.labkit/logs/auth.log)"
        )
    try:
        answer = response.json()
    except ValueError:
        answer = {"error": "not_json", "detail": response.text[:200]}
    return response.status_code, answer if isinstance(answer, dict) else {"answer": answer}
