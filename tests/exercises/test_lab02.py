"""Notebook 02's exercises refuse plausible wrong answers, saying why."""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest

from labkit.auth.client import AuthClient, AuthRequestFailed, Login
from labkit.exercises.lab02 import MayPublish, TryLogin
from labkit.settings import Settings
from tests.exercises.checking import assert_not_yet, run_check


def prefix_match(allowed: list[str], subject: str) -> bool:
    return any(subject.startswith(pattern.rstrip(">")) for pattern in allowed)


def shell_match(allowed: list[str], subject: str) -> bool:
    return any(fnmatchcase(subject, pattern.replace(">", "*")) for pattern in allowed)


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (
            prefix_match,
            "may_publish(allowed, 'shared.exercise-bob.notes') said False, but the NATS "
            "server let it through: `*` matches exactly one token",
        ),
        (
            shell_match,
            "may_publish(allowed, 'shared.a.b.notes') said True, but the NATS server "
            "refused it: `*` matches one token, never two",
        ),
        (lambda allowed, subject: "yes", "returned a str; return True or False"),
    ],
    ids=["prefix", "shell wildcards", "not a bool"],
)
def test_may_publish_wrong(stack_settings: Settings, answer: object, says: str) -> None:
    assert_not_yet(run_check(MayPublish(stack_settings), answer), says)


def swallow_everything(client: AuthClient, email: str, password: str) -> Login | None:
    try:
        return client.login(email, password)
    except AuthRequestFailed:
        return None


def no_catch(client: AuthClient, email: str, password: str) -> Login | None:
    return client.login(email, password)


def user_id_only(client: AuthClient, email: str, password: str) -> str:
    return client.login(email, password).user_id


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (swallow_everything, "try_login returned None when the auth service could not be"),
        (no_catch, "raised AuthRequestFailed: 401 invalid_credentials"),
        (user_id_only, "with the right password try_login returned a str"),
    ],
    ids=["swallows failures", "lets 401 through", "returns the id"],
)
def test_try_login_wrong(stack_settings: Settings, answer: object, says: str) -> None:
    assert_not_yet(run_check(TryLogin(stack_settings), answer), says)
