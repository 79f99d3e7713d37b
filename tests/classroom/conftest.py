"""A class's stack for the progress tests: NATS, NSC, auth and the application server,
real processes in a data directory of this package's, with a small per-learner bound."""

from __future__ import annotations

import json
import os
import stat
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from labkit.auth.client import AuthClient, Login
from labkit.discovery import auth_url
from labkit.stack import Stack
from tests.conftest import make_settings

# Records one learner may keep in these tests' stack (LABKIT_PROGRESS_MAX_EXERCISES_PER_USER).
MAX_EXERCISES = 5
PASSWORD = "correct horse battery"


@dataclass
class ClassStack:
    stack: Stack
    auth: AuthClient

    def learner(self, name: str) -> Login:
        email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
        self.auth.register(email, PASSWORD)
        return self.auth.login(email, PASSWORD)


@pytest.fixture(scope="package")
def class_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClassStack]:
    settings = make_settings(
        tmp_path_factory.mktemp("classroom") / "home",
        progress={"max_exercises_per_user": MAX_EXERCISES},
    )
    stack = Stack(settings)
    # The server process reads its settings from the environment it is started with.
    variable = "LABKIT_PROGRESS_MAX_EXERCISES_PER_USER"
    before = os.environ.get(variable)
    os.environ[variable] = str(MAX_EXERCISES)
    try:
        stack.ensure("nats", "nsc", "auth", "server")
    finally:
        if before is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = before
    try:
        yield ClassStack(stack, AuthClient(auth_url(settings)))
    finally:
        stack.down()


def login_answer(class_stack: ClassStack, name: str) -> tuple[str, dict[str, Any]]:
    """A learner's /login answer as the hub receives it (and writes to the learner file)."""
    url = auth_url(class_stack.stack.settings)
    email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
    class_stack.auth.register(email, PASSWORD)
    answer = requests.post(f"{url}/login", json={"email": email, "password": PASSWORD}, timeout=10)
    answer.raise_for_status()
    return email, answer.json()


def write_learner_file(path: Path, answer: dict[str, Any], email: str, url: str) -> Path:
    path.write_text(json.dumps({**answer, "email": email, "auth_url": url}))
    path.chmod(0o600)
    return path


@pytest.fixture
def learner(
    class_stack: ClassStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """Classroom mode for this test: a learner file, as the hub's spawner writes it."""
    email, answer = login_answer(class_stack, "checker")
    url = auth_url(class_stack.stack.settings)
    path = write_learner_file(tmp_path / "learner.json", answer, email, url)
    monkeypatch.setenv("LABKIT_LEARNER_FILE", str(path))
    return answer


@pytest.fixture(scope="package", autouse=True)
def learners_may_reach_the_venv() -> Iterator[None]:
    """Learners' servers run as other OS users and import this checkout's venv.

    A checkout inside a 0700 directory (`mktemp -d`) closes the way to it. For this run,
    open traversal only (o+x: no listing) on the directories above the venv that lack
    it, and put their modes back afterwards.
    """
    changed: list[tuple[Path, int]] = []
    if os.geteuid() == 0:
        for part in reversed(Path(sys.prefix).resolve().parents):
            mode = part.stat().st_mode
            if not mode & stat.S_IXOTH:
                changed.append((part, stat.S_IMODE(mode)))
                part.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
    try:
        yield
    finally:
        for part, mode in changed:
            part.chmod(mode)
