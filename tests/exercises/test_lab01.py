"""Notebook 01's exercises refuse plausible wrong answers, saying why."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from labkit.exercises.lab01 import ClaimsOf, NotesPermissions
from labkit.nsc.claims import Permissions
from labkit.settings import Settings
from tests.exercises.checking import assert_not_yet, run_check


def _decoded(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (lambda token: _decoded(token.split(".")[0]), "you returned the header"),
        (lambda token: token.split(".")[1], "returned a str; return the parsed JSON"),
        (lambda token: {"name": "alice"}, "your dict lacks the claims"),
        (lambda token: json.loads(token), "raised JSONDecodeError"),
    ],
    ids=["the header", "undecoded", "made up", "not split"],
)
def test_claims_of_wrong(stack_settings: Settings, answer: object, says: str) -> None:
    assert_not_yet(run_check(ClaimsOf(stack_settings), answer), says)


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (
            lambda user: Permissions(
                publish=(f"{user}.>",), subscribe=(f"{user}.>", f"_INBOX.{user}.>")
            ),
            "the server let exercise-carol publish on `exercise-carol.echo`",
        ),
        (
            lambda user: Permissions(subscribe=(f"{user}.notes", f"_INBOX.{user}.>")),
            "your publish list is empty, and in a NATS JWT that means no limit at all",
        ),
        (
            lambda user: Permissions(publish=(f"{user}.notes",), subscribe=(f"{user}.notes",)),
            "refused exercise-carol a subscription to its inbox",
        ),
        (
            lambda user: Permissions(
                publish=(f"{user}.notes",), subscribe=(f"{user}.notes", "_INBOX.>")
            ),
            "the server let exercise-carol subscribe to `_INBOX.>`",
        ),
        (
            lambda user: Permissions(publish=(f"{user}.notes"), subscribe=(f"{user}.notes",)),
            "publish is a str; give a tuple of subjects",
        ),
        (lambda user: [f"{user}.notes"], "returned a list"),
    ],
    ids=["everything own", "empty publish", "no inbox", "every inbox", "no comma", "a list"],
)
def test_notes_permissions_wrong(stack_settings: Settings, answer: object, says: str) -> None:
    assert_not_yet(run_check(NotesPermissions(stack_settings), answer), says)
