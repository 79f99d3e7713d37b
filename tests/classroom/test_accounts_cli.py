"""`python -m labkit instructor add` and `classroom roster add`, on a real auth database.

The accounts they create log in on the real auth service (on the shared NATS + NSC).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from labkit.auth.app import create_app
from labkit.auth.client import AuthClient, AuthRequestFailed
from labkit.auth.database import make_engine
from labkit.classroom.accounts import parse_roster
from labkit.cli import main
from labkit.stack import Stack
from tests.auth.conftest import _settings_for
from tests.wsgi import serve_in_thread


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The auth database the CLI writes (LABKIT_DATABASE_URL, as a stack would set it)."""
    url = f"sqlite:///{tmp_path / 'class-auth.db'}"
    monkeypatch.setenv("LABKIT_DATABASE_URL", url)
    return url


@pytest.fixture
def service(running_stack: Stack, database: str) -> Iterator[AuthClient]:
    """The auth service on that database."""
    engine = make_engine(database)
    app = create_app(_settings_for(running_stack.settings, database), engine=engine)
    try:
        with serve_in_thread(app) as url:
            yield AuthClient(url)
    finally:
        engine.dispose()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def _rows(database: str) -> list[tuple[str, str]]:
    engine = make_engine(database)
    try:
        with engine.connect() as connection:
            return sorted(
                (row[0], row[1])
                for row in connection.execute(text("SELECT email, role FROM users"))
            )
    finally:
        engine.dispose()


def _password_of(out: str, email: str) -> str:
    for line in out.splitlines():
        if line.startswith(email + "\t"):
            return line.split("\t", 1)[1]
    raise AssertionError(f"no password printed for {email}:\n{out}")


def test_parse_roster_skips_comments_and_reports_bad_lines() -> None:
    roster = parse_roster(
        "# class of 2026\n\nAlice@Example.com\n  bob@example.com  \nnot an email\n"
        "   # indented comment\nalice@example.com\ncarol@\n"
    )
    assert [(e.line, e.email) for e in roster.entries] == [
        (3, "alice@example.com"),
        (4, "bob@example.com"),
    ]
    assert [(b.line, b.text) for b in roster.bad] == [
        (5, "not an email"),
        (7, "alice@example.com"),
        (8, "carol@"),
    ]
    assert "line 3" in roster.bad[1].reason
    assert "fix the line" in roster.bad[0].reason


def test_instructor_add_creates_then_promotes(
    capsys: pytest.CaptureFixture[str], service: AuthClient, database: str
) -> None:
    email = f"teacher-{uuid.uuid4().hex[:6]}@example.com"
    status, out, _ = _run(capsys, "instructor", "add", email.upper())
    assert status == 0
    password = out.split("first password (shown once): ", 1)[1].split()[0]
    teacher = service.login(email, password)
    assert teacher.role == "instructor"
    assert service.users(teacher)[0]["email"] == email
    # Again: nothing changes, no new password.
    status, out, _ = _run(capsys, "instructor", "add", email)
    assert status == 0 and "already an instructor" in out and "password" not in out
    # A learner who registered is promoted, their password kept.
    learner = f"assistant-{uuid.uuid4().hex[:6]}@example.com"
    service.register(learner, "their own password")
    assert service.login(learner, "their own password").role == "learner"
    status, out, _ = _run(capsys, "instructor", "add", learner)
    assert status == 0 and "promoted" in out and "first password" not in out
    assert service.login(learner, "their own password").role == "instructor"


def test_instructor_add_refuses_a_bad_email(
    capsys: pytest.CaptureFixture[str], database: str
) -> None:
    status, _, err = _run(capsys, "instructor", "add", "not-an-email")
    assert status == 1
    assert "invalid email" in err
    assert _rows(database) == []


def test_roster_add_creates_learners_reports_the_rest(
    capsys: pytest.CaptureFixture[str], service: AuthClient, database: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    alice, bob, carol = (f"{n}-{tag}@example.com" for n in ("alice", "bob", "carol"))
    service.register(carol, "carol's own password")
    roster = tmp_path / "roster.txt"
    roster.write_text(f"# my class\n{alice}\n\nnot an email\n{bob}\n{carol}\n")
    status, out, err = _run(capsys, "classroom", "roster", "add", str(roster))
    assert status == 1  # one bad line
    assert "line 4: 'not an email'" in err
    assert f"already registered, not changed: {carol} (learner)" in out
    for email in (alice, bob):
        login = service.login(email, _password_of(out, email))
        assert login.role == "learner"
    # Carol's own password still works; nobody was made for the bad line.
    assert service.login(carol, "carol's own password").role == "learner"
    assert _rows(database) == sorted((e, "learner") for e in (alice, bob, carol))
    # Run again (the line fixed): only the new one is created, the others reported.
    dave = f"dave-{tag}@example.com"
    roster.write_text(f"{alice}\n{dave}\n{bob}\n")
    status, out, err = _run(capsys, "classroom", "roster", "add", str(roster))
    assert status == 0 and err == ""
    assert _password_of(out, dave)
    with pytest.raises(AssertionError):
        _password_of(out, alice)
    assert f"already registered, not changed: {alice} (learner)" in out


def test_roster_add_of_a_missing_file_says_so(
    capsys: pytest.CaptureFixture[str], database: str, tmp_path: Path
) -> None:
    status, _, err = _run(capsys, "classroom", "roster", "add", str(tmp_path / "none.txt"))
    assert status == 1 and "cannot read the roster" in err


def test_the_commands_run_as_python_dash_m(database: str, tmp_path: Path) -> None:
    email = f"teacher-{uuid.uuid4().hex[:6]}@example.com"
    result = subprocess.run(
        [sys.executable, "-m", "labkit", "instructor", "add", email],
        capture_output=True,
        text=True,
        env={**os.environ, "LABKIT_DATABASE_URL": database},
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "first password (shown once)" in result.stdout
    assert _rows(database) == [(email, "instructor")]


def test_a_learner_cannot_use_instructor_rights_from_the_roster(
    capsys: pytest.CaptureFixture[str], service: AuthClient, tmp_path: Path
) -> None:
    email = f"eve-{uuid.uuid4().hex[:6]}@example.com"
    roster = tmp_path / "roster.txt"
    roster.write_text(email + "\n")
    _, out, _ = _run(capsys, "classroom", "roster", "add", str(roster))
    eve = service.login(email, _password_of(out, email))
    with pytest.raises(AuthRequestFailed) as refused:
        service.users(eve)
    assert refused.value.status == 403
