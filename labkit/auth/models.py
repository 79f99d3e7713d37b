"""The auth service's tables (SQLAlchemy 2 declarative)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from labkit.auth.roles import LEARNER


class Base(DeclarativeBase):
    pass


class User(Base):
    """A learner or an instructor: the ULID is also the first token of every subject they own."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Every token carries the generation it was issued in; logout moves to the next one,
    # so every earlier token (access and refresh) is refused, even within the same second.
    token_generation: Mapped[int] = mapped_column(Integer, default=0)
    # "learner" or "instructor" (labkit.auth.roles). The server default also fills the
    # rows of a database made before roles existed (labkit.auth.database.migrate).
    role: Mapped[str] = mapped_column(
        String(16), default=LEARNER, server_default=LEARNER, nullable=False
    )


class RevokedToken(Base):
    """An access token revoked before its expiry (logout)."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
