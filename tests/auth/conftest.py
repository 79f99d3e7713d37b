"""The auth service on real HTTP, against SQLite and against a real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, text

from labkit.auth.app import create_app
from labkit.auth.client import AuthClient
from labkit.auth.database import make_engine
from labkit.auth.nsc_client import NscClient
from labkit.settings import AuthSettings, DatabaseSettings, Settings
from labkit.stack import Stack
from tests.wsgi import serve_in_thread

GENEROUS_LIMITS = {
    "login_attempts_per_email": 10_000,
    "login_attempts_per_address": 10_000,
    "login_attempts_per_email_everywhere": 10_000,
    "registrations_per_address": 10_000,
}


@dataclass
class AuthServer:
    url: str
    app: Flask
    engine: Engine
    settings: Settings
    client: AuthClient

    def rows(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, to prove an error wrote nothing."""
        with self.engine.connect() as connection:
            return {
                table: [tuple(row) for row in connection.execute(text(f"SELECT * FROM {table}"))]
                for table in ("users", "revoked_tokens")
            }


ServeAuth = Callable[..., AbstractContextManager[AuthServer]]


def _settings_for(base: Settings, database_url: str, **auth: Any) -> Settings:
    return base.model_copy(
        update={
            "database": DatabaseSettings(url=database_url),
            "auth": AuthSettings(**{**GENEROUS_LIMITS, **auth}),
        }
    )


@contextmanager
def _serve(
    base: Settings, database_url: str, nsc: NscClient | None = None, **auth: Any
) -> Iterator[AuthServer]:
    settings = _settings_for(base, database_url, **auth)
    engine = make_engine(database_url)
    app = create_app(settings, engine=engine, nsc=nsc)
    try:
        with serve_in_thread(app) as url:
            yield AuthServer(url, app, engine, settings, AuthClient(url))
    finally:
        engine.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('auth-sqlite') / 'auth.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(scope="session")
def auth(running_stack: Stack, database_url: str) -> Iterator[AuthServer]:
    """One auth service per database backend, on the shared NATS + NSC stack."""
    with _serve(running_stack.settings, database_url) as server:
        yield server


@pytest.fixture
def serve_auth(running_stack: Stack, database_url: str) -> ServeAuth:
    """Start another auth service with other settings (rate limits, token lifetimes)."""

    def serve(
        base: Settings | None = None, nsc: NscClient | None = None, **auth: Any
    ) -> AbstractContextManager[AuthServer]:
        """`nsc`: the NSC service client to use (tests point it elsewhere to stop it)."""
        return _serve(base or running_stack.settings, database_url, nsc, **auth)

    return serve


@pytest.fixture
def email() -> str:
    return f"learner-{uuid.uuid4().hex[:10]}@example.com"


PASSWORD = "correct horse battery"


def home_of(server: AuthServer) -> Path:
    return server.settings.home
