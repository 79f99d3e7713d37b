"""Exercise checks report their verdict in classroom mode, and never suffer for it.

Classroom mode is the learner file the hub writes (`LABKIT_LEARNER_FILE`: the auth
service's /login answer plus `email` and `auth_url`). Alone (no file) nothing is
sent; with the stack away (a refused port, a port that never answers) the check
still gives its verdict.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labkit.auth.client import login_from_answer
from labkit.classroom import progress
from labkit.classroom.progress import attempts_of, my_progress, report_check, wait_for_report
from labkit.exercises.base import AsyncExercise, CheckResult, NotYet, SyncExercise, ____
from tests.classroom.conftest import ClassStack, login_answer, write_learner_file


class AnswerFortyTwo(SyncExercise):
    number = 1
    title = "The answer"
    answer_name = "answer"
    prompt = "Set `answer` to 42."
    placeholder_code = "answer = ____"
    hint_text = "Six times seven."
    solution_code = "answer = 42"

    def verify(self, answer: object) -> str:
        if answer != 42:
            raise NotYet(f"{answer!r} is not the answer")
        return "42 it is"


class AsyncAnswer(AsyncExercise):
    number = 2
    title = "The answer, awaited"
    answer_name = "answer"
    prompt = "Set `answer` to 42."
    placeholder_code = "answer = ____"
    hint_text = "Six times seven."
    solution_code = "answer = 42"

    async def verify(self, answer: object) -> str:
        await asyncio.sleep(0)
        if answer != 42:
            raise NotYet(f"{answer!r} is not the answer")
        return "42 it is"


def _records(answer: dict[str, Any], class_stack: ClassStack) -> dict[str, tuple[bool, int]]:
    login = login_from_answer(answer, "x@example.com")

    async def read() -> dict[str, tuple[bool, int]]:
        nc = await login.connect()
        try:
            return {r.exercise_id: (r.passed, r.attempts) for r in await my_progress(nc)}
        finally:
            await nc.close()

    return asyncio.run(read())


def test_the_exercise_id_names_module_and_exercise() -> None:
    assert AnswerFortyTwo().exercise_id == "test_check_reports-ex1"
    from labkit.exercises.lab03 import EXERCISES

    assert {type(e).__module__ for e in EXERCISES} == {"labkit.exercises.lab03"}
    assert EXERCISES[0].exercise_id.startswith("lab03-ex")


def test_each_answered_check_reports_its_verdict_and_attempts(
    class_stack: ClassStack, learner: dict[str, Any]
) -> None:
    exercise = AnswerFortyTwo()
    before = attempts_of(exercise.exercise_id)
    # An untouched placeholder is no attempt: nothing is counted or sent.
    assert not exercise.check(____)
    assert attempts_of(exercise.exercise_id) == before
    assert not exercise.check(41)
    assert exercise.check(42)
    assert attempts_of(exercise.exercise_id) == before + 2
    assert _records(learner, class_stack) == {exercise.exercise_id: (True, before + 2)}


def test_async_checks_report_too(class_stack: ClassStack, learner: dict[str, Any]) -> None:
    exercise = AsyncAnswer()
    before = attempts_of(exercise.exercise_id)

    async def run() -> list[CheckResult]:
        return [await exercise.check(7), await exercise.check(____)]

    wrong, unanswered = asyncio.run(run())
    assert not wrong and not unanswered
    assert _records(learner, class_stack) == {exercise.exercise_id: (False, before + 1)}


def test_alone_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABKIT_LEARNER_FILE", raising=False)
    sends: list[object] = []
    monkeypatch.setattr(progress, "_send_report", lambda *args: sends.append(args))
    exercise = AnswerFortyTwo()
    before = attempts_of(exercise.exercise_id)
    result = exercise.check(42)
    assert result and str(result) == "Correct: 42 it is"
    assert attempts_of(exercise.exercise_id) == before + 1  # counted all the same
    assert sends == []


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word (a frozen server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("away", ["refused", "silent"])
def test_with_the_stack_away_the_check_still_gives_its_verdict(
    class_stack: ClassStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    silent_port: int,
    away: str,
) -> None:
    email, answer = login_answer(class_stack, "offline")
    port = _closed_port() if away == "refused" else silent_port
    answer["nats"]["servers"] = [f"nats://127.0.0.1:{port}"]
    path = write_learner_file(tmp_path / "learner.json", answer, email, "http://127.0.0.1:9")
    monkeypatch.setenv("LABKIT_LEARNER_FILE", str(path))
    exercise = AnswerFortyTwo()
    assert str(exercise.check(42)) == "Correct: 42 it is"
    assert str(exercise.check(41)) == "Not yet: 41 is not the answer"

    async def run() -> CheckResult:
        return await AsyncAnswer().check(42)

    assert str(asyncio.run(run())) == "Correct: 42 it is"
    # The report itself ends, unsent, on its own (the check did not wait for more).
    assert report_check(exercise.exercise_id, True).result(timeout=30) is None


def test_an_unreadable_learner_file_costs_the_check_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "learner.json"
    path.write_text("{not json")
    monkeypatch.setenv("LABKIT_LEARNER_FILE", str(path))
    assert AnswerFortyTwo().check(42)
    assert wait_for_report(report_check("lab01-ex1", True)) is None
