"""Roles: a database made before roles keeps every user, each a learner, after a start.

The old schema is written by hand (as labkit created it before `users.role`), with
users in it; then the auth service starts on it, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, make_url, text

from labkit.auth.accounts import hash_password, new_user_id
from labkit.auth.app import create_app
from labkit.auth.client import AuthClient
from labkit.auth.database import make_engine, migrate
from labkit.stack import Stack
from tests.auth.conftest import PASSWORD, _settings_for
from tests.wsgi import serve_in_thread

# The schema of labkit's auth database before roles (PostgreSQL and SQLite alike).
OLD_SCHEMA = (
    """CREATE TABLE users (
        id VARCHAR(26) NOT NULL PRIMARY KEY,
        email VARCHAR(320) NOT NULL,
        password_hash VARCHAR(255) NOT NULL,
        created_at TIMESTAMP WITH TIME ZONE NOT NULL,
        token_generation INTEGER NOT NULL
    )""",
    "CREATE UNIQUE INDEX ix_users_email ON users (email)",
    """CREATE TABLE revoked_tokens (
        jti VARCHAR(64) NOT NULL PRIMARY KEY,
        expires_at TIMESTAMP WITH TIME ZONE NOT NULL
    )""",
)


def _old_database(url: str, emails: list[str]) -> dict[str, str]:
    """Create the old schema at `url` with one user per email; {email: id}."""
    engine = create_engine(url)
    ids = {email: new_user_id() for email in emails}
    with engine.begin() as connection:
        for statement in OLD_SCHEMA:
            connection.execute(text(statement))
        for email, user_id in ids.items():
            connection.execute(
                text(
                    "INSERT INTO users (id, email, password_hash, created_at, token_generation)"
                    " VALUES (:id, :email, :hash, :at, 0)"
                ),
                {"id": user_id, "email": email, "hash": hash_password(PASSWORD), "at": _now()},
            )
    engine.dispose()
    return ids


def _now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def _fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A database of its own on the test PostgreSQL server (the shared one has new tables)."""
    name = f"labkit_migration_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old-auth.db'}"
        return
    with _fresh_postgres_database(request.getfixturevalue("postgres_url")) as url:
        yield url


def test_an_old_database_keeps_its_users_who_log_in_as_learners(
    running_stack: Stack, old_database_url: str
) -> None:
    emails = [f"old-{n}-{uuid.uuid4().hex[:6]}@example.com" for n in range(3)]
    ids = _old_database(old_database_url, emails)
    engine = make_engine(old_database_url)
    try:
        assert "role" not in {c["name"] for c in inspect(engine).get_columns("users")}
        settings = _settings_for(running_stack.settings, old_database_url)
        app = create_app(settings, engine=engine)  # the service's start migrates
        assert "role" in {c["name"] for c in inspect(engine).get_columns("users")}
        with serve_in_thread(app) as url:
            client = AuthClient(url)
            for email in emails:
                login = client.login(email, PASSWORD)
                assert login.user_id == ids[email]
                assert login.role == "learner"
                me = client.me(login)
                assert me["id"] == ids[email] and me["role"] == "learner"
            # New accounts work beside the migrated ones.
            newcomer = f"new-{uuid.uuid4().hex[:6]}@example.com"
            client.register(newcomer, PASSWORD)
            assert client.login(newcomer, PASSWORD).role == "learner"
        # A second start finds nothing left to migrate and keeps every user.
        assert migrate(engine) == []
        create_app(settings, engine=engine)
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT email, role FROM users")).all()
        assert sorted(rows) == sorted([(email, "learner") for email in [*emails, newcomer]])
    finally:
        engine.dispose()
