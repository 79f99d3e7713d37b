"""The exercise framework itself: blanks, results, hints, solutions, the learner's errors."""

from __future__ import annotations

import asyncio

import pytest

from labkit.exercises import base
from labkit.exercises.base import (
    NOT_ANSWERED,
    AsyncExercise,
    CheckResult,
    NotYet,
    Placeholder,
    SyncExercise,
    ____,
    await_learner,
    call_learner,
    is_unanswered,
    kind_of,
)


class Double(SyncExercise):
    number = 1
    title = "Double it"
    answer_name = "double"
    prompt = "Write `double(x)`."
    placeholder_code = "def double(x: int) -> int:\n    return ____"
    hint_text = "Multiply."
    solution_code = "def double(x: int) -> int:\n    return 2 * x\n"

    def verify(self, answer: object) -> str:
        if call_learner(answer, 21, what="double(21)") != 42:
            raise NotYet("double(21) is not 42")
        return "double(21) is 42"


class AsyncDouble(AsyncExercise):
    number = 2
    title = "Double it, later"
    answer_name = "double"
    prompt = "Write `async def double(x)`."
    placeholder_code = "async def double(x: int) -> int:\n    return ____"
    hint_text = "Multiply, in an async def."
    solution_code = "async def double(x: int) -> int:\n    return 2 * x\n"

    async def verify(self, answer: object) -> str:
        if await await_learner(answer, 21, what="double(21)") != 42:
            raise NotYet("double(21) is not 42")
        return "double(21) is 42"


def test_the_blank_is_one_object_shown_as_a_blank() -> None:
    assert Placeholder() is ____
    assert repr(____) == "____"
    assert all(is_unanswered(blank) for blank in (____, None, ..., NotImplemented))
    assert not any(is_unanswered(answer) for answer in (0, "", [], False))


def test_a_sync_check_says_correct_or_not_yet_and_why() -> None:
    exercise = Double()
    assert exercise.check(exercise.solved()) == CheckResult(True, "double(21) is 42")
    assert exercise.check(lambda x: x + 1) == CheckResult(False, "double(21) is not 42")
    assert exercise.check(exercise.blank()) == CheckResult(False, NOT_ANSWERED)
    assert exercise.check(____) == CheckResult(False, NOT_ANSWERED)


def test_an_async_check_runs_when_awaited() -> None:
    exercise = AsyncDouble()
    pending = exercise.check(exercise.solved())
    assert "write `await ex2.check(...)`" in repr(pending)  # shown without await
    assert asyncio.run(_awaited(pending)).correct
    assert asyncio.run(_awaited(exercise.check(exercise.blank()))).message == NOT_ANSWERED


async def _awaited(pending: base.PendingCheck) -> CheckResult:
    return await pending


def test_a_crash_in_the_learners_code_is_a_not_yet_naming_it() -> None:
    result = Double().check(lambda x: x / 0)
    assert result == CheckResult(False, "double(21) raised ZeroDivisionError: division by zero")


def test_the_wrong_kind_of_function_is_named() -> None:
    async def async_double(x: int) -> int:
        return 2 * x

    def sync_double(x: int) -> int:
        return 2 * x

    assert "should be a plain `def`" in Double().check(async_double).message
    assert "not a function" in Double().check(42).message
    result = asyncio.run(_awaited(AsyncDouble().check(sync_double)))
    assert "returned an int at once: make it an `async def`" in result.message


def test_a_learners_function_that_never_finishes_is_given_up_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(base, "LEARNER_TIMEOUT", 0.05)

    async def forever(x: int) -> int:
        await asyncio.sleep(60)
        return x

    result = asyncio.run(_awaited(AsyncDouble().check(forever)))
    assert result.message == "double(21) did not finish within 0.05 s"


def test_results_show_as_text_and_as_html() -> None:
    right, wrong = CheckResult(True, "all good"), CheckResult(False, "use `<b>` & co")
    assert (str(right), repr(right), bool(right)) == ("Correct: all good",) * 2 + (True,)
    assert (str(wrong), bool(wrong)) == ("Not yet: use `<b>` & co", False)
    assert "<strong>Not yet:</strong> use <code>&lt;b&gt;</code> &amp; co" in wrong._repr_html_()


def test_hint_and_solution_show_as_markdown() -> None:
    exercise = Double()
    assert exercise.hint()._repr_markdown_() == "**Hint (ex1):** Multiply."
    assert repr(exercise.hint()) == "Hint (ex1): Multiply."
    solution = exercise.solution()
    assert solution.code == exercise.solution_code
    assert f"```python\n{exercise.solution_code}\n```" in solution._repr_markdown_()
    assert exercise.check_code == "ex1.check(double)"
    assert AsyncDouble().check_code == "await ex2.check(double)"


def test_kind_of_names_what_the_learner_gave() -> None:
    assert [kind_of(value) for value in ("x", 1, None, ____, [])] == [
        "a str",
        "an int",
        "None",
        "____",
        "a list",
    ]
