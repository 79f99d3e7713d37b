"""The throwaway PostgreSQL server is a real one: SQLAlchemy + psycopg can use it."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, select, text


def test_throwaway_postgres_round_trip(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    assert postgres_url.endswith("/labkit_test")
    metadata = MetaData()
    notes = Table(
        "fixture_notes",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("body", String(100), nullable=False),
    )
    engine = create_engine(postgres_url)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(notes.insert(), [{"body": "héllo ✓"}])
        with engine.connect() as conn:
            assert conn.execute(select(notes.c.body)).scalars().all() == ["héllo ✓"]
            assert conn.execute(text("select current_database()")).scalar() == "labkit_test"
            assert conn.execute(text("show server_encoding")).scalar() == "UTF8"
            assert conn.execute(text("show fsync")).scalar() == "off"
            version: str = conn.execute(text("show server_version_num")).scalar_one()
            assert int(version) >= 120000
        metadata.drop_all(engine)
    finally:
        engine.dispose()
