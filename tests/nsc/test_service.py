"""The NSC service over real HTTP (waitress), as the stack runs it."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from labkit.nsc.creds import parse_creds
from labkit.nsc.jwt import verify
from labkit.stack import Stack
from tests.permissions import user_publish_permissions

Call = Callable[..., requests.Response]


@pytest.fixture
def call(running_stack: Stack) -> Call:
    base = running_stack.url("nsc")
    token = running_stack.settings.paths.nsc_token_file.read_text().strip()

    def send(
        method: str, path: str, body: Any = None, *, auth: str | None = token
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {auth}"} if auth is not None else {}
        return requests.request(method, base + path, json=body, headers=headers, timeout=10)

    return send


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != ".lock"
    }


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/info", None),
        ("POST", "/new-setup", {"operator": "labkit", "account": "labkit"}),
        ("POST", "/new-user", {"name": "svc-nobody"}),
        ("POST", "/revoke", {"name": "svc-nobody"}),
    ],
)
@pytest.mark.parametrize("auth", [None, "wrong-token", ""])
def test_calls_without_the_token_get_401(
    call: Call, method: str, path: str, body: Any, auth: str | None
) -> None:
    response = call(method, path, body, auth=auth)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_token_file_is_private(running_stack: Stack) -> None:
    mode = stat.S_IMODE(os.stat(running_stack.settings.paths.nsc_token_file).st_mode)
    assert mode == 0o600


def test_healthz_needs_no_token(call: Call) -> None:
    assert call("GET", "/healthz", auth=None).json() == {"status": "ok"}


def test_info_describes_the_store(call: Call, running_stack: Stack) -> None:
    info = call("GET", "/info").json()
    assert info["set_up"] is True
    assert info["operator"] == "labkit"
    assert "labkit" in info["accounts"] and "SYS" in info["accounts"]
    assert info["credential_expiry_seconds"] == 183 * 24 * 3600
    assert info["store_dir"] == str(running_stack.settings.paths.nsc_store)


def test_new_setup_is_idempotent_and_returns_the_account_jwt(call: Call) -> None:
    first = call("POST", "/new-setup", {"operator": "labkit", "account": "labkit"})
    second = call("POST", "/new-setup", {"operator": "labkit", "account": "labkit"})
    assert first.status_code == second.status_code == 200
    assert first.json()["account_jwt"] == second.json()["account_jwt"]
    assert verify(first.json()["account_jwt"])["name"] == "labkit"


def test_new_setup_with_another_operator_conflicts(call: Call) -> None:
    response = call("POST", "/new-setup", {"operator": "someone-else", "account": "labkit"})
    assert response.status_code == 409
    assert "one store holds one operator" in response.json()["detail"]


def test_new_setup_adds_an_account_and_pushes_it(call: Call) -> None:
    response = call("POST", "/new-setup", {"operator": "labkit", "account": "svc-team"})
    assert response.status_code == 200
    assert response.json()["pushed"] is True
    user = call("POST", "/new-user", {"name": "svc-member", "account": "svc-team"})
    assert user.status_code == 201
    assert user.json()["account"] == "svc-team"


def test_new_user_returns_creds_with_its_own_permissions(call: Call) -> None:
    response = call("POST", "/new-user", {"name": "svc-carol"})
    assert response.status_code == 201
    body = response.json()
    user_jwt, seed = parse_creds(body["creds"])
    assert seed.startswith("SU")
    assert verify(user_jwt)["name"] == "svc-carol"
    assert body["permissions"]["publish"] == user_publish_permissions("svc-carol")
    assert body["permissions"]["subscribe"] == ["svc-carol.>", "_INBOX.svc-carol.>"]


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty"),
        ("a.b", "dot"),
        ("a*", "wildcard"),
        ("a>", "wildcard"),
        ("a b", "whitespace"),
        ("x" * 65, "limit is 64"),
        (42, "must be a string"),
    ],
)
def test_invalid_names_get_422_and_leave_the_store_unchanged(
    call: Call, running_stack: Stack, name: Any, why: str
) -> None:
    store = running_stack.settings.paths.nsc_store
    before = _tree(store)
    for path in ("/new-user", "/revoke"):
        response = call("POST", path, {"name": name})
        assert response.status_code == 422, response.text
        assert why in response.json()["detail"]
    response = call("POST", "/new-setup", {"operator": "labkit", "account": name})
    assert response.status_code == 422
    assert _tree(store) == before


@pytest.mark.parametrize("body", [None, [], "alice", {"nom": "alice"}])
def test_malformed_bodies_get_400(call: Call, body: Any) -> None:
    response = call("POST", "/new-user", body)
    assert response.status_code == 400
    assert response.json()["detail"]


def test_unknown_user_or_account_gets_404(call: Call) -> None:
    assert call("POST", "/revoke", {"name": "svc-never-created"}).status_code == 404
    response = call("POST", "/new-user", {"name": "svc-dave", "account": "no-such-account"})
    assert response.status_code == 404
    assert "new-setup" in response.json()["detail"]


def test_unknown_route_is_json_404(call: Call) -> None:
    response = call("GET", "/nope")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
