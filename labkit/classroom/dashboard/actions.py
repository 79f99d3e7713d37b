"""The instructor's actions on a learner: revoke, reset the password, and the CSV export.

The dashboard runs on the instructor's side with the stack's own means, so each
action is the auth service's own account code (labkit.auth.accounts), the same as
its instructor endpoints `POST /users/<id>/revoke` and `POST /users/<id>/password`:

- revoke: the NSC service's revocation (pushed to the NATS server, which cuts the
  learner's connections), then every token the learner holds is refused;
- reset password: a new random password, stored hashed, answered once.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine

from labkit.auth.accounts import end_sessions, new_password, set_password
from labkit.auth.database import session_factory
from labkit.auth.errors import AuthError, UnknownUser
from labkit.auth.nsc_client import NscClient
from labkit.auth.roles import is_instructor
from labkit.classroom.dashboard.progress import ProgressRecord
from labkit.classroom.dashboard.roster import Member, Roster
from labkit.discovery import nsc_service
from labkit.errors import LabkitError
from labkit.settings import Settings

CSV_COLUMNS = ("user_id", "email", "exercise_id", "state", "attempts", "at")


class ActionRefused(LabkitError):
    """The action cannot be done on this user; `status` is the HTTP answer."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


@dataclass(frozen=True)
class Revoked:
    user_id: str
    email: str
    nats_revoked: bool
    nats_pushed: bool


@dataclass(frozen=True)
class PasswordReset:
    user_id: str
    email: str
    password: str  # shown once to the instructor, never stored in clear


def learner_to_act_on(roster: Roster, user_id: str) -> Member:
    """The learner `user_id`, or ActionRefused saying why there is none."""
    if not isinstance(user_id, str) or not user_id.isalnum() or len(user_id) > 64:
        raise ActionRefused(400, f"{user_id!r} is no user id: pick a learner from the grid")
    member = roster.find(user_id)
    if member is None:
        raise ActionRefused(404, f"no account has the id {user_id!r}: reload the dashboard")
    if is_instructor(member.role):
        raise ActionRefused(
            403, f"{member.email} is an instructor; the dashboard acts on learners only"
        )
    return member


def revoke_learner(settings: Settings, engine: Engine, member: Member) -> Revoked:
    """Revoke the learner's NATS credentials (their live connections are cut) and tokens.

    The learner can log in again (new credentials, new key); revoking is for cutting a
    hostile or runaway session now. NATS first: when the NSC service is away nothing
    changes and the instructor can try again.
    """
    try:
        answer = NscClient(*nsc_service(settings)).revoke_user(member.user_id)
    except AuthError as exc:
        raise ActionRefused(503, exc.detail) from exc
    try:
        end_sessions(session_factory(engine), member.user_id)
    except UnknownUser as exc:
        raise ActionRefused(
            404, f"the account {member.email} is gone: reload the dashboard"
        ) from exc
    return Revoked(
        member.user_id,
        member.email,
        nats_revoked=answer is not None,
        nats_pushed=bool(answer and answer.get("pushed")),
    )


def reset_password(engine: Engine, member: Member) -> PasswordReset:
    """Give the learner a new random password (returned once, for the instructor to pass on)."""
    password = new_password()
    try:
        set_password(session_factory(engine), member.user_id, password)
    except UnknownUser as exc:
        raise ActionRefused(
            404, f"the account {member.email} is gone: reload the dashboard"
        ) from exc
    return PasswordReset(member.user_id, member.email, password)


def progress_csv(members: Iterable[Member], records: Iterable[ProgressRecord]) -> str:
    """The progress records as CSV: one row per learner and exercise reported."""
    emails = {member.user_id: member.email for member in members}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for record in sorted(records, key=lambda r: (emails.get(r.user, r.user), r.exercise_id)):
        email = emails.get(record.user, "")
        row = (record.user, email, record.exercise_id, record.state, record.attempts, record.at)
        # A cell beginning with = + - @ is a formula to a spreadsheet: quote it as text.
        writer.writerow([_plain_cell(str(cell)) for cell in row])
    return out.getvalue()


def _plain_cell(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
