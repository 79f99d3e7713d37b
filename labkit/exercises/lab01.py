"""Exercises of notebook 01 (NATS and the NSC service): read a JWT, write permissions."""

from __future__ import annotations

from typing import Any

import nats.errors

from labkit.exercises.base import (
    AsyncExercise,
    NotYet,
    SyncExercise,
    call_learner,
    kind_of,
)
from labkit.exercises.live import ALICE, BOB, connect_learner
from labkit.nsc import jwt
from labkit.nsc.claims import Permissions
from labkit.nsc.wrapper import Nsc

# The user the permissions exercise issues credentials for.
NOTES_USER = "exercise-carol"


class ClaimsOf(SyncExercise):
    number = 1
    title = "Read a JWT yourself"
    answer_name = "claims_of"
    prompt = (
        "A JWT is three base64url parts joined by dots: a header, the claims, and a "
        "signature. Write `claims_of(token)`, which returns the claims (the middle part) "
        "as a `dict`, without labkit's `jwt.decode`. The check runs it on the operator's, "
        "the account's and a freshly issued user's JWT."
    )
    placeholder_code = (
        "def claims_of(token: str) -> dict:\n"
        "    return ____  # the middle part of the token, base64url-decoded, parsed as JSON"
    )
    hint_text = (
        "`token.split('.')` gives the three parts. `base64.urlsafe_b64decode` wants the "
        "`=` padding that JWTs leave out: add `'=' * (-len(part) % 4)` first. "
        "`json.loads` does the rest."
    )
    solution_code = """\
import base64
import json


def claims_of(token: str) -> dict:
    claims_part = token.split(".")[1]
    padded = claims_part + "=" * (-len(claims_part) % 4)  # JWTs drop base64's padding
    return json.loads(base64.urlsafe_b64decode(padded))
"""

    def verify(self, answer: object) -> str:
        nsc = Nsc.from_settings(self.settings)
        tokens = {
            "operator": nsc.read_operator_jwt(),
            "account": nsc.read_account_jwt(),
            "user": nsc.create_user(ALICE).jwt,
        }
        for kind, token in tokens.items():
            result = call_learner(answer, token, what=f"claims_of(<the {kind} JWT>)")
            expected = jwt.decode(token)
            if not isinstance(result, dict):
                raise NotYet(
                    f"claims_of(<the {kind} JWT>) returned {kind_of(result)}; "
                    "return the parsed JSON, a dict"
                )
            if result != expected:
                raise NotYet(f"for the {kind} JWT, {_difference(result, expected)}")
        return (
            "claims_of decoded the operator's, the account's and a user's JWT exactly as "
            "the NATS server reads them"
        )


def _difference(got: dict[str, Any], expected: dict[str, Any]) -> str:
    if {"alg", "typ"} & got.keys():
        return "you returned the header (the first part); the claims are the second part"
    missing = sorted(expected.keys() - got.keys())
    if missing:
        return f"your dict lacks the claims {missing}"
    wrong = sorted(key for key in expected if got.get(key) != expected[key])
    return f"your dict has other values for {wrong}"


class NotesPermissions(AsyncExercise):
    number = 2
    title = "Permissions the server enforces"
    answer_name = "notes_permissions"
    prompt = (
        "Write `notes_permissions(user)`, the `Permissions` of a user who may publish "
        "and subscribe on `<user>.notes` and nothing else of its own, and subscribe to "
        "its private inbox `_INBOX.<user>.>`. The check issues real credentials with "
        "your permissions, connects, and expects the NATS server to allow `<user>.notes` "
        "and to refuse everything else it tries."
    )
    placeholder_code = (
        "from labkit.nsc.claims import Permissions\n"
        "\n"
        "\n"
        "def notes_permissions(user: str) -> Permissions:\n"
        "    return ____  # Permissions(publish=(...), subscribe=(...))"
    )
    hint_text = (
        "`Permissions(publish=(...), subscribe=(...))` takes tuples of subjects. Name "
        "`<user>.notes` exactly, not `<user>.>`; and leave neither list empty: in a NATS "
        "JWT an empty allow list means *no limit*."
    )
    solution_code = """\
from labkit.nsc.claims import Permissions


def notes_permissions(user: str) -> Permissions:
    return Permissions(
        publish=(f"{user}.notes",),
        subscribe=(f"{user}.notes", f"_INBOX.{user}.>"),
    )
"""

    async def verify(self, answer: object) -> str:
        user = NOTES_USER
        permissions = call_learner(answer, user, what=f"notes_permissions({user!r})")
        if not isinstance(permissions, Permissions):
            raise NotYet(
                f"notes_permissions returned {kind_of(permissions)}; return "
                "`Permissions(publish=(...), subscribe=(...))`"
            )
        for action in ("publish", "subscribe"):
            subjects = getattr(permissions, action)
            if not isinstance(subjects, tuple | list) or not all(
                isinstance(s, str) for s in subjects
            ):
                raise NotYet(
                    f"{action} is {kind_of(subjects)}; give a tuple of subjects, such as "
                    f'`(f"{{user}}.notes",)` (the comma makes it a tuple)'
                )
        notes = f"{user}.notes"
        async with connect_learner(self.settings, user, permissions) as learner:
            if not await learner.may_subscribe(notes):
                raise NotYet(f"the server refused {user} a subscription to `{notes}`")
            subscription = await learner.nc.subscribe(notes)
            if not await learner.may_publish(notes):
                raise NotYet(f"the server refused {user} a publish on `{notes}`")
            try:
                await subscription.next_msg(timeout=2)
            except nats.errors.TimeoutError:
                raise NotYet(f"a message {user} published on `{notes}` never arrived") from None
            inbox = f"_INBOX.{user}.>"
            if not await learner.may_subscribe(inbox):
                raise NotYet(
                    f"the server refused {user} a subscription to its inbox `{inbox}`: "
                    "without it no reply can reach it"
                )
            for subject in (f"{user}.echo", f"{BOB}.notes"):
                if await learner.may_publish(subject):
                    raise NotYet(f"the server let {user} publish on `{subject}`{_why(permissions)}")
            for subject in (f"{BOB}.notes", "_INBOX.>", f"{user}.echo"):
                if await learner.may_subscribe(subject):
                    raise NotYet(
                        f"the server let {user} subscribe to `{subject}`"
                        f"{_why(permissions, 'subscribe')}"
                    )
        return (
            f"the NATS server let {user} use `{notes}` and its inbox, and refused "
            f"`{user}.echo`, `{BOB}.notes` and `_INBOX.>`"
        )


def _why(permissions: Permissions, action: str = "publish") -> str:
    allowed = getattr(permissions, action)
    if not allowed:
        return f": your {action} list is empty, and in a NATS JWT that means no limit at all"
    return f": your {action} list {list(allowed)} allows it"


ex1 = ClaimsOf()
ex2 = NotesPermissions()
EXERCISES = (ex1, ex2)
