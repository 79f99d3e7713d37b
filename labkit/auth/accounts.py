"""Accounts in the auth database: create, find, list, change role or password.

The HTTP endpoints and the command line (`python -m labkit instructor add`,
`classroom roster add`) both go through these functions, so an account made by
either is the same row with the same password hashing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from ulid import ULID
from werkzeug.security import generate_password_hash

from labkit.auth.errors import EmailTaken, UnknownUser
from labkit.auth.models import User
from labkit.auth.roles import LEARNER, ROLES
from labkit.nsc.names import validate_user_name

PASSWORD_METHOD = "scrypt"
# A first password handed to a learner: 16 URL-safe characters (~96 bits), easy to copy.
FIRST_PASSWORD_BYTES = 12


@dataclass(frozen=True)
class Account:
    """An account as the instructor sees it: never its password hash."""

    id: str
    email: str
    role: str
    created_at: datetime

    def as_dict(self) -> dict[str, str]:
        return {
            "id": self.id,
            "email": self.email,
            "role": self.role,
            "created_at": iso(self.created_at),
        }


def new_user_id() -> str:
    """A lower-case ULID: the user's NATS name, never one the stack reserves.

    It begins with a digit (the time), so it cannot take a reserved prefix; the check
    is the NSC service's own, kept here so a change of id scheme cannot slip past it.
    """
    return validate_user_name(str(ULID()).lower())


def new_password() -> str:
    """A random first password (or a reset one), shown once."""
    return secrets.token_urlsafe(FIRST_PASSWORD_BYTES)


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=PASSWORD_METHOD)


def create_account(
    sessions: sessionmaker[Session], email: str, password: str, role: str = LEARNER
) -> Account:
    """A new account for the normalised `email`; EmailTaken if it exists."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    user = User(
        id=new_user_id(),
        email=email,
        password_hash=hash_password(password),
        created_at=datetime.now(UTC),
        role=role,
    )
    try:
        with sessions.begin() as session:
            session.add(user)
    except IntegrityError:
        raise EmailTaken(f"{email} is already registered; log in instead") from None
    return _account(user)


def find_by_email(sessions: sessionmaker[Session], email: str) -> Account | None:
    with sessions() as session:
        user = session.scalars(select(User).where(User.email == email)).one_or_none()
        return None if user is None else _account(user)


def get_account(sessions: sessionmaker[Session], user_id: str) -> Account:
    """The account `user_id`, or UnknownUser."""
    with sessions() as session:
        user = session.get(User, user_id)
        if user is None:
            raise UnknownUser(_unknown(user_id))
        return _account(user)


def list_accounts(sessions: sessionmaker[Session]) -> list[Account]:
    """Every account, oldest first."""
    with sessions() as session:
        users = session.scalars(select(User).order_by(User.created_at, User.id)).all()
        return [_account(user) for user in users]


def set_role(sessions: sessionmaker[Session], user_id: str, role: str) -> Account:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    with sessions.begin() as session:
        user = session.get(User, user_id)
        if user is None:
            raise UnknownUser(_unknown(user_id))
        user.role = role
        return _account(user)


def set_password(sessions: sessionmaker[Session], user_id: str, password: str) -> Account:
    with sessions.begin() as session:
        user = session.get(User, user_id)
        if user is None:
            raise UnknownUser(_unknown(user_id))
        user.password_hash = hash_password(password)
        return _account(user)


def end_sessions(sessions: sessionmaker[Session], user_id: str) -> None:
    """Refuse every token `user_id` holds now (access and refresh): as a logout does."""
    with sessions.begin() as session:
        user = session.get(User, user_id)
        if user is None:
            raise UnknownUser(_unknown(user_id))
        user.token_generation += 1


def iso(moment: datetime) -> str:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def _account(user: User) -> Account:
    return Account(user.id, user.email, user.role, user.created_at)


def _unknown(user_id: str) -> str:
    return f"no account has the id {user_id!r}; GET /users lists them"
