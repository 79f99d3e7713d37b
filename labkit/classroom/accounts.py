"""Accounts for a class from the command line: `instructor add`, `classroom roster add`.

Both write the stack's auth database directly through labkit.auth (the SQLite file
of LABKIT_HOME, or LABKIT_DATABASE_URL), so they work before `labkit up` and while
the service runs alike; a learner's NATS credentials are minted at their first login.
A first password is printed once, when an account is created; an existing account
is reported and never changed.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from labkit.auth.accounts import (
    Account,
    create_account,
    find_by_email,
    new_password,
    set_role,
)
from labkit.auth.database import create_schema, database_url, make_engine, session_factory
from labkit.auth.errors import EmailTaken, InvalidField
from labkit.auth.roles import INSTRUCTOR, LEARNER
from labkit.auth.validation import normalise_email
from labkit.errors import LabkitError
from labkit.settings import Settings

# Exit status of `roster add` when some lines were refused (the others were done).
BAD_LINES_STATUS = 1


@dataclass(frozen=True)
class RosterEntry:
    line: int
    email: str


@dataclass(frozen=True)
class BadLine:
    line: int
    text: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.text!r}: {self.reason}"


@dataclass
class Roster:
    """A roster file read: the emails to add and the lines refused (nothing done for them)."""

    entries: list[RosterEntry] = field(default_factory=list)
    bad: list[BadLine] = field(default_factory=list)


@dataclass
class RosterOutcome:
    created: list[tuple[Account, str]] = field(default_factory=list)  # with first password
    existing: list[Account] = field(default_factory=list)


def parse_roster(text: str) -> Roster:
    """One email per line; blank lines and `#` comments skipped; no IO."""
    roster = Roster()
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            email = normalise_email(line)
        except InvalidField as exc:
            roster.bad.append(BadLine(number, line, f"{exc.detail}; fix the line and run again"))
            continue
        if email in seen:
            roster.bad.append(BadLine(number, line, f"the same email as line {seen[email]}"))
            continue
        seen[email] = number
        roster.entries.append(RosterEntry(number, email))
    return roster


def add_roster(sessions: sessionmaker[Session], entries: list[RosterEntry]) -> RosterOutcome:
    """Create a learner account for each new email; existing ones are left as they are."""
    outcome = RosterOutcome()
    for entry in entries:
        existing = find_by_email(sessions, entry.email)
        if existing is None:
            password = new_password()
            try:
                outcome.created.append(
                    (create_account(sessions, entry.email, password, LEARNER), password)
                )
                continue
            except EmailTaken:  # registered meanwhile (the service runs): leave it
                existing = find_by_email(sessions, entry.email)
        if existing is not None:
            outcome.existing.append(existing)
    return outcome


@dataclass(frozen=True)
class InstructorOutcome:
    account: Account
    password: str | None  # the first password, when the account was created
    was_role: str | None  # the role before (None: created)


def add_instructor(sessions: sessionmaker[Session], email: str) -> InstructorOutcome:
    """Create an instructor account for `email`, or promote the existing one."""
    email = normalise_email(email)
    existing = find_by_email(sessions, email)
    if existing is None:
        password = new_password()
        try:
            return InstructorOutcome(
                create_account(sessions, email, password, INSTRUCTOR), password, None
            )
        except EmailTaken:
            existing = find_by_email(sessions, email)
            assert existing is not None
    return InstructorOutcome(set_role(sessions, existing.id, INSTRUCTOR), None, existing.role)


def auth_database(settings: Settings) -> sessionmaker[Session]:
    """Sessions on the stack's auth database, migrated to the current schema."""
    engine = make_engine(database_url(settings))
    create_schema(engine)
    return session_factory(engine)


def add_instructor_command(commands: Any) -> None:
    """`instructor add EMAIL`, on the CLI's subcommands."""
    instructor = commands.add_parser("instructor", help="instructor accounts of the class")
    actions = instructor.add_subparsers(dest="instructor_command", required=True)
    add = actions.add_parser(
        "add", help="create an instructor account (prints its first password) or promote one"
    )
    add.add_argument("email")
    add.set_defaults(handler=_instructor_add)


def add_roster_command(classroom_commands: Any) -> None:
    """`roster add FILE`, on the `classroom` command's subcommands."""
    roster = classroom_commands.add_parser("roster", help="the learners' accounts")
    actions = roster.add_subparsers(dest="roster_command", required=True)
    add = actions.add_parser(
        "add",
        help="create a learner account per email of FILE (one a line, # comments); "
        "prints each new one's first password",
    )
    add.add_argument("file", type=Path)
    add.set_defaults(handler=_roster_add)


def _instructor_add(args: argparse.Namespace) -> int:
    try:
        outcome = add_instructor(auth_database(Settings()), args.email)
    except InvalidField as exc:
        raise LabkitError(exc.detail) from None
    account = outcome.account
    if outcome.password is not None:
        print(f"created instructor {account.email} (id {account.id})")
        print(f"first password (shown once): {outcome.password}")
    elif outcome.was_role == INSTRUCTOR:
        print(f"{account.email} is already an instructor (id {account.id}); nothing changed")
    else:
        print(f"promoted {account.email} from {outcome.was_role} to instructor (id {account.id})")
        print("their password is unchanged; they log in again to get the instructor's rights")
    return 0


def _roster_add(args: argparse.Namespace) -> int:
    path: Path = args.file
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabkitError(f"cannot read the roster {path}: {exc}") from None
    roster = parse_roster(text)
    outcome = add_roster(auth_database(Settings()), roster.entries)
    if outcome.created:
        print(f"created {len(outcome.created)} learner account(s); first passwords, shown once:")
        for account, password in outcome.created:
            print(f"{account.email}\t{password}")
    for account in outcome.existing:
        print(f"already registered, not changed: {account.email} ({account.role})")
    for bad in roster.bad:
        print(f"skipped {bad}", file=sys.stderr)
    if not (outcome.created or outcome.existing or roster.bad):
        print(f"{path} lists no email (one a line; # starts a comment)")
    return BAD_LINES_STATUS if roster.bad else 0
