"""The instructor's endpoints: /users, /users/<id>/revoke, /users/<id>/password.

Against the real auth service, NSC service and NATS server: a revoke cuts the
learner's live connection and refuses their tokens.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
import requests

from labkit.auth.accounts import set_role
from labkit.auth.client import AuthRequestFailed, Login
from labkit.auth.database import session_factory
from tests.auth.conftest import PASSWORD, AuthServer
from tests.nats_helpers import assert_connect_refused, observed_connection


def _account(auth: AuthServer, name: str, role: str = "learner") -> tuple[str, Login]:
    email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
    user_id = auth.client.register(email, PASSWORD)["id"]
    if role != "learner":
        set_role(session_factory(auth.engine), user_id, role)
    return email, auth.client.login(email, PASSWORD)


def _refused(call: object, status: int, error: str) -> AuthRequestFailed:
    assert callable(call)
    with pytest.raises(AuthRequestFailed) as refused:
        call()
    assert refused.value.status == status, refused.value
    assert refused.value.error == error, refused.value
    return refused.value


def test_an_instructor_logs_in_with_the_role(auth: AuthServer) -> None:
    _, teacher = _account(auth, "teacher", "instructor")
    assert teacher.role == "instructor"
    assert auth.client.me(teacher)["role"] == "instructor"


def test_the_instructor_lists_every_account_without_secrets(auth: AuthServer) -> None:
    _, teacher = _account(auth, "teacher", "instructor")
    alice_email, alice = _account(auth, "alice")
    listed = {user["id"]: user for user in auth.client.users(teacher)}
    assert listed[alice.user_id]["email"] == alice_email
    assert listed[alice.user_id]["role"] == "learner"
    assert listed[teacher.user_id]["role"] == "instructor"
    for user in listed.values():
        assert set(user) == {"id", "email", "role", "created_at"}


def test_learners_get_403_and_no_token_401(auth: AuthServer) -> None:
    _, alice = _account(auth, "alice")
    _, bob = _account(auth, "bob")
    detail = _refused(lambda: auth.client.users(alice), 403, "forbidden").detail
    assert "instructor" in detail
    _refused(lambda: auth.client.revoke_user(alice, bob.user_id), 403, "forbidden")
    _refused(lambda: auth.client.reset_password(alice, bob.user_id), 403, "forbidden")
    for method, path in (
        ("GET", "/users"),
        ("POST", f"/users/{bob.user_id}/revoke"),
        ("POST", f"/users/{bob.user_id}/password"),
    ):
        answer = requests.request(method, auth.url + path, timeout=10)
        assert answer.status_code == 401
        assert answer.json()["error"] == "missing_token"
    # Bob still logs in with his own password: nothing was changed by the refusals.
    assert auth.client.login(bob.email, PASSWORD).user_id == bob.user_id


def test_a_demoted_instructor_loses_the_rights_at_once(auth: AuthServer) -> None:
    _, teacher = _account(auth, "teacher", "instructor")
    assert auth.client.users(teacher)
    set_role(session_factory(auth.engine), teacher.user_id, "learner")
    _refused(lambda: auth.client.users(teacher), 403, "forbidden")


def test_unknown_ids_get_a_clear_404(auth: AuthServer) -> None:
    _, teacher = _account(auth, "teacher", "instructor")
    before = auth.rows()
    for call in (
        lambda: auth.client.revoke_user(teacher, "01nosuchuser0000000000000a"),
        lambda: auth.client.reset_password(teacher, "not-an-id"),
    ):
        detail = _refused(call, 404, "unknown_user").detail
        assert "GET /users" in detail
    assert auth.rows() == before


def test_reset_password_answers_a_new_one_once(auth: AuthServer) -> None:
    _, teacher = _account(auth, "teacher", "instructor")
    email, alice = _account(auth, "alice")
    password = auth.client.reset_password(teacher, alice.user_id)
    assert len(password) >= 16
    _refused(lambda: auth.client.login(email, PASSWORD), 401, "invalid_credentials")
    assert auth.client.login(email, password).user_id == alice.user_id
    # Asking again makes another: the first is gone.
    second = auth.client.reset_password(teacher, alice.user_id)
    assert second != password
    _refused(lambda: auth.client.login(email, password), 401, "invalid_credentials")


def test_revoke_cuts_the_live_connection_and_refuses_the_tokens(auth: AuthServer) -> None:
    _, teacher = _account(auth, "teacher", "instructor")
    email, alice = _account(auth, "alice")

    async def scenario() -> tuple[dict[str, object], str]:
        nc, seen = await observed_connection(alice.nats.creds, alice.nats.servers[0])
        assert nc.is_connected
        answer = await asyncio.to_thread(auth.client.revoke_user, teacher, alice.user_id)
        await asyncio.wait_for(seen.closed.wait(), timeout=10)
        return answer, str(nc.last_error)

    answer, last_error = asyncio.run(scenario())
    assert answer == {
        "id": alice.user_id,
        "email": email,
        "revoked": True,
        "nats_revoked": True,
        "nats_pushed": True,
    }
    assert "revoked" in last_error.lower()
    for call in (lambda: auth.client.me(alice), lambda: auth.client.refresh(alice)):
        _refused(call, 401, "token_revoked")
    # The revoked creds no longer connect.
    assert_connect_refused(alice.nats.servers, alice.nats.creds)
    # The teacher is unaffected; alice may log in again with new credentials.
    assert auth.client.users(teacher)
    again = auth.client.login(email, PASSWORD)
    assert auth.client.me(again)["id"] == alice.user_id
