"""The learner's side of classroom mode: the class login, the sandbox, the observer's share."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from labkit.classroom import course_mode
from labkit.classroom.course_mode import (
    current_login,
    own_share,
    sandbox_settings,
    use_sandbox,
    where_this_runs,
)
from labkit.classroom.learner import NotInClassroom
from labkit.settings import Settings

ANSWER = {
    "user_id": "01JCLASSMATE0000000000000A",
    "access_token": "access",
    "refresh_token": "refresh",
    "role": "learner",
    "nats": {
        "servers": ["nats://127.0.0.1:4222"],
        "creds": "-----BEGIN NATS USER JWT-----",
        "expires_at": "2027-06-01T00:00:00+00:00",
        "publish": ["01JCLASSMATE0000000000000A.>"],
        "subscribe": ["01JCLASSMATE0000000000000A.>", "_INBOX.01JCLASSMATE0000000000000A.>"],
    },
}


@pytest.fixture
def in_class(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kernel environment as a class's spawner makes it (the env is restored after)."""
    learner_file = tmp_path / "learner.json"
    learner_file.write_text(
        json.dumps({**ANSWER, "email": "ada@example.com", "auth_url": "http://127.0.0.1:5000"})
    )
    monkeypatch.setenv("LABKIT_LEARNER_FILE", str(learner_file))
    monkeypatch.setenv("LABKIT_CLASSROOM", "1")
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LABKIT_NATS_URL", "nats://127.0.0.1:4222")
    monkeypatch.setenv("LABKIT_AUTH_URL", "http://127.0.0.1:5000")
    monkeypatch.setenv("LABKIT_S3_ENDPOINT", "127.0.0.1:9000")
    return learner_file


def test_the_class_login_comes_from_the_learner_file(in_class: Path) -> None:
    login = current_login()
    assert (login.user_id, login.email, login.access_token) == (
        ANSWER["user_id"],
        "ada@example.com",
        "access",
    )
    assert login.nats.servers == ["nats://127.0.0.1:4222"]
    assert login.nats.subscribe == ANSWER["nats"]["subscribe"]  # type: ignore[index]


def test_without_a_learner_file_the_error_says_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LABKIT_LEARNER_FILE", raising=False)
    with pytest.raises(NotInClassroom, match="open JupyterLab through the class's hub"):
        current_login()


def test_a_broken_learner_file_says_log_in_again(in_class: Path) -> None:
    in_class.write_text("{not json")
    with pytest.raises(NotInClassroom, match="log out of the class's hub and in again"):
        current_login()


def test_the_sandbox_has_its_own_home_free_ports_and_no_shared_endpoint(in_class: Path) -> None:
    sandbox = sandbox_settings()
    assert not sandbox.classroom
    assert sandbox.home == (in_class.parent / "home" / "sandbox").resolve()
    assert (sandbox.nats.url, sandbox.auth.url, sandbox.s3.endpoint) == (None, None, None)
    assert (sandbox.nats.port, sandbox.nsc.service_port, sandbox.auth.port) == (0, 0, 0)


def test_alone_the_sandbox_is_the_stack_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABKIT_CLASSROOM", raising=False)
    assert sandbox_settings() == Settings()
    assert not use_sandbox("01")
    assert where_this_runs("01") == "Alone: every part of this notebook runs on your own stack."


def test_a_whole_sandbox_notebook_moves_the_kernel_to_the_sandbox(
    in_class: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = dict(os.environ)
    try:
        assert not use_sandbox("03"), "03 uses the shared stack"
        assert Settings().classroom
        assert "private sandbox" in where_this_runs("01")
        settings = Settings()
        assert not settings.classroom and settings.nats.url is None
        assert settings.home == (in_class.parent / "home" / "sandbox").resolve()
        assert course_mode._SHARED_ENV_SAVED["LABKIT_AUTH_URL"] == "http://127.0.0.1:5000"
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_every_notebook_says_where_its_parts_run() -> None:
    notebooks = Path(__file__).parents[2] / "notebooks"
    numbers = {path.name[:2] for path in notebooks.glob("[0-9][0-9]_*.ipynb")}
    assert numbers <= set(course_mode.WHERE)


@pytest.mark.parametrize(
    ("subjects", "share"),
    [
        (["*.echo", "*.echo.>", "_INBOX.>"], ["me.echo", "me.echo.>", "_INBOX.me.>"]),
        (["*.ping", "*.inbox"], ["me.ping", "me.inbox"]),
        (["persist.>", "bob.echo", "_INBOX.bob.>"], []),
        ([">"], ["me.>", "_INBOX.me.>"]),
        (["*.echo.cached", "_INBOX.me.>"], ["me.echo.cached", "_INBOX.me.>"]),
    ],
)
def test_the_observer_in_a_class_reads_only_the_learners_share(
    subjects: list[str], share: list[str]
) -> None:
    assert own_share(subjects, "me") == share
