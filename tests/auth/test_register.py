"""POST /register: a new user with a ULID id, or a clear error and nothing written."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from sqlalchemy import text

from labkit.nsc.names import validate_name
from tests.auth.conftest import PASSWORD, AuthServer


def _post(auth: AuthServer, body: Any, **kwargs: Any) -> requests.Response:
    return requests.post(f"{auth.url}/register", json=body, timeout=10, **kwargs)


def test_register_returns_a_lowercase_ulid_usable_as_a_subject_token(
    auth: AuthServer, email: str
) -> None:
    response = _post(auth, {"email": email, "password": PASSWORD})
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == email
    assert re.fullmatch(r"[0-9a-hjkmnp-tv-z]{26}", body["id"])
    assert validate_name(body["id"]) == body["id"]


def test_email_is_normalised_and_unique_without_case(auth: AuthServer, email: str) -> None:
    shouting = "  " + email.upper() + " "
    response = _post(auth, {"email": shouting, "password": PASSWORD})
    assert response.status_code == 201
    assert response.json()["email"] == email
    before = auth.rows()
    again = _post(auth, {"email": email, "password": PASSWORD})
    assert again.status_code == 409
    assert again.json() == {
        "error": "email_taken",
        "detail": f"{email} is already registered; log in instead",
    }
    assert auth.rows() == before


def test_the_password_is_stored_as_an_scrypt_hash(auth: AuthServer, email: str) -> None:
    user_id = _post(auth, {"email": email, "password": PASSWORD}).json()["id"]
    with auth.engine.connect() as connection:
        stored = connection.execute(
            text("SELECT password_hash FROM users WHERE id = :id"), {"id": user_id}
        ).scalar_one()
    assert stored.startswith("scrypt:")
    assert PASSWORD not in stored


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (None, 400, "JSON object"),
        ([], 400, "JSON object"),
        ("alice@example.com", 400, "JSON object"),
        ({}, 400, "missing field(s): email, password"),
        ({"email": "a@example.com"}, 400, "missing field(s): password"),
        ({"password": PASSWORD}, 400, "missing field(s): email"),
        ({"email": 7, "password": PASSWORD}, 422, "must both be strings"),
        ({"email": "a@example.com", "password": None}, 422, "must both be strings"),
        ({"email": "not-an-email", "password": PASSWORD}, 422, "invalid email"),
        ({"email": "a@", "password": PASSWORD}, 422, "invalid email"),
        ({"email": "a@example.com", "password": "short"}, 422, "at least 8 characters"),
        ({"email": "a@example.com", "password": "x" * 2000}, 422, "at most"),
    ],
)
def test_bad_input_gets_a_clear_error_and_writes_nothing(
    auth: AuthServer, body: Any, status: int, fragment: str
) -> None:
    before = auth.rows()
    response = _post(auth, body)
    assert response.status_code == status
    assert fragment in response.json()["detail"]
    assert response.json()["error"] in {"malformed_request", "invalid_field"}
    assert auth.rows() == before


def test_a_body_that_is_not_json_is_400(auth: AuthServer) -> None:
    before = auth.rows()
    response = requests.post(
        f"{auth.url}/register",
        data="email=a@example.com",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert response.status_code == 400
    assert auth.rows() == before


def test_sql_shaped_input_is_plain_data(auth: AuthServer) -> None:
    email = "o'brien+drop-table@example.com"
    password = "' OR '1'='1'; DROP TABLE users; --"
    assert _post(auth, {"email": email, "password": password}).status_code == 201
    assert auth.client.login(email, password).user_id
    wrong = requests.post(
        f"{auth.url}/login", json={"email": email, "password": "' OR 1=1 --"}, timeout=10
    )
    assert wrong.status_code == 401
    injected = _post(
        auth, {"email": "x'); DELETE FROM users; --@example.com", "password": PASSWORD}
    )
    assert injected.status_code == 422
    with auth.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM users")).scalar_one() > 0
