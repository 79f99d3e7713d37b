"""Who is in the class: learner ids and emails, read from the auth service's database.

A learner's NATS name is their auth user id (a ULID), so every other view of the
dashboard (connections, progress keys, stats) is keyed by that id; this module puts
an email beside it. Read only: the dashboard never changes an account here except
through `actions`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from labkit.auth.database import database_url, make_engine
from labkit.auth.models import User
from labkit.auth.roles import LEARNER, is_instructor
from labkit.errors import LabkitError
from labkit.settings import Settings


class RosterUnavailable(LabkitError):
    """The auth database cannot be read."""


@dataclass(frozen=True)
class Member:
    """One account of the class."""

    user_id: str
    email: str
    role: str


class Roster:
    """The accounts of the auth database (SQLite file in LABKIT_HOME, or PostgreSQL)."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.engine = engine or make_engine(database_url(settings))

    def members(self) -> list[Member]:
        """Every account, oldest first; raises RosterUnavailable saying why."""
        try:
            with self.engine.connect() as connection:
                users = connection.execute(select(User).order_by(User.created_at)).all()
        except SQLAlchemyError as exc:
            raise RosterUnavailable(
                f"the auth database cannot be read ({type(exc).__name__}); is the auth "
                "service of this LABKIT_HOME started (`python -m labkit up`)?"
            ) from exc
        # `role` arrives with the roles migration; before it everyone is a learner.
        return [
            Member(row.id, row.email, str(getattr(row, "role", None) or LEARNER)) for row in users
        ]

    def learners(self) -> list[Member]:
        """The accounts that are not instructors."""
        return [member for member in self.members() if not is_instructor(member.role)]

    def find(self, user_id: str) -> Member | None:
        return next((m for m in self.members() if m.user_id == user_id), None)
