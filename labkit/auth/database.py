"""The database engine: an SQLite file in the data dir by default, PostgreSQL by URL.

SQLite runs in WAL mode with a busy timeout, so concurrent requests wait for the
writer instead of failing with "database is locked".

`create_schema` also migrates a database made by an older labkit: columns added
since (`users.role`) are added in place with their default, so no user is lost.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from labkit.auth.models import Base
from labkit.auth.roles import LEARNER
from labkit.settings import Settings

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Columns added to existing tables since the first schema: (table, column, DDL type).
# Each has a constant default, so ALTER TABLE fills every existing row with it.
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("users", "role", f"VARCHAR(16) NOT NULL DEFAULT '{LEARNER}'"),
)


def database_url(settings: Settings) -> str:
    """LABKIT_DATABASE_URL, else a deployment's `<home>/secrets/database.url` file (the
    instructor dashboard's in docker/: never in an environment), else `<home>/auth.db`."""
    if settings.database.url:
        return settings.database.url
    if settings.paths.database_url_file.is_file():
        return settings.paths.database_url_file.read_text(encoding="utf-8").strip()
    return f"sqlite:///{settings.paths.auth_database}"


def make_engine(url: str) -> Engine:
    """An engine with the pragmas (SQLite) or pool checks (servers) this service needs."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def create_schema(engine: Engine) -> None:
    """Create the tables that are missing (first start), then add missing columns."""
    if engine.url.get_backend_name() == "sqlite" and engine.url.database:
        from pathlib import Path

        Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)
    Base.metadata.create_all(engine)
    migrate(engine)


def migrate(engine: Engine) -> list[str]:
    """Add the columns an older database lacks (SQLite and PostgreSQL); what was added.

    Two services starting at once may both try: the loser's "duplicate column" error
    is taken as done, once the column is seen to be there.
    """
    added = []
    for table, column, ddl in ADDED_COLUMNS:
        if _has_column(engine, table, column):
            continue
        try:
            with engine.begin() as connection:
                connection.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}"))
        except DBAPIError:
            if not _has_column(engine, table, column):
                raise
            continue
        added.append(f"{table}.{column}")
    return added


def _has_column(engine: Engine, table: str, column: str) -> bool:
    return column in {info["name"] for info in inspect(engine).get_columns(table)}


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
