"""Finding 3: no learner may take a name the stack uses or keeps for itself.

Before the fix the NSC service issued `labkit_server` (answering with the
application server's own key and seed) and `persist` (whose `persist.>` rights
read everyone's persisted traffic). The reserved set comes from one place,
`labkit.nsc.names`, which the wrapper, the service and the stack all use.
"""

from __future__ import annotations

import asyncio
from typing import Any

import nats
import pytest
import requests
from nats.aio.client import RawCredentials
from ulid import ULID

from labkit.auth.routes import new_user_id
from labkit.exercises.live import EXERCISE_SERVER
from labkit.nsc.errors import InvalidName, ReservedName
from labkit.nsc.names import RESERVED_PREFIXES, reserved_reason, stack_user_names
from labkit.nsc.wrapper import Nsc
from labkit.stack import Stack


def reserved_examples(stack_users: frozenset[str]) -> list[str]:
    """One name per entry of the reserved set, read from the code's one list."""
    names = sorted(stack_users)
    for prefix, _reason in RESERVED_PREFIXES:
        names += [prefix + "x", prefix.upper() + "x"]
    names.append("persist")
    return names


def _service(stack: Stack) -> tuple[str, dict[str, str]]:
    token = stack.settings.paths.nsc_token_file.read_text().strip()
    return stack.url("nsc"), {"Authorization": f"Bearer {token}"}


def _post(stack: Stack, path: str, body: dict[str, Any]) -> requests.Response:
    url, headers = _service(stack)
    return requests.post(url + path, json=body, headers=headers, timeout=10)


def test_the_reserved_set_covers_what_the_stack_uses(running_stack: Stack) -> None:
    settings = running_stack.settings.nsc
    stack_users = stack_user_names(settings)
    assert {"labkit_server", "labkit_observer"} <= stack_users
    # Every user the stack itself issued (server, observer) and the exercises' server.
    for name in [*Nsc.from_settings(running_stack.settings).users(), EXERCISE_SERVER]:
        if name.startswith("labkit_"):
            assert reserved_reason(name, stack_users) is not None, name
    assert [prefix for prefix, _ in RESERVED_PREFIXES] == ["labkit_", "persist", "$", "_"]


def test_the_service_refuses_every_reserved_name_with_422(running_stack: Stack) -> None:
    nsc = Nsc.from_settings(running_stack.settings)
    server_creds = nsc.server_creds()
    for name in reserved_examples(nsc.stack_users):
        for path in ("/new-user", "/revoke"):
            response = _post(running_stack, path, {"name": name})
            assert response.status_code == 422, (name, path, response.text)
            body = response.json()
            assert body["error"] in {"ReservedName", "InvalidName"}, body
            assert name in body["detail"]
            assert "creds" not in body
    # Nothing was issued or revoked: the server's creds are the ones it had.
    assert nsc.server_creds() == server_creds
    assert "persist" not in nsc.users()


def test_the_reason_says_why(running_stack: Stack) -> None:
    for name, fragment in [
        ("labkit_server", "one of the stack's own users"),
        ("persist", "persisted subjects"),
        ("labkit_anything", "stack's own users"),
        ("_private", "reply inboxes"),
    ]:
        response = _post(running_stack, "/new-user", {"name": name})
        assert response.status_code == 422
        assert response.json()["error"] == "ReservedName"
        assert fragment in response.json()["detail"]
        assert "choose another name" in response.json()["detail"]


def test_revoking_the_server_user_is_refused_and_it_still_connects(running_stack: Stack) -> None:
    nsc = Nsc.from_settings(running_stack.settings)
    response = _post(running_stack, "/revoke", {"name": nsc.settings.server_user})
    assert response.status_code == 422

    async def connect() -> None:
        nc = await nats.connect(
            running_stack.url("nats"),
            user_credentials=RawCredentials(nsc.server_creds()),
            allow_reconnect=False,
        )
        await nc.close()

    asyncio.run(connect())


def test_a_renamed_server_user_is_reserved_too(running_stack: Stack) -> None:
    settings = running_stack.settings.nsc.model_copy(update={"server_user": "srv"})
    nsc = Nsc(running_stack.settings.paths.nsc_store, settings)
    with pytest.raises(ReservedName, match="stack's own users"):
        nsc.create_user("srv")


def test_the_wrapper_refuses_them_too(running_stack: Stack) -> None:
    nsc = Nsc.from_settings(running_stack.settings)
    for name in reserved_examples(nsc.stack_users):
        with pytest.raises(InvalidName):
            nsc.create_user(name)
        with pytest.raises(InvalidName):
            nsc.edit_user(name)
        with pytest.raises(InvalidName):
            nsc.revoke_user(name)


def test_only_reserved_names_are_stack_users(running_stack: Stack) -> None:
    nsc = Nsc.from_settings(running_stack.settings)
    with pytest.raises(InvalidName, match="not a stack user"):
        nsc.issue_stack_user("alice", nsc.issue_observer_user().permissions)


def test_the_auth_service_cannot_produce_a_reserved_name() -> None:
    # Its users' NATS names are lower-case ULIDs: they begin with a digit (0-7 until
    # the year 10889), never with a letter, '$' or '_'.
    for _ in range(1000):
        name = new_user_id()
        assert reserved_reason(name) is None
        assert name[0] in "01234567"
    assert str(ULID()).lower()[0].isdigit()
